"""``xroad``: the X-Road message protocol for REST, through the unit's security server.

The national and provincial data-sharing platforms (NDXP, LGSP) follow X-Road: a service is
``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE`` and is called at
``{security server}/r1/{instance}/{class}/{member}/{subsystem}/{service}``, each part
percent-encoded on its own. The client says who it is in ``X-Road-Client``
(``INSTANCE/CLASS/MEMBER/SUBSYSTEM``), names the message (``X-Road-Id``, a UUID, the same on
every attempt of one message), the user (``X-Road-UserId``) and the case (``X-Road-Issue``).
The connection to the security server is mutual TLS with the unit's client certificate.

An answer carrying ``X-Road-Error`` is the gateway's, not the provider's: ``Client.*``
errors are ours (the configuration is wrong: final), ``Server.*`` ones are retried. The
response's ``X-Road-Id``, ``X-Road-Request-Id`` and ``X-Road-Request-Hash`` are kept for the
audit. Redirects are never followed.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from app.deliveries.transports import Attempt, ConfigError, Message, SendOptions, http_failure
from app.deliveries.transports.webhook import check_target, classify

SERVICE_PARTS = ("instance", "member_class", "member_code", "subsystem", "service_code")
CLIENT_PARTS = ("instance", "member_class", "member_code", "subsystem")
AUDIT_HEADERS = ("x-road-id", "x-road-request-id", "x-road-request-hash", "x-road-error")
_PART = {"type": "string", "minLength": 1, "maxLength": 255}


def _identifier(config: Mapping[str, str], parts: tuple[str, ...]) -> str:
    return "/".join(quote(config[p], safe="") for p in parts)


def service_url(config: Mapping[str, Any]) -> str:
    base = config["security_server"].rstrip("/")
    return f"{base}/r1/{_identifier(config['service'], SERVICE_PARTS)}"


def _tls_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=config.get("server_ca") or None)
    if config.get("client_certificate"):
        import os
        import tempfile

        # The ssl module loads key material from files only: a private temporary directory,
        # removed as soon as the context holds it.
        with tempfile.TemporaryDirectory() as directory:
            certificate = os.path.join(directory, "client.pem")
            with open(os.open(certificate, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
                out.write(config["client_certificate"] + "\n" + config["client_key"])
            context.load_cert_chain(certificate)
    return context


class XRoadTransport:
    name: ClassVar[str] = "xroad"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["security_server", "service", "client"],
        "additionalProperties": False,
        "properties": {
            "security_server": {"type": "string", "pattern": "^https?://", "maxLength": 500},
            "service": {"type": "object", "required": list(SERVICE_PARTS),
                        "additionalProperties": False,
                        "properties": {p: _PART for p in SERVICE_PARTS}},
            "client": {"type": "object", "required": list(CLIENT_PARTS),
                       "additionalProperties": False,
                       "properties": {p: _PART for p in CLIENT_PARTS}},
            "user_id": {"type": "string", "maxLength": 255},
            "client_certificate": {"type": "string", "maxLength": 100_000,
                                   "description": "PEM: the unit's certificate for mTLS."},
            "client_key": {"type": "string", "maxLength": 100_000, "writeOnly": True},
            "server_ca": {"type": "string", "maxLength": 100_000,
                          "description": "PEM: who signs the security server's certificate."},
        },
    }

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

    def check_config(self, config: Mapping[str, Any]) -> None:
        if bool(config.get("client_certificate")) != bool(config.get("client_key")):
            raise ConfigError("/client_key", "mTLS needs both the client certificate and its "
                              "key.")
        try:
            _tls_context(config)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError("/client_certificate", f"The TLS material cannot be used: "
                              f"{type(exc).__name__}.") from None

    def service(self, config: Mapping[str, Any]) -> str:
        return "/".join(config["service"][p] for p in SERVICE_PARTS)

    def _client(self, shared: httpx.AsyncClient, config: Mapping[str, Any],
                options: SendOptions) -> httpx.AsyncClient:
        """The shared client, or one holding this unit's TLS identity (kept per identity)."""
        if not config["security_server"].startswith("https://"):
            return shared
        key = hashlib.sha256(repr(sorted((k, str(v)) for k, v in config.items()
                                         if k in ("client_certificate", "client_key",
                                                  "server_ca"))).encode()).hexdigest()
        if key not in self._clients:
            self._clients[key] = httpx.AsyncClient(
                verify=_tls_context(config), follow_redirects=False, trust_env=False,
                timeout=options.timeout_seconds)
        return self._clients[key]

    async def send(self, client: httpx.AsyncClient, config: Mapping[str, Any],
                   message: Message, options: SendOptions) -> Attempt:
        url = service_url(config)
        refused = await check_target(url, options)
        if refused is not None:
            return refused
        headers = {
            "X-Road-Client": _identifier(config["client"], CLIENT_PARTS),
            "X-Road-Id": message.message_id,
            "X-Road-UserId": config.get("user_id") or f"nentang:{message.tenant}",
            "content-type": "application/json",
            "x-nentang-event-id": message.id,
        }
        if message.case:
            headers["X-Road-Issue"] = message.case
        try:
            async with self._client(client, config, options).stream(
                    "POST", url, content=message.body, headers=headers) as response:
                detail = {h: response.headers[h] for h in AUDIT_HEADERS if h in response.headers}
                error = response.headers.get("x-road-error")
                if error is None:
                    return classify(response, detail)
                return Attempt(False, status=response.status_code, error=f"X-Road: {error}",
                               final=error.startswith("Client."), detail=detail)
        except httpx.HTTPError as exc:
            return http_failure(exc, options.timeout_seconds)
