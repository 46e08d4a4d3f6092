"""A bootstrapped platform and helpers that build tenant trees through the public API."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.identity.callers import Operator
from app.tenancy.bootstrap import bootstrap
from app.tenancy.scope import TenantScope, apply_scope

ROOT_CODE = "BNV"


def new_code(prefix: str = "T") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


@dataclass
class Credentials:
    tenant: str
    client_id: str
    client_secret: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Platform:
    app: Any
    http: httpx.AsyncClient
    admin: Credentials

    @classmethod
    async def bootstrap(cls, app: Any, http: httpx.AsyncClient) -> Platform:
        async with app.state.db.sessionmaker() as session, session.begin():
            await apply_scope(session, TenantScope.platform("tests"))
            result = await bootstrap(session, code=ROOT_CODE, name="Bộ Nội vụ",
                                     operator=Operator("tests"))
        assert result.created, "the test database must start empty"
        assert result.client_id and result.client_secret
        token = await fetch_token(http, result.client_id, result.client_secret)
        return cls(app, http, Credentials(ROOT_CODE, result.client_id, result.client_secret,
                                          token))

    async def tenant(self, parent: str, kind: str, *, by: Credentials | None = None,
                     code: str | None = None, name: str | None = None) -> str:
        code = code or new_code(kind[0].upper())
        response = await self.http.post(
            "/api/v1/tenants", headers=(by or self.admin).headers,
            json={"code": code, "name": name or f"{kind} {code}", "kind": kind,
                  "parent": parent})
        assert response.status_code == 201, response.text
        return code

    async def client_for(self, tenant: str, roles: list[str], *,
                         by: Credentials | None = None) -> Credentials:
        response = await self.http.post(
            f"/api/v1/tenants/{tenant}/clients", headers=(by or self.admin).headers,
            json={"name": f"client of {tenant}", "roles": roles})
        assert response.status_code == 201, response.text
        body = response.json()
        token = await fetch_token(self.http, body["client_id"], body["client_secret"])
        return Credentials(tenant, body["client_id"], body["client_secret"], token)

    async def user_for(self, tenant: str, roles: list[str], *, by: Credentials | None = None,
                       **fields: Any) -> dict[str, Any]:
        """Create a user (a generated password comes back as ``initial_password``)."""
        body = {"username": f"u.{uuid.uuid4().hex[:10]}", "display_name": "Nguyễn Văn A",
                "roles": roles, **fields}
        response = await self.http.post(f"/api/v1/tenants/{tenant}/users",
                                         headers=(by or self.admin).headers, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def role_for(self, tenant: str, key: str, permissions: list[str], *,
                       by: Credentials | None = None) -> dict[str, Any]:
        response = await self.http.post(f"/api/v1/tenants/{tenant}/roles",
                                         headers=(by or self.admin).headers,
                                         json={"key": key, "name": key, "permissions": permissions})
        assert response.status_code == 201, response.text
        role: dict[str, Any] = response.json()
        return role

    async def grant(self, tenant: str, principal_id: str, role: str, *,
                    by: Credentials | None = None) -> dict[str, Any]:
        response = await self.http.post(f"/api/v1/tenants/{tenant}/grants",
                                         headers=(by or self.admin).headers,
                                         json={"principal_id": principal_id, "role": role})
        assert response.status_code == 201, response.text
        grant: dict[str, Any] = response.json()
        return grant

    async def province_with_admin(self) -> tuple[str, Credentials]:
        code = await self.tenant(ROOT_CODE, "province")
        return code, await self.client_for(code, ["tenant_admin"])


async def fetch_token(http: httpx.AsyncClient, client_id: str, secret: str) -> str:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(client_id, secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


UI_CLIENT = "nentang-ui"
UI_REDIRECT = "http://localhost:8000/admin/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": UI_CLIENT, "redirect_uri": UI_REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "st-1",
            **extra}


async def password_sign_in(http: httpx.AsyncClient, tenant: str, username: str,
                           password: str, *, totp: str = "", verifier: str | None = None,
                           **extra: str) -> httpx.Response:
    """Post the sign-in form; on success the response is a 303 to the UI with a code."""
    if verifier is None:
        verifier, challenge = pkce_pair()
    else:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                             ).rstrip(b"=").decode()
    return await http.post("/oauth/authorize", data={
        **authorize_params(challenge, **extra), "tenant": tenant, "username": username,
        "password": password, "totp": totp})


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


async def sign_in(http: httpx.AsyncClient, tenant: str, username: str, password: str, *,
                  totp: str = "") -> dict[str, Any]:
    """The whole authorization-code + PKCE flow; returns the token response."""
    verifier, _ = pkce_pair()
    response = await password_sign_in(http, tenant, username, password, totp=totp,
                                      verifier=verifier)
    return await exchange(http, response, verifier)


async def exchange(http: httpx.AsyncClient, response: httpx.Response,
                   verifier: str) -> dict[str, Any]:
    """Redeem the code carried by a sign-in's 303 for the UI's tokens."""
    tokens = await http.post("/oauth/token", data={
        "grant_type": "authorization_code", "client_id": UI_CLIENT, "code": code_from(response),
        "redirect_uri": UI_REDIRECT, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
