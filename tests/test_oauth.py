"""The OAuth 2.0 token endpoint, its metadata and keys, and how the API treats access tokens.

Token requests are made both by hand and by a real OAuth client (authlib), so the endpoint is
checked against what an off-the-shelf client actually sends.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey

from tests.platform import ROOT_CODE, Platform

ISSUER = "http://nentang.test"
TOKEN_URL = f"{ISSUER}/oauth/token"
PROBLEM = "application/problem+json"
PROTECTED = f"/api/v1/tenants/{ROOT_CODE}"


# --- helpers -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":")).encode())


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, read without checking anything."""
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def _assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error"] == error
    assert body["code"] == error.replace("_", "-")
    assert body["type"] == f"/problems/{body['code']}"
    assert body["error_description"]
    return body


def _assert_invalid_token(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    body: dict[str, Any] = response.json()
    assert body["status"] == 401
    assert body["code"] == "invalid-token"
    return body


def _valid_claims(app: Any, token: str) -> dict[str, Any]:
    """The claims of a genuine token, with a fresh lifetime and jti: a template for forgeries."""
    claims = dict(jwt.decode(token, app.state.tokens.key, algorithms=["RS256"]).claims)
    now = int(time.time())
    return {**claims, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}


def _forge(app: Any, claims: dict[str, Any], *, key: RSAKey | None = None,
           **header: Any) -> str:
    """Sign ``claims`` with the app's header (alg, kid, typ at+jwt) and key unless overridden."""
    head = {"alg": "RS256", "kid": app.state.tokens.kid, "typ": "at+jwt", **header}
    return jwt.encode(head, claims, key or app.state.tokens.key, algorithms=["RS256"])


def _oauth_client(app: Any, credentials: Any, method: str,
                  seen: list[httpx.Request]) -> AsyncOAuth2Client:
    async def record(request: httpx.Request) -> None:
        await request.aread()
        seen.append(request)

    return AsyncOAuth2Client(
        client_id=credentials.client_id, client_secret=credentials.client_secret,
        token_endpoint_auth_method=method,
        transport=httpx.ASGITransport(app=app), base_url=ISSUER,
        event_hooks={"request": [record]},
    )


async def _fetch_with_authlib(app: Any, credentials: Any, method: str,
                              ) -> tuple[dict[str, Any], httpx.Response, httpx.Request]:
    seen: list[httpx.Request] = []
    responses: list[httpx.Response] = []

    def keep(response: httpx.Response) -> httpx.Response:
        responses.append(response)
        return response

    async with _oauth_client(app, credentials, method, seen) as oauth:
        oauth.register_compliance_hook("access_token_response", keep)
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert len(seen) == 1 and len(responses) == 1
    return dict(token), responses[0], seen[0]


def _assert_token_response(token: dict[str, Any], response: httpx.Response, app: Any) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == app.state.settings.access_token_ttl_seconds > 0
    assert isinstance(token["access_token"], str) and token["access_token"].count(".") == 2
    assert "refresh_token" not in token


# --- 1. client_credentials through a real OAuth client -------------------------------------


async def test_client_secret_basic_with_authlib(platform: Platform, app: Any,
                                                client: httpx.AsyncClient) -> None:
    token, response, request = await _fetch_with_authlib(app, platform.admin,
                                                         "client_secret_basic")
    _assert_token_response(token, response, app)
    assert request.headers["authorization"].startswith("Basic ")
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"grant_type": "client_credentials"}, "no credentials in the body"

    used = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert used.status_code == 200, used.text
    assert used.json()["code"] == ROOT_CODE


async def test_client_secret_post_with_authlib(platform: Platform, app: Any,
                                               client: httpx.AsyncClient) -> None:
    token, response, request = await _fetch_with_authlib(app, platform.admin,
                                                         "client_secret_post")
    _assert_token_response(token, response, app)
    assert "authorization" not in request.headers
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["client_id"] == platform.admin.client_id
    assert form["client_secret"] == platform.admin.client_secret
    assert form["grant_type"] == "client_credentials"

    used = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert used.status_code == 200, used.text


async def test_authlib_client_sends_its_token_to_the_api(platform: Platform, app: Any) -> None:
    """The same authlib session fetches a token and then uses it as a bearer token."""
    seen: list[httpx.Request] = []
    async with _oauth_client(app, platform.admin, "client_secret_basic", seen) as oauth:
        await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
        response = await oauth.get(PROTECTED)
    assert response.status_code == 200, response.text
    assert seen[-1].headers["authorization"].startswith("Bearer ")


# --- 2. the token verifies against the published keys --------------------------------------


async def test_token_verifies_against_jwks(platform: Platform, app: Any,
                                           client: httpx.AsyncClient) -> None:
    token, _, _ = await _fetch_with_authlib(app, platform.admin, "client_secret_post")
    access_token = token["access_token"]

    keys = await client.get("/.well-known/jwks.json")
    assert keys.status_code == 200
    jwks = keys.json()
    assert len(jwks["keys"]) == 1
    published = jwks["keys"][0]
    assert published["kty"] == "RSA" and published["alg"] == "RS256"
    assert published["use"] == "sig" and published["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & published.keys(), "no private key material"

    decoded = jwt.decode(access_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"] == published["kid"]

    claims = decoded.claims
    assert claims["iss"] == app.state.settings.issuer == ISSUER
    assert claims["aud"] == "nentang-api"
    assert claims["client_id"] == platform.admin.client_id
    uuid.UUID(claims["sub"])
    uuid.UUID(claims["tid"])
    assert claims["jti"]
    now = int(time.time())
    assert claims["iat"] <= now + 1
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    assert claims["exp"] > now

    root = (await client.get(PROTECTED, headers=platform.admin.headers)).json()
    assert claims["tid"] == root["id"]
    assert claims["kind"] == "client"
    assert "grants" not in claims, "grants are read live on each request, not from the token"
    me = (await client.get("/api/v1/me", headers=platform.admin.headers)).json()
    assert [(g["role"], g["tenant"]) for g in me["grants"]] == [("platform_admin", ROOT_CODE)]


# --- 3. token endpoint failures ------------------------------------------------------------


async def test_wrong_secret_is_invalid_client(platform: Platform,
                                              client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(platform.admin.client_id, "not-the-secret"))
    _assert_oauth_error(response, 401, "invalid_client")
    assert "access_token" not in response.json()


async def test_unknown_client_is_invalid_client(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=("ntc_nobody", "whatever"))
    body = _assert_oauth_error(response, 401, "invalid_client")
    wrong_secret = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                     auth=("ntc_nobody", "other"))
    assert wrong_secret.json()["error_description"] == body["error_description"], (
        "an unknown client and a wrong secret must look the same")


async def test_failed_basic_authentication_carries_a_challenge(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """RFC 6749 §5.2: a client that authenticated with the Authorization header and failed
    gets 401 *with* a WWW-Authenticate challenge for that scheme (RFC 9110 §15.5.2 requires
    one on every 401)."""
    for client_id, secret in ((platform.admin.client_id, "not-the-secret"),
                              ("ntc_nobody", "whatever")):
        response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                     auth=(client_id, secret))
        _assert_oauth_error(response, 401, "invalid_client")
        assert response.headers.get("www-authenticate", "").lower().startswith("basic"), (
            f"401 for {client_id} has no Basic challenge: {dict(response.headers)}")


async def test_missing_credentials_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    _assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].lower().startswith("basic")


async def test_two_authentication_methods_is_invalid_request(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/oauth/token", auth=(platform.admin.client_id, platform.admin.client_secret),
        data={"grant_type": "client_credentials", "client_id": platform.admin.client_id,
              "client_secret": platform.admin.client_secret})
    _assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(("body", "error"), [
    ({"data": {"grant_type": "password", "username": "u", "password": "p"}},
     "unsupported_grant_type"),
    ({"data": {"scope": "x"}}, "invalid_request"),
    ({"json": {"grant_type": "client_credentials"}}, "invalid_request"),
], ids=["password-grant", "missing-grant-type", "json-body"])
async def test_malformed_token_requests(platform: Platform, client: httpx.AsyncClient,
                                        body: dict[str, Any], error: str) -> None:
    response = await client.post(
        "/oauth/token", auth=(platform.admin.client_id, platform.admin.client_secret), **body)
    _assert_oauth_error(response, 400, error)


async def test_repeated_parameter_is_rejected(platform: Platform,
                                              client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/token", auth=(platform.admin.client_id, platform.admin.client_secret),
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(response, 400, "invalid_request")

    repeated_id = await client.post(
        "/oauth/token",
        content=(f"grant_type=client_credentials&client_id={platform.admin.client_id}"
                 f"&client_id={platform.admin.client_id}"
                 f"&client_secret={platform.admin.client_secret}").encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(repeated_id, 400, "invalid_request")



async def test_repeated_parameter_with_a_blank_value_is_rejected(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """RFC 6749 §3.2: parameters MUST NOT be sent more than once, blank or not."""
    response = await client.post(
        "/oauth/token", auth=(platform.admin.client_id, platform.admin.client_secret),
        content=b"grant_type=client_credentials&grant_type=",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(response, 400, "invalid_request")


async def test_form_media_type_is_case_insensitive(platform: Platform,
                                                   client: httpx.AsyncClient) -> None:
    """RFC 9110 §8.3.1: media type and subtype are case-insensitive."""
    response = await client.post(
        "/oauth/token", auth=(platform.admin.client_id, platform.admin.client_secret),
        content=b"grant_type=client_credentials",
        headers={"Content-Type": "Application/X-WWW-Form-URLEncoded; charset=UTF-8"})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


async def test_failed_token_request_releases_its_connection(
    platform: Platform, app: Any, client: httpx.AsyncClient
) -> None:
    """A request that fails after touching the database rolls back and returns its pooled
    connection before the response goes out, as a successful one commits and returns it."""
    pool = app.state.db.engine.pool
    gc.collect()
    for _ in range(3):
        await asyncio.sleep(0)
    before = pool.checkedout()
    ok = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(platform.admin.client_id, platform.admin.client_secret))
    assert ok.status_code == 200
    assert pool.checkedout() == before, "the successful request returned its connection"

    failed = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(platform.admin.client_id, "not-the-secret"))
    _assert_oauth_error(failed, 401, "invalid_client")
    assert pool.checkedout() == before, (
        "the failed request still holds its connection (and open transaction) after its "
        "response was sent")

# --- 4. access tokens the API must refuse --------------------------------------------------


async def test_forged_token_helper_is_sound(platform: Platform, app: Any,
                                            client: httpx.AsyncClient) -> None:
    """Control: a token built by ``_forge`` with nothing wrong is accepted, so each rejection
    below is caused by the one defect it introduces."""
    token = _forge(app, _valid_claims(app, platform.admin.token))
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


async def test_no_authorization_header(client: httpx.AsyncClient) -> None:
    _assert_invalid_token(await client.get(PROTECTED))


async def test_non_bearer_scheme(platform: Platform, client: httpx.AsyncClient) -> None:
    response = await client.get(PROTECTED, auth=(platform.admin.client_id,
                                                 platform.admin.client_secret))
    _assert_invalid_token(response)


async def test_tampered_payload(platform: Platform, client: httpx.AsyncClient) -> None:
    header, _, signature = platform.admin.token.split(".")
    _, claims = _unverified(platform.admin.token)
    claims["client_id"] = "ntc_someone_else"
    tampered = ".".join([header, _segment(claims), signature])
    assert tampered != platform.admin.token
    _assert_invalid_token(await client.get(PROTECTED,
                                           headers={"Authorization": f"Bearer {tampered}"}))


async def test_token_signed_with_another_key(platform: Platform, app: Any,
                                             client: httpx.AsyncClient) -> None:
    intruder = RSAKey.generate_key(2048, private=True)
    token = _forge(app, _valid_claims(app, platform.admin.token), key=intruder)
    assert _unverified(token)[0]["kid"] == app.state.tokens.kid, "it even claims the real kid"
    _assert_invalid_token(await client.get(PROTECTED,
                                           headers={"Authorization": f"Bearer {token}"}))


async def test_alg_none_token(platform: Platform, app: Any, client: httpx.AsyncClient) -> None:
    claims = _valid_claims(app, platform.admin.token)
    for alg in ("none", "None", "NONE"):
        token = ".".join([_segment({"alg": alg, "typ": "at+jwt",
                                    "kid": app.state.tokens.kid}), _segment(claims), ""])
        _assert_invalid_token(await client.get(PROTECTED,
                                               headers={"Authorization": f"Bearer {token}"}))


async def test_expired_token(platform: Platform, app: Any, client: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = {**_valid_claims(app, platform.admin.token), "iat": now - 3600, "exp": now - 600}
    token = _forge(app, claims)
    assert _unverified(token)[1]["exp"] == now - 600
    _assert_invalid_token(await client.get(PROTECTED,
                                           headers={"Authorization": f"Bearer {token}"}))


async def test_wrong_issuer(platform: Platform, app: Any, client: httpx.AsyncClient) -> None:
    claims = {**_valid_claims(app, platform.admin.token), "iss": "http://elsewhere.test"}
    _assert_invalid_token(await client.get(
        PROTECTED, headers={"Authorization": f"Bearer {_forge(app, claims)}"}))


async def test_wrong_audience(platform: Platform, app: Any, client: httpx.AsyncClient) -> None:
    claims = {**_valid_claims(app, platform.admin.token), "aud": "another-api"}
    _assert_invalid_token(await client.get(
        PROTECTED, headers={"Authorization": f"Bearer {_forge(app, claims)}"}))


async def test_id_token_typ_is_not_an_access_token(platform: Platform, app: Any,
                                                   client: httpx.AsyncClient) -> None:
    claims = _valid_claims(app, platform.admin.token)
    for typ in ("JWT", None):
        token = (_forge(app, claims, typ=typ) if typ else
                 jws.serialize_compact({"alg": "RS256", "kid": app.state.tokens.kid},
                                       json.dumps(claims), app.state.tokens.key,
                                       algorithms=["RS256"]))
        assert _unverified(token)[0].get("typ") == typ
        _assert_invalid_token(await client.get(PROTECTED,
                                               headers={"Authorization": f"Bearer {token}"}))


# --- 5. discovery metadata -----------------------------------------------------------------


async def test_authorization_server_metadata(client: httpx.AsyncClient) -> None:
    documents = [await client.get(path) for path in (
        "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")]
    for response in documents:
        assert response.status_code == 200
        meta = response.json()
        assert meta["issuer"] == ISSUER
        assert meta["token_endpoint"] == TOKEN_URL
        assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
        assert set(meta["token_endpoint_auth_methods_supported"]) >= {
            "client_secret_basic", "client_secret_post"}
        assert "client_credentials" in meta["grant_types_supported"]
    assert documents[0].json() == documents[1].json()

    jwks = await client.get(documents[0].json()["jwks_uri"])
    assert jwks.status_code == 200 and jwks.json()["keys"]


# --- 6. a province client's grants ---------------------------------------------------------


async def test_province_client_token_is_confined_to_its_subtree(
    platform: Platform, app: Any, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    sibling, _ = await platform.province_with_admin()
    communes = [await platform.tenant(province, "commune", by=admin) for _ in range(2)]

    root_id = (await client.get(PROTECTED, headers=platform.admin.headers)).json()["id"]
    province_id = (await client.get(f"/api/v1/tenants/{province}",
                                    headers=admin.headers)).json()["id"]
    claims = jwt.decode(admin.token, KeySet.import_key_set(
        (await client.get("/.well-known/jwks.json")).json()), algorithms=["RS256"]).claims
    assert claims["tid"] == province_id
    assert root_id != province_id
    me = (await client.get("/api/v1/me", headers=admin.headers)).json()
    assert [(g["role"], g["tenant"]) for g in me["grants"]] == [("tenant_admin", province)]

    for code in (province, *communes):
        got = await client.get(f"/api/v1/tenants/{code}", headers=admin.headers)
        assert got.status_code == 200, got.text
        assert got.json()["code"] == code
    for code in (sibling, ROOT_CODE):
        hidden = await client.get(f"/api/v1/tenants/{code}", headers=admin.headers)
        assert hidden.status_code == 404, hidden.text
        assert hidden.headers["content-type"] == PROBLEM
