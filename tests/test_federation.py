"""Federated sign-in through a unit's OpenID Connect provider, against a real provider process
(tests/oidc_provider.py), and the per-tenant identity-provider configuration.

The browser is played by hand: ``GET /oauth/federated`` on the app, the provider's pages with
a separate HTTP client, then the provider's redirect back to the app's callback, and finally
the platform code exchanged at ``/oauth/token`` as the web UI would.

Token-level attacks need a provider that misbehaves. A second provider process sits behind a
small proxy (:class:`TamperingProxy`) that serves its discovery document with the token
endpoint pointing at the proxy, and replaces the ID token in token responses with one the
test forges: signed with the provider's own key but with wrong claims, signed with another
key, unsigned, or HMAC-signed. That provider's issuer is the proxy's URL, so everything else
about it is genuine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import text

from tests.conftest import Backend
from tests.isolation import snapshot
from tests.oidc_provider import (
    OidcProvider,
    abort_login,
    client_config,
    complete_login,
    generate_jwks,
)
from tests.platform import (
    UI_REDIRECT,
    Credentials,
    Platform,
    authorize_params,
    bearer,
    exchange,
    new_code,
    pkce_pair,
    sign_in,
)

CALLBACK = "http://nentang.test/oauth/federated/callback"
CLIENT_ID = "nentang"
CLIENT_SECRET = "idp-secret-Xq7wV2pLr9"
ALICE_ID, BINH_ID, HA_ID = "001099000123", "079088000456", "001199000789"
ACCOUNTS = {
    "alice": {"citizen_id": ALICE_ID, "name": "Nguyễn Thị Alice",
              "preferred_username": "alice.nguyen", "email": "alice@example.vn",
              "email_verified": True},
    "binh": {"citizen_id": BINH_ID, "name": "Trần Văn Bình", "email": "binh.tran@example.vn",
             "email_verified": True},
    "ha": {"citizen_id": HA_ID, "name": "Đặng Thị Hà"},
}
Tamper = Callable[[dict[str, Any]], str]


# ---- the provider, and the proxy that lets it misbehave ----------------------------------


class TamperingProxy:
    """An HTTP server on the loopback interface in front of a provider: its discovery
    document with ``token_endpoint`` pointing here, and its token endpoint with the ID token
    replaced by ``tamper(claims)`` when a test sets ``tamper``."""

    def __init__(self) -> None:
        self.upstream = ""
        self.tamper: Tamper | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/openid-configuration":
                    self._send(404, {"error": "not_found"})
                    return
                document = httpx.get(f"{proxy.upstream}{self.path}", timeout=10).json()
                document["token_endpoint"] = f"{proxy.url}/token"
                self._send(200, document)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                upstream = httpx.get(f"{proxy.upstream}/.well-known/openid-configuration",
                                     timeout=10).json()["token_endpoint"]
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                response = httpx.post(upstream, content=body, headers=headers, timeout=10)
                answer = response.json()
                if response.status_code == 200 and proxy.tamper is not None:
                    answer["id_token"] = proxy.tamper(_payload(answer["id_token"]))
                self._send(response.status_code, answer)

            def _send(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def idp_keys() -> tuple[dict[str, Any], RSAKey]:
    return generate_jwks()


def _provider(jwks: dict[str, Any], issuer: str | None = None) -> OidcProvider:
    return OidcProvider(clients=[client_config(CLIENT_ID, CLIENT_SECRET, [CALLBACK])],
                        accounts=ACCOUNTS, jwks=jwks, issuer=issuer)


@pytest.fixture(scope="session")
def idp(idp_keys: tuple[dict[str, Any], RSAKey]) -> Iterator[OidcProvider]:
    with _provider(idp_keys[0]) as provider:
        yield provider


@pytest.fixture(scope="session")
def tampering(idp_keys: tuple[dict[str, Any], RSAKey]) -> Iterator[TamperingProxy]:
    with TamperingProxy() as proxy, _provider(idp_keys[0], issuer=proxy.url) as provider:
        proxy.upstream = provider.url
        yield proxy


@pytest.fixture
def proxy(tampering: TamperingProxy) -> Iterator[TamperingProxy]:
    yield tampering
    tampering.tamper = None


@pytest.fixture(autouse=True)
async def _no_flow_cookie_leaks(client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Each test starts with a browser that has no sign-in in progress."""
    client.cookies.clear()
    yield


# ---- forging ID tokens -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "==="))
    return claims


def _signed(key: RSAKey, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])


def _segments(header: dict[str, str], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _unsigned(claims: dict[str, Any]) -> str:
    return _segments({"alg": "none", "typ": "JWT"}, claims) + "."


def _hs256(claims: dict[str, Any], secret: str) -> str:
    signing_input = _segments({"alg": "HS256", "typ": "JWT"}, claims)
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _tampers(key: RSAKey) -> dict[str, tuple[Tamper, int, str]]:
    now = int(time.time())
    stranger = RSAKey.generate_key(2048, parameters={"kid": key.kid, "alg": "RS256"},
                                   private=True)
    return {
        "expired": (lambda c: _signed(key, {**c, "iat": now - 900, "exp": now - 300}),
                    401, "idp-token-expired"),
        "future-dated": (lambda c: _signed(key, {**c, "iat": now + 900, "exp": now + 1800}),
                         401, "idp-token-not-yet-valid"),
        "other-key": (lambda c: _signed(stranger, c), 401, "idp-bad-signature"),
        "alg-none": (_unsigned, 401, "idp-alg-none"),
        "hs256-with-client-secret": (lambda c: _hs256(c, CLIENT_SECRET), 401,
                                     "idp-bad-algorithm"),
        "nonce": (lambda c: _signed(key, {**c, "nonce": "another-sign-in"}), 401,
                  "idp-nonce-mismatch"),
        "issuer": (lambda c: _signed(key, {**c, "iss": "https://id.elsewhere.example"}), 401,
                   "idp-wrong-issuer"),
        "audience": (lambda c: _signed(key, {**c, "aud": "another-client"}), 401,
                     "idp-wrong-audience"),
        "second-audience-without-azp": (
            lambda c: _signed(key, {**{k: v for k, v in c.items() if k != "azp"},
                                    "aud": [CLIENT_ID, "another-client"]}),
            401, "idp-wrong-audience"),
    }


# ---- playing the browser -----------------------------------------------------------------


def idp_config(issuer: str, **overrides: Any) -> dict[str, Any]:
    return {"display_name": "Định danh thử nghiệm", "issuer": issuer, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "scopes": "openid profile email citizen",
            "match_claim": "citizen_id", **overrides}


async def configure(platform: Platform, tenant: str, issuer: str, *,
                    by: Credentials | None = None, **overrides: Any) -> dict[str, Any]:
    response = await platform.http.put(f"/api/v1/tenants/{tenant}/identity-provider",
                                       headers=(by or platform.admin).headers,
                                       json=idp_config(issuer, **overrides))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def begin(client: httpx.AsyncClient, tenant: str) -> tuple[str, httpx.Response]:
    verifier, challenge = pkce_pair()
    response = await client.get("/oauth/federated",
                                params={**authorize_params(challenge), "tenant": tenant})
    return verifier, response


async def at_provider(client: httpx.AsyncClient, tenant: str, account: str) -> tuple[str, str]:
    """Start on the app and log in at the provider; returns the verifier and the provider's
    redirect to the app's callback (not yet followed)."""
    verifier, response = await begin(client, tenant)
    assert response.status_code == 302, response.text
    async with httpx.AsyncClient(timeout=10) as browser:
        callback = await complete_login(browser, response.headers["location"], account=account,
                                        redirect_uri=CALLBACK)
    return verifier, callback


async def back_to_app(client: httpx.AsyncClient, callback: str) -> httpx.Response:
    parts = urlsplit(callback)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return await client.get(f"{parts.path}?{parts.query}")


async def federated(client: httpx.AsyncClient, tenant: str,
                    account: str) -> tuple[str, httpx.Response]:
    verifier, callback = await at_provider(client, tenant, account)
    return verifier, await back_to_app(client, callback)


async def me(client: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit_items(platform: Platform, tenant: str) -> list[dict[str, Any]]:
    response = await platform.http.get(f"/api/v1/tenants/{tenant}/audit",
                                       headers=platform.admin.headers, params={"limit": "500"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def failures(platform: Platform, tenant: str) -> list[str]:
    return [r["after"]["reason"] for r in await audit_items(platform, tenant)
            if r["action"] == "login.failed" and r["after"].get("method") == "oidc"]


async def users_of(platform: Platform, tenant: str) -> list[dict[str, Any]]:
    response = await platform.http.get(f"/api/v1/tenants/{tenant}/users",
                                       headers=platform.admin.headers, params={"limit": "500"})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def assert_refused(platform: Platform, tenant: str, response: httpx.Response,
                         status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "location" not in response.headers
    assert code in await failures(platform, tenant), "the failure is audited in the tenant"


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return parts._replace(query=urlencode({**query, **changes})).geturl()


# ---- signing in --------------------------------------------------------------------------


async def test_official_matched_by_citizen_id_signs_in(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    official = await platform.user_for(province, ["officer"], external_id=ALICE_ID)
    shown = await configure(platform, province, idp.issuer, by=admin)
    assert shown["has_client_secret"] is True and not shown["inherited"]
    assert shown["tenant"] == province and shown["redirect_uri"] == CALLBACK
    assert CLIENT_SECRET not in json.dumps(shown)

    verifier, response = await federated(client, province, "alice")
    assert response.headers["location"].startswith(f"{UI_REDIRECT}?")
    who = await me(client, await exchange(client, response, verifier))
    assert who["id"] == official["id"] and who["kind"] == "user"
    assert [(g["role"], g["tenant"]) for g in who["grants"]] == [("officer", province)]
    assert [u["id"] for u in await users_of(platform, province)] == [official["id"]]
    succeeded = [r for r in await audit_items(platform, province)
                 if r["action"] == "login.succeeded"]
    assert [r["after"]["method"] for r in succeeded] == ["oidc"]
    assert await failures(platform, province) == []


async def test_just_in_time_creation_with_the_configured_roles(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider, backend: Backend
) -> None:
    province, admin = await platform.province_with_admin()
    await platform.user_for(province, [], username="binh.tran")  # takes the natural name
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True,
                    jit_roles=["officer"])

    verifier, response = await federated(client, province, "binh")
    who = await me(client, await exchange(client, response, verifier))
    assert who["name"] == "binh.tran-2"
    assert [(g["role"], g["tenant"]) for g in who["grants"]] == [("officer", province)]
    created = {u["username"]: u for u in await users_of(platform, province)}["binh.tran-2"]
    assert created["display_name"] == "Trần Văn Bình"
    assert created["external_id"] == BINH_ID and created["email"] == "binh.tran@example.vn"
    creation = [r for r in await audit_items(platform, province) if r["action"] == "user.create"
                and r["resource_id"] == created["id"]]
    assert [r["actor"] for r in creation] == [f"idp:{idp.issuer}"]
    assert creation[0]["after"]["roles"] == ["officer"]

    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(text(
                "SELECT u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id "
                "WHERE t.code = :code AND u.username = 'binh.tran-2'"), {"code": province}
            )).scalar_one()
    finally:
        await engine.dispose()
    assert stored is None, "a federated official has no local password"

    again_verifier, again = await federated(client, province, "binh")
    assert (await me(client, await exchange(client, again, again_verifier)))["id"] == who["id"]
    verifier, response = await federated(client, province, "ha")
    assert (await me(client, await exchange(client, response, verifier)))["name"] == "dang.thi.ha"
    assert len(await users_of(platform, province)) == 3


async def test_unknown_official_is_refused_without_jit(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=False,
                    jit_roles=["officer"])
    _, response = await federated(client, province, "alice")
    await assert_refused(platform, province, response, 403, "idp-user-unknown")
    assert await users_of(platform, province) == []


async def test_commune_signs_in_through_its_province_provider(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    official = await platform.user_for(commune, ["officer"], by=admin, external_id=ALICE_ID)
    await configure(platform, province, idp.issuer, by=admin)

    shown = await client.get(f"/api/v1/tenants/{commune}/identity-provider",
                             headers=admin.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["inherited"] is True and shown.json()["tenant"] == province
    assert shown.json()["has_client_secret"] is True and "client_secret" not in shown.json()
    refused = await client.delete(f"/api/v1/tenants/{commune}/identity-provider",
                                  headers=admin.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "inherited-read-only"

    verifier, response = await federated(client, commune, "alice")
    who = await me(client, await exchange(client, response, verifier))
    assert who["id"] == official["id"]
    assert [(g["role"], g["tenant"]) for g in who["grants"]] == [("officer", commune)]
    assert "login.succeeded" in {r["action"] for r in await audit_items(platform, commune)}


# ---- configuration -----------------------------------------------------------------------


async def test_configuration_is_validated_and_nothing_is_written(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    url = f"/api/v1/tenants/{province}/identity-provider"
    good = idp_config("https://id.example.gov.vn")
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "issuer": "http://id.example.gov.vn"}, "/issuer"),
        ({**good, "issuer": "https://id.example.gov.vn/?tenant=x"}, "/issuer"),
        ({**good, "issuer": "https://user:pw@id.example.gov.vn"}, "/issuer"),
        ({**good, "scopes": "profile email"}, "/scopes"),
        ({**good, "match_claim": "nonce"}, "/match_claim"),
        ({**good, "match_claim": "has space"}, "/match_claim"),
        ({**good, "client_secret": ""}, "/client_secret"),
        ({**good, "jit_roles": ["Not A Key"]}, "/jit_roles/0"),
        ({**good, "jit_roles": ["officer", "no_such_role"]}, "/jit_roles/1"),
        ({k: v for k, v in good.items() if k != "client_secret"}, "/client_secret"),
        ({**good, "surprise": True}, "/surprise"),
    ]
    for body, pointer in cases:
        response = await client.put(url, headers=admin.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert pointer in [e.get("pointer") for e in response.json()["errors"]], response.text
        assert CLIENT_SECRET not in response.text
    missing = await client.get(url, headers=admin.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "identity-provider-not-found"
    assert (await client.delete(url, headers=admin.headers)).status_code == 404
    assert "idp.set" not in {r["action"] for r in await audit_items(platform, province)}

    await platform.role_for(province, "idp_admin", ["idp:read", "idp:write"], by=admin)
    holder = await platform.user_for(province, ["idp_admin"], by=admin,
                                     password="mật-khẩu-đủ-dài-1")
    limited = bearer((await sign_in(client, province, holder["username"],
                                    "mật-khẩu-đủ-dài-1"))["access_token"])
    escalation = await client.put(url, headers=limited,
                                  json={**good, "jit_enabled": True, "jit_roles": ["officer"]})
    assert escalation.status_code == 403 and escalation.json()["code"] == "escalation"
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    # idp:write alone never chooses the provider: that takes a unit administrator's rights
    alone = await client.put(url, headers=limited, json=good)
    assert alone.status_code == 403 and alone.json()["code"] == "escalation"
    loopback = await client.put(url, headers=admin.headers,
                                json={**good, "issuer": "http://localhost:8080/realms/x"})
    assert loopback.status_code == 200, loopback.text


async def test_client_secret_is_write_only_and_never_audited(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    url = f"/api/v1/tenants/{province}/identity-provider"
    await configure(platform, province, "https://id.example.gov.vn", by=admin)
    renamed = {k: v for k, v in idp_config("https://id.example.gov.vn").items()
               if k != "client_secret"}
    kept = await client.put(url, headers=admin.headers,
                            json={**renamed, "display_name": "Đổi tên"})
    assert kept.status_code == 200 and kept.json()["has_client_secret"] is True
    shown = await client.get(url, headers=admin.headers)
    assert shown.json()["display_name"] == "Đổi tên" and CLIENT_SECRET not in shown.text
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404

    trail = [r for r in await audit_items(platform, province) if r["action"].startswith("idp.")]
    assert [r["action"] for r in trail] == ["idp.set", "idp.set", "idp.delete"]
    assert [r["after"]["client_secret_changed"] for r in trail[:2]] == [True, False]
    assert CLIENT_SECRET not in json.dumps(trail)


# ---- failures ----------------------------------------------------------------------------


async def test_discovery_must_name_the_configured_issuer(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    alias = idp.url.replace("127.0.0.1", "localhost")  # the same provider, another name
    await configure(platform, province, alias, by=admin, jit_enabled=True)
    _, response = await begin(client, province)
    await assert_refused(platform, province, response, 502, "idp-wrong-issuer")


async def test_unreachable_provider_is_a_502(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    province, admin = await platform.province_with_admin()
    await configure(platform, province, f"http://127.0.0.1:{port}", by=admin)
    _, response = await begin(client, province)
    await assert_refused(platform, province, response, 502, "idp-unavailable")


async def test_untouched_tokens_pass_through_the_proxy(
    platform: Platform, client: httpx.AsyncClient, proxy: TamperingProxy
) -> None:
    """The control for the next test: through the proxy, an honest token signs in."""
    province, admin = await platform.province_with_admin()
    await configure(platform, province, proxy.url, by=admin, jit_enabled=True)
    verifier, response = await federated(client, province, "alice")
    assert (await me(client, await exchange(client, response, verifier)))["name"] == (
        "alice.nguyen")


ATTACKS = ["expired", "future-dated", "other-key", "alg-none", "hs256-with-client-secret",
           "nonce", "issuer", "audience", "second-audience-without-azp"]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_id_tokens_are_refused(
    attack: str, platform: Platform, client: httpx.AsyncClient, proxy: TamperingProxy,
    idp_keys: tuple[dict[str, Any], RSAKey],
) -> None:
    tamper, status, code = _tampers(idp_keys[1])[attack]
    province, admin = await platform.province_with_admin()
    await configure(platform, province, proxy.url, by=admin, jit_enabled=True,
                    jit_roles=["officer"])
    proxy.tamper = tamper
    _, response = await federated(client, province, "alice")
    await assert_refused(platform, province, response, status, code)
    assert await users_of(platform, province) == [], "nobody was created"


async def test_state_must_come_back_to_the_browser_that_sent_it(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider, app: Any
) -> None:
    province, admin = await platform.province_with_admin()
    await platform.user_for(province, ["officer"], external_id=ALICE_ID)
    await configure(platform, province, idp.issuer, by=admin)

    _, callback = await at_provider(client, province, "alice")
    forged = await back_to_app(client, _with_query(callback, state="forged-state"))
    await assert_refused(platform, province, forged, 400, "idp-state-mismatch")
    spent = await back_to_app(client, callback)
    assert spent.status_code == 400 and spent.json()["code"] == "idp-state-unknown"

    _, callback = await at_provider(client, province, "alice")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nentang.test") as other:
        elsewhere = await back_to_app(other, callback)
    assert elsewhere.json()["code"] == "idp-state-mismatch"
    assert (await failures(platform, province)).count("idp-state-mismatch") == 2

    verifier, response = await federated(client, province, "alice")
    await exchange(client, response, verifier)
    replayed = await back_to_app(client, str(response.request.url))
    assert replayed.json()["code"] == "idp-state-unknown"
    assert len(await users_of(platform, province)) == 1


async def test_expired_sign_in_is_refused(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider, backend: Backend
) -> None:
    province, admin = await platform.province_with_admin()
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True)
    _, callback = await at_provider(client, province, "alice")
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "UPDATE login_flows SET expires_at = created_at "
                "WHERE tenant_id = (SELECT id FROM tenants WHERE code = :code)"),
                {"code": province})
    finally:
        await engine.dispose()
    response = await back_to_app(client, callback)
    await assert_refused(platform, province, response, 400, "idp-flow-expired")
    assert await users_of(platform, province) == []


async def test_disabled_official_is_refused(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    official = await platform.user_for(province, ["officer"], external_id=ALICE_ID)
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True)
    disabled = await client.patch(f"/api/v1/tenants/{province}/users/{official['id']}",
                                  headers=admin.headers, json={"status": "disabled"})
    assert disabled.status_code == 200, disabled.text
    _, response = await federated(client, province, "alice")
    await assert_refused(platform, province, response, 403, "idp-user-disabled")
    assert len(await users_of(platform, province)) == 1


async def test_missing_matching_claim_is_refused(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True,
                    match_claim="employee_number")
    _, response = await federated(client, province, "alice")
    await assert_refused(platform, province, response, 403, "idp-claim-missing")
    assert await users_of(platform, province) == []


async def test_provider_denial_is_reported(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True)
    _, started = await begin(client, province)
    async with httpx.AsyncClient(timeout=10) as browser:
        callback = await abort_login(browser, started.headers["location"],
                                     redirect_uri=CALLBACK)
    response = await back_to_app(client, callback)
    await assert_refused(platform, province, response, 403, "idp-denied")
    assert await users_of(platform, province) == []


async def test_odd_answers_from_the_provider(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    """Answers a browser can bring back without logging in: each spends the sign-in."""
    province, admin = await platform.province_with_admin()
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True)
    answers = [({"error": "temporarily_unavailable"}, 400, "idp-error"),
               ({"error": "access_denied", "iss": "https://id.elsewhere.example"}, 401,
                "idp-wrong-issuer"),
               ({}, 400, "idp-missing-code"),
               ({"code": "not-a-code-the-provider-issued"}, 400, "idp-code-rejected")]
    for extra, status, code in answers:
        _, started = await begin(client, province)
        state = dict(parse_qsl(urlsplit(started.headers["location"]).query))["state"]
        query = urlencode({"state": state, "iss": idp.issuer, **extra})
        response = await client.get(f"/oauth/federated/callback?{query}")
        await assert_refused(platform, province, response, status, code)

    wrong_secret = await client.put(f"/api/v1/tenants/{province}/identity-provider",
                                    headers=admin.headers,
                                    json=idp_config(idp.issuer, client_secret="not-the-secret"))
    assert wrong_secret.status_code == 200, wrong_secret.text
    _, response = await federated(client, province, "alice")
    await assert_refused(platform, province, response, 502, "idp-client-rejected")
    assert await users_of(platform, province) == []


async def test_bad_client_and_units_without_a_provider(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    _, challenge = pkce_pair()
    page = await client.get("/oauth/federated", params={
        **authorize_params(challenge, redirect_uri="https://evil.example/cb"),
        "tenant": province})
    assert page.status_code == 400 and "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    for tenant in (province, new_code("X")):  # an unknown unit looks the same
        _, response = await begin(client, tenant)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "idp-not-configured"
    assert await failures(platform, province) == []


async def test_setting_the_provider_needs_the_permissions_of_the_users_it_serves(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider, backend: Backend
) -> None:
    """Whoever picks the provider signs in as every linked user: idp:write alone must not let
    a delegate take over the unit's administrator."""
    province, admin = await platform.province_with_admin()
    await platform.user_for(province, ["tenant_admin"], by=admin, external_id=ALICE_ID)
    await platform.role_for(province, "idp_keeper", ["tenants:read", "idp:read", "idp:write"],
                            by=admin)
    keeper = await platform.client_for(province, ["api_client"], by=admin)
    keeper_id = (await client.get("/api/v1/me", headers=keeper.headers)).json()["id"]
    await platform.grant(province, keeper_id, "idp_keeper", by=admin)
    before = await snapshot(backend)
    takeover = await client.put(f"/api/v1/tenants/{province}/identity-provider",
                                headers=keeper.headers, json=idp_config(idp.issuer))
    assert takeover.status_code == 403 and takeover.json()["code"] == "escalation"
    assert await snapshot(backend) == before
    # the administrator itself may
    await configure(platform, province, idp.issuer, by=admin)
    removal = await client.delete(f"/api/v1/tenants/{province}/identity-provider",
                                  headers=keeper.headers)
    assert removal.status_code == 403 and removal.json()["code"] == "escalation"


async def test_jit_roles_cannot_be_redefined_below_the_provider(
    platform: Platform, client: httpx.AsyncClient, idp: OidcProvider
) -> None:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    await platform.role_for(province, "tiep_dan", ["cases:read"], by=admin)
    await configure(platform, province, idp.issuer, by=admin, jit_enabled=True,
                    jit_roles=["tiep_dan"])
    # the commune reuses the key for something stronger than the province delegated
    await platform.role_for(commune, "tiep_dan", ["cases:read", "cases:act"], by=admin)
    _, response = await federated(client, commune, "ha")
    await assert_refused(platform, commune, response, 403, "idp-jit-failed")
    assert await users_of(platform, commune) == []
