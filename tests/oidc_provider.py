"""A real OpenID Connect provider for tests: ``tests/oidc/provider.mjs`` (oidc-provider) run
as a child process, plus helpers that play the browser through its development login pages.

Typical use, from a session-scoped fixture::

    jwks, key = generate_jwks()
    with OidcProvider(clients=[client_config("rp", "secret", [REDIRECT])],
                      accounts={"alice": {"citizen_id": "001099000123", "name": "Alice"}},
                      jwks=jwks, issuer="https://id.example.test") as provider:
        ...  # provider.url is where it listens, provider.issuer is what tokens carry

The provider listens on 127.0.0.1 only; endpoint URLs in its discovery document are built from
the request, so they point at ``provider.url`` even when ``issuer`` names another host. It needs
``npm ci --prefix tests/oidc`` (``make test`` does that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urljoin, urlsplit

import httpx
from joserfc.jwk import RSAKey

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
INSTALL_HINT = "run `npm ci --prefix tests/oidc`"

#: Scope → claims added to the standard OIDC ones (profile, email, phone, address).
DEFAULT_CLAIMS: dict[str, list[str]] = {"citizen": ["citizen_id"]}

_MAX_STEPS = 20


class OidcProviderError(RuntimeError):
    """The provider process could not be started or stopped."""


class OidcLoginError(AssertionError):
    """The browser flow did not go as expected (an error page, a loop, no interaction)."""


def generate_jwks(kid: str = "test-oidc-rs256") -> tuple[dict[str, Any], RSAKey]:
    """A fresh RS256 signing key: the private JWKS to give the provider, and the same key
    for tests that forge tokens the provider's ``jwks_uri`` vouches for."""
    key = RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )
    return {"keys": [key.as_dict(private=True)]}, key


def client_config(
    client_id: str,
    client_secret: str,
    redirect_uris: Sequence[str],
    *,
    token_endpoint_auth_method: str = "client_secret_basic",  # noqa: S107 (a method name)
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    response_types: Sequence[str] = ("code",),
) -> dict[str, Any]:
    """Client metadata for a confidential authorization-code client, as oidc-provider wants it."""
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": list(redirect_uris),
        "token_endpoint_auth_method": token_endpoint_auth_method,
        "grant_types": list(grant_types),
        "response_types": list(response_types),
    }


class OidcProvider:
    """``node tests/oidc/provider.mjs`` for the lifetime of a ``with`` block (or start/stop).

    ``accounts`` maps the login name typed into the dev login form to its claims (``sub``
    defaults to that name); logging in with any other name ends in ``error=access_denied``.
    ``jwks`` defaults to a fresh key from :func:`generate_jwks`; ``signing_key`` is its key.
    """

    def __init__(
        self,
        *,
        clients: Sequence[Mapping[str, Any]],
        accounts: Mapping[str, Mapping[str, Any]],
        jwks: Mapping[str, Any] | None = None,
        issuer: str | None = None,
        port: int = 0,
        ttl: Mapping[str, int] | None = None,
        claims: Mapping[str, Sequence[str]] | None = None,
        scopes: Sequence[str] = (),
        startup_timeout: float = 30.0,
        node: str = "node",
    ) -> None:
        signing_key: RSAKey | None = None
        if jwks is None:
            jwks, signing_key = generate_jwks()
        self.jwks: dict[str, Any] = dict(jwks)
        self.signing_key = signing_key
        self.config: dict[str, Any] = {
            "port": port,
            "clients": [dict(c) for c in clients],
            "accounts": {name: dict(claims) for name, claims in accounts.items()},
            "jwks": self.jwks,
            "ttl": dict(ttl or {}),
            "claims": {scope: list(names) for scope, names in (claims or DEFAULT_CLAIMS).items()},
            "scopes": list(scopes),
            # The process exits when its stdin closes, so a killed test run leaves no orphan.
            "exit_with_stdin": True,
        }
        if issuer is not None:
            self.config["issuer"] = issuer
        self.startup_timeout = startup_timeout
        self.node = node
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stdout: IO[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._ready: dict[str, Any] | None = None

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens and discovery document."""
        return str(self._ready_info()["issuer"])

    @property
    def url(self) -> str:
        """Where it listens: ``http://127.0.0.1:PORT``."""
        return str(self._ready_info()["url"])

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def _ready_info(self) -> dict[str, Any]:
        if self._ready is None:
            raise OidcProviderError("the OIDC provider is not running")
        return self._ready

    def stderr_text(self) -> str:
        """What the process wrote to stderr so far (oidc-provider's warnings, koa errors)."""
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Self:
        if self._process is not None:
            raise OidcProviderError("the OIDC provider is already running")
        if shutil.which(self.node) is None:
            raise OidcProviderError(f"`{self.node}` (Node.js) is not on PATH")
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise OidcProviderError(f"tests/oidc/node_modules is missing: {INSTALL_HINT}")
        self._tmp = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        tmp = Path(self._tmp.name)
        config_path = tmp / "cfg.json"
        config_path.write_text(json.dumps(self.config))
        # Files, not pipes, for output: nobody has to keep draining them while tests run.
        self._stdout = (tmp / "stdout.log").open("wb")
        self._stderr = (tmp / "stderr.log").open("wb")
        self._process = subprocess.Popen(
            [self.node, str(PROVIDER_SCRIPT), str(config_path)],
            stdin=subprocess.PIPE, stdout=self._stdout, stderr=self._stderr, cwd=tmp,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            self._ready = self._wait_ready(tmp / "stdout.log")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, stdout_path: Path) -> dict[str, Any]:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            line = stdout_path.read_bytes().partition(b"\n")
            if line[1]:
                try:
                    info: dict[str, Any] = json.loads(line[0])
                except ValueError:
                    info = {}
                if info.get("ready") is True:
                    return info
                raise OidcProviderError(self._failure(f"unexpected output {line[0]!r}"))
            code = self._process.poll()
            if code is not None:
                raise OidcProviderError(self._failure(f"exited with status {code}"))
            if time.monotonic() > deadline:
                raise OidcProviderError(
                    self._failure(f"not ready within {self.startup_timeout:g}s")
                )
            time.sleep(0.02)

    def _failure(self, what: str) -> str:
        hint = ""
        if "Cannot find package" in self.stderr_text():
            hint = f" ({INSTALL_HINT})"
        return f"OIDC provider {what}{hint}; stderr:\n{self.stderr_text()}"

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s) and remove its files."""
        process, self._process, self._ready = self._process, None, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for stream in (self._stdout, self._stderr):
            if stream is not None:
                stream.close()
        self._stdout = self._stderr = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the browser side ----------------------------------------------------------------------


class _InteractionPage(HTMLParser):
    """The dev interaction page: its form's action and ``prompt``, and the abort link."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.prompt: str | None = None
        self.abort: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attr.get("action")
        elif tag == "input" and attr.get("name") == "prompt" and self.prompt is None:
            self.prompt = attr.get("value")
        elif tag == "a" and (attr.get("href") or "").endswith("/abort"):
            self.abort = attr.get("href")


def _interaction(response: httpx.Response) -> _InteractionPage:
    page = _InteractionPage()
    if response.status_code == 200:
        page.feed(response.text)
        page.close()
    if page.action is None or page.prompt not in ("login", "consent"):
        raise OidcLoginError(
            f"expected an interaction page at {response.url}, got {response.status_code}: "
            f"{response.text[:800]}"
        )
    page.action = urljoin(str(response.url), page.action)
    if page.abort is not None:
        page.abort = urljoin(str(response.url), page.abort)
    return page


def _is_redirect_uri(location: str, redirect_uri: str) -> bool:
    got, want = urlsplit(location), urlsplit(redirect_uri)
    return (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path)


async def _follow(
    http: httpx.AsyncClient, response: httpx.Response, redirect_uri: str
) -> tuple[str | None, httpx.Response]:
    """Follow redirects by hand. Returns ``(url, response)``: the URL when one points at the
    redirect_uri (which is never requested), else ``None`` and the first non-redirect."""
    for _ in range(_MAX_STEPS):
        if not response.is_redirect:
            return None, response
        location = urljoin(str(response.url), response.headers["location"])
        if _is_redirect_uri(location, redirect_uri):
            return location, response
        response = await http.get(location, follow_redirects=False)
    raise OidcLoginError(f"too many redirects, last at {response.url}")


async def _submit(
    http: httpx.AsyncClient, page: _InteractionPage, account: str
) -> httpx.Response:
    assert page.action is not None
    data = {"prompt": page.prompt or ""}
    if page.prompt == "login":
        data |= {"login": account, "password": "any"}
    return await http.post(page.action, data=data, follow_redirects=False)


async def complete_login(
    http: httpx.AsyncClient, authorize_url: str, *, account: str, redirect_uri: str
) -> str:
    """Play the browser from ``authorize_url``: log in as ``account`` and consent whenever asked.

    ``http`` is the browser (its cookie jar carries the provider's session across requests).
    Returns the redirect to ``redirect_uri`` (``code``, ``state``, ``iss``, or ``error``).
    """
    response = await http.get(authorize_url, follow_redirects=False)
    for _ in range(_MAX_STEPS):
        final, response = await _follow(http, response, redirect_uri)
        if final is not None:
            return final
        response = await _submit(http, _interaction(response), account)
    raise OidcLoginError("the provider kept asking for interactions")


async def abort_login(
    http: httpx.AsyncClient, authorize_url: str, *, redirect_uri: str,
    account: str | None = None,
) -> str:
    """Play the browser and press the dev pages' cancel link (``/interaction/<uid>/abort``).

    Aborts at the first interaction (the login form), or, with ``account``, logs in first and
    aborts at the next one (consent). Returns the redirect to ``redirect_uri``, which carries
    ``error=access_denied``.
    """
    response = await http.get(authorize_url, follow_redirects=False)
    final, response = await _follow(http, response, redirect_uri)
    if final is not None:
        raise OidcLoginError(f"no interaction to abort, the provider answered {final}")
    page = _interaction(response)
    if account is not None and page.prompt == "login":
        final, response = await _follow(http, await _submit(http, page, account), redirect_uri)
        if final is not None:
            raise OidcLoginError(f"no interaction after login, the provider answered {final}")
        page = _interaction(response)
    abort = page.abort or f"{page.action}/abort"
    final, response = await _follow(
        http, await http.get(abort, follow_redirects=False), redirect_uri
    )
    if final is None:
        raise OidcLoginError(f"abort did not redirect to the client: {response.status_code}")
    return final
