"""Local sign-in for officials: the platform's authorization code + PKCE flow, refresh-token
rotation and revocation, TOTP, lockout, and immediate effect of disabling and suspension."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from sqlalchemy import text

from tests.conftest import Backend
from tests.platform import (
    ROOT_CODE,
    UI_CLIENT,
    UI_REDIRECT,
    Platform,
    authorize_params,
    bearer,
    code_from,
    new_code,
    password_sign_in,
    pkce_pair,
    sign_in,
)

PASSWORD = "mật-khẩu-đủ-dài-1"


async def _official(platform: Platform, tenant: str, roles: list[str] | None = None,
                    **fields: Any) -> dict[str, Any]:
    return await platform.user_for(tenant, roles if roles is not None else ["officer"],
                                   password=PASSWORD, **fields)


async def test_sign_in_page_is_served_without_external_assets(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    page = await client.get("/oauth/authorize", params=authorize_params(challenge))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Đăng nhập" in page.text and "http" not in page.text.split("<body>")[1].replace(
        UI_REDIRECT, "")
    assert page.headers["x-frame-options"] == "DENY"


async def test_bad_client_or_redirect_is_never_redirected_to(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    for override in ({"redirect_uri": "https://evil.example/cb"}, {"client_id": "nobody"}):
        page = await client.get("/oauth/authorize",
                                params={**authorize_params(challenge), **override})
        assert page.status_code == 400
        assert "location" not in page.headers


async def test_missing_pkce_is_reported_to_the_client(client: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    del params["code_challenge_method"]
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["st-1"]


async def test_official_signs_in_refreshes_and_signs_out(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    tokens = await sign_in(client, province, user["username"], PASSWORD)
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["kind"] == "user" and me["name"] == user["username"]
    assert me["client_id"] == UI_CLIENT
    assert [(g["role"], g["tenant"]) for g in me["grants"]] == [("officer", province)]

    refreshed = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT,
        "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    rotated = refreshed.json()["refresh_token"]
    assert rotated != tokens["refresh_token"]

    revoked = await client.post("/oauth/revoke", data={"client_id": UI_CLIENT, "token": rotated})
    assert revoked.status_code == 200
    after = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT, "refresh_token": rotated})
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


async def test_reusing_a_rotated_refresh_token_revokes_the_session(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    first = (await sign_in(client, province, user["username"], PASSWORD))["refresh_token"]
    second = (await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT, "refresh_token": first})
    ).json()["refresh_token"]
    replay = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT, "refresh_token": first})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # the thief's replay also kills the legitimate holder's newer token
    legit = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT, "refresh_token": second})
    assert legit.status_code == 400
    audit = await client.get(f"/api/v1/tenants/{province}/audit",
                             headers=platform.admin.headers, params={"limit": "500"})
    assert "session.refresh_reuse" in {r["action"] for r in audit.json()["items"]}


async def test_code_is_single_use_and_bound_to_its_verifier(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    verifier, _ = pkce_pair()
    code = code_from(await password_sign_in(client, province, user["username"], PASSWORD,
                                            verifier=verifier))
    exchange = {"grant_type": "authorization_code", "client_id": UI_CLIENT, "code": code,
                "redirect_uri": UI_REDIRECT}
    wrong = await client.post("/oauth/token", data={**exchange, "code_verifier": "x" * 43})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    good = await client.post("/oauth/token", data={**exchange, "code_verifier": verifier})
    assert good.status_code == 200, good.text
    again = await client.post("/oauth/token", data={**exchange, "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # a code presented twice was intercepted: the session it started is ended
    refresh = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT,
        "refresh_token": good.json()["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_wrong_password_then_lockout_with_backoff(
    platform: Platform, client: httpx.AsyncClient, backend: Backend
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    statuses = [(await password_sign_in(client, province, user["username"], "sai-mật-khẩu-rồi")
                 ).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await password_sign_in(client, province, user["username"], PASSWORD)
    assert locked.status_code == 401, "the right password does not help while locked"
    assert 'data-error="bad-credentials"' in locked.text, "nor does the page say it exists"
    shown = (await client.get(f"/api/v1/tenants/{province}/users/{user['id']}",
                              headers=platform.admin.headers)).json()
    assert shown["locked_until"] is not None
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            failures = (await conn.execute(text(
                "SELECT failed_logins FROM users WHERE username = :u"), {"u": user["username"]}
            )).scalar_one()
    finally:
        await engine.dispose()
    assert failures == 5
    audit = await client.get(f"/api/v1/tenants/{province}/audit",
                             headers=platform.admin.headers, params={"limit": "500"})
    reasons = [r["after"]["reason"] for r in audit.json()["items"]
               if r["action"] == "login.failed"]
    assert reasons == ["bad-password"] * 5 + ["locked"]
    # an admin's password reset lifts the lockout
    reset = await client.post(f"/api/v1/tenants/{province}/users/{user['id']}/password",
                              headers=platform.admin.headers, json={"password": PASSWORD + "x"})
    assert reset.status_code == 200
    await sign_in(client, province, user["username"], PASSWORD + "x")


async def test_unknown_unit_or_user_looks_like_a_wrong_password(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    for tenant, name in ((new_code(), user["username"]), (province, "khong.co.ai")):
        response = await password_sign_in(client, tenant, name, PASSWORD)
        assert response.status_code == 401 and 'data-error="bad-credentials"' in response.text


async def test_admin_with_totp(platform: Platform, client: httpx.AsyncClient) -> None:
    province, _ = await platform.province_with_admin()
    admin = await _official(platform, province, ["tenant_admin"], totp_required=True)
    assert admin["totp_uri"].startswith("otpauth://totp/")
    secret = parse_qs(urlsplit(admin["totp_uri"]).query)["secret"][0]
    without = await password_sign_in(client, province, admin["username"], PASSWORD)
    assert without.status_code == 401 and 'data-error="totp-required"' in without.text
    code = pyotp.TOTP(secret).now()
    await sign_in(client, province, admin["username"], PASSWORD, totp=code)
    replay = await password_sign_in(client, province, admin["username"], PASSWORD, totp=code)
    assert replay.status_code == 401 and 'data-error="bad-totp"' in replay.text
    listed = (await client.get(f"/api/v1/tenants/{province}/users/{admin['id']}",
                               headers=platform.admin.headers)).json()
    assert listed["totp_required"] and listed["totp_enrolled"]
    assert "totp_uri" not in listed and "totp_secret" not in listed


async def test_disabling_a_user_takes_effect_on_the_next_request(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    tokens = await sign_in(client, province, user["username"], PASSWORD)
    headers = bearer(tokens["access_token"])
    assert (await client.get(f"/api/v1/tenants/{province}", headers=headers)).status_code == 200
    disabled = await client.patch(f"/api/v1/tenants/{province}/users/{user['id']}",
                                  headers=platform.admin.headers, json={"status": "disabled"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    refused = await client.get(f"/api/v1/tenants/{province}", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    refresh = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT,
        "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    again = await password_sign_in(client, province, user["username"], PASSWORD)
    assert again.status_code == 401 and 'data-error="bad-credentials"' in again.text, (
        "a disabled account looks like a wrong password, so the page confirms nothing")


async def test_suspending_the_unit_stops_its_officials_on_the_next_request(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, _ = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune")
    user = await _official(platform, commune)
    headers = bearer((await sign_in(client, commune, user["username"], PASSWORD))["access_token"])
    assert (await client.get(f"/api/v1/tenants/{commune}", headers=headers)).status_code == 200
    suspend = await client.patch(f"/api/v1/tenants/{province}", json={"status": "suspended"},
                                 headers={**platform.admin.headers, "If-Match": "*"})
    assert suspend.status_code == 200
    refused = await client.get(f"/api/v1/tenants/{commune}", headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "unit-suspended"


async def test_new_unit_with_its_first_admin_in_one_call(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    code = new_code("X")
    created = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": code, "name": "Xã Mới", "kind": "commune", "parent": province,
        "admin": {"username": "chu.tich", "display_name": "Chủ tịch UBND xã"}})
    assert created.status_code == 201, created.text
    first = created.json()["admin"]
    assert first["username"] == "chu.tich" and first["initial_password"]
    tokens = await sign_in(client, code, "chu.tich", first["initial_password"])
    headers = bearer(tokens["access_token"])
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert [(g["role"], g["tenant"]) for g in me["grants"]] == [("tenant_admin", code)]
    # it administers its unit at once, and sees nothing above it
    hamlet = await client.post("/api/v1/tenants", headers=headers, json={
        "code": new_code("A"), "name": "Tổ dân phố", "kind": "agency", "parent": code})
    assert hamlet.status_code == 201, hamlet.text
    assert (await client.get(f"/api/v1/tenants/{province}", headers=headers)).status_code == 404
    assert (await client.get(f"/api/v1/tenants/{ROOT_CODE}", headers=headers)).status_code == 404


async def test_bad_admin_block_creates_neither_tenant_nor_user(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    province, admin = await platform.province_with_admin()
    code = new_code("X")
    weak = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": code, "name": "Xã", "kind": "commune", "parent": province,
        "admin": {"username": "chu.tich", "display_name": "Chủ tịch", "password": "ngắn"}})
    assert weak.status_code == 422, weak.text
    assert weak.json()["errors"][0]["pointer"] == "/admin/password"
    assert (await client.get(f"/api/v1/tenants/{code}", headers=admin.headers)).status_code == 404
    malformed = await client.post("/api/v1/tenants", headers=admin.headers, json={
        "code": code, "name": "Xã", "kind": "commune", "parent": province,
        "admin": {"username": "Chủ Tịch", "display_name": "x"}})
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["pointer"] == "/admin/username"


async def test_refreshing_never_extends_the_session(
    platform: Platform, client: httpx.AsyncClient, backend: Backend
) -> None:
    province, _ = await platform.province_with_admin()
    user = await _official(platform, province)
    first = (await sign_in(client, province, user["username"], PASSWORD))["refresh_token"]
    second = (await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": UI_CLIENT, "refresh_token": first})
    ).json()["refresh_token"]
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            expiries = set((await conn.execute(text(
                "SELECT r.expires_at FROM refresh_tokens r JOIN users u "
                "ON u.principal_id = r.principal_id WHERE u.username = :u"),
                {"u": user["username"]})).scalars())
    finally:
        await engine.dispose()
    assert second and len(expiries) == 1, "a rotated token keeps the session's expiry"
