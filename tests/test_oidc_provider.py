"""The OpenID Connect provider harness (tests/oidc_provider.py) against the real process.

No Nentang app here: an off-the-shelf relying party (authlib) runs the authorization code flow
with PKCE, and the ID token is checked with joserfc, so later relying-party tests can trust
the harness.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from tests.oidc_provider import (
    OidcProvider,
    abort_login,
    client_config,
    complete_login,
    generate_jwks,
)

ISSUER = "https://id.nentang.test"  # deliberately not where the provider listens
CLIENT_ID = "nentang-rp"
CLIENT_SECRET = "rp-secret"
REDIRECT_URI = "http://nentang.test/auth/callback"  # never requested
CITIZEN_ID = "001099000123"
ACCOUNTS = {
    "alice": {"citizen_id": CITIZEN_ID, "name": "Nguyễn Thị Alice", "email": "alice@example.vn",
              "email_verified": True},
}
SCOPE = "openid profile email citizen"


@pytest.fixture(scope="session")
def oidc_keys() -> tuple[dict[str, Any], RSAKey]:
    return generate_jwks()


@pytest.fixture(scope="session")
def oidc_provider(oidc_keys: tuple[dict[str, Any], RSAKey]) -> Iterator[OidcProvider]:
    jwks, _ = oidc_keys
    with OidcProvider(
        clients=[client_config(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])],
        accounts=ACCOUNTS, jwks=jwks, issuer=ISSUER, ttl={"IdToken": 300},
    ) as provider:
        yield provider


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """A fresh browser: its own cookie jar, so no login carries over between tests."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@pytest.fixture(scope="session")
async def discovery(oidc_provider: OidcProvider) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(oidc_provider.discovery_url)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


async def _provider_keys(discovery: dict[str, Any]) -> KeySet:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(discovery["jwks_uri"])
    response.raise_for_status()
    return KeySet.import_key_set(response.json())


def _rp(**kwargs: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI,
        code_challenge_method="S256", timeout=10, **kwargs,
    )


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- tests ---------------------------------------------------------------------------------


async def test_discovery_serves_configured_issuer(
    oidc_provider: OidcProvider, discovery: dict[str, Any]
) -> None:
    assert oidc_provider.issuer == ISSUER
    assert discovery["issuer"] == ISSUER
    # Endpoints follow the request, so they are reachable although the issuer is not.
    assert discovery["authorization_endpoint"] == f"{oidc_provider.url}/auth"
    assert discovery["token_endpoint"] == f"{oidc_provider.url}/token"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "citizen" in discovery["scopes_supported"]
    assert "citizen_id" in discovery["claims_supported"]


async def test_code_flow_with_pkce_yields_verifiable_id_token(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    nonce = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    async with _rp(scope=SCOPE) as rp:
        authorize_url, state = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        assert "code_challenge_method=S256" in authorize_url

        callback = await complete_login(browser, authorize_url, account="alice",
                                        redirect_uri=REDIRECT_URI)
        params = _query(callback)
        assert params["state"] == state
        assert params["iss"] == ISSUER  # RFC 9207 authorization response issuer
        assert "code" in params

        token = await rp.fetch_token(discovery["token_endpoint"],
                                     authorization_response=callback, state=state,
                                     code_verifier=verifier)

    keys = await _provider_keys(discovery)
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": CLIENT_ID},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True, "value": "alice"},
    ).validate(id_token.claims)
    assert id_token.claims["citizen_id"] == CITIZEN_ID
    assert id_token.claims["name"] == ACCOUNTS["alice"]["name"]
    assert id_token.claims["email"] == ACCOUNTS["alice"]["email"]
    assert 0 < id_token.claims["exp"] - id_token.claims["iat"] <= 300


async def test_code_without_its_verifier_is_refused(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    verifier = secrets.token_urlsafe(48)
    async with _rp(scope="openid") as rp:
        authorize_url, _ = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce="n")
        callback = await complete_login(browser, authorize_url, account="alice",
                                        redirect_uri=REDIRECT_URI)
        response = await rp.post(discovery["token_endpoint"], auth=(CLIENT_ID, CLIENT_SECRET),
                                 data={"grant_type": "authorization_code",
                                       "code": _query(callback)["code"],
                                       "redirect_uri": REDIRECT_URI,
                                       "code_verifier": secrets.token_urlsafe(48)})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_authorization_without_pkce_is_refused(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    async with _rp(scope="openid") as rp:
        authorize_url, _ = rp.create_authorization_url(discovery["authorization_endpoint"])
    assert "code_challenge" not in authorize_url
    callback = await complete_login(browser, authorize_url, account="alice",
                                    redirect_uri=REDIRECT_URI)
    params = _query(callback)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


async def test_offline_access_with_consent_issues_refresh_token(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    verifier = secrets.token_urlsafe(48)
    async with _rp(scope="openid offline_access") as rp:
        authorize_url, state = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce="n",
            prompt="consent")
        callback = await complete_login(browser, authorize_url, account="alice",
                                        redirect_uri=REDIRECT_URI)
        token = await rp.fetch_token(discovery["token_endpoint"],
                                     authorization_response=callback, state=state,
                                     code_verifier=verifier)
        assert token.get("refresh_token")
        refreshed = await rp.refresh_token(discovery["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]


async def test_abort_gives_access_denied(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    async with _rp(scope=SCOPE) as rp:
        authorize_url, state = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48))
    callback = await abort_login(browser, authorize_url, redirect_uri=REDIRECT_URI)
    params = _query(callback)
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert "code" not in params


async def test_abort_at_consent_gives_access_denied(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    async with _rp(scope=SCOPE) as rp:
        authorize_url, _ = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48))
    callback = await abort_login(browser, authorize_url, redirect_uri=REDIRECT_URI,
                                 account="alice")
    assert _query(callback)["error"] == "access_denied"


async def test_unknown_account_gives_access_denied(
    discovery: dict[str, Any], browser: httpx.AsyncClient
) -> None:
    async with _rp(scope=SCOPE) as rp:
        authorize_url, _ = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48))
    callback = await complete_login(browser, authorize_url, account="mallory",
                                    redirect_uri=REDIRECT_URI)
    params = _query(callback)
    assert params["error"] == "access_denied"
    assert "code" not in params


async def test_forged_token_verifies_against_provider_jwks(
    oidc_keys: tuple[dict[str, Any], RSAKey], discovery: dict[str, Any]
) -> None:
    _, key = oidc_keys
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "forged", "citizen_id": "079000000001",
              "nonce": "n", "iat": now, "exp": now + 60}
    token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])

    decoded = jwt.decode(token, await _provider_keys(discovery), algorithms=["RS256"])
    assert decoded.claims == claims


def test_default_issuer_is_listen_url() -> None:
    with OidcProvider(clients=[], accounts={}) as provider:
        assert provider.issuer == provider.url
        assert provider.url.startswith("http://127.0.0.1:")
        document = httpx.get(provider.discovery_url, timeout=10).json()
        assert document["issuer"] == provider.url
    with pytest.raises(RuntimeError, match="not running"):
        _ = provider.url
