"""A bootstrapped platform and helpers that build tenant trees through the public API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from app.identity.auth import Operator
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

    async def province_with_admin(self) -> tuple[str, Credentials]:
        code = await self.tenant(ROOT_CODE, "province")
        return code, await self.client_for(code, ["tenant_admin"])


async def fetch_token(http: httpx.AsyncClient, client_id: str, secret: str) -> str:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(client_id, secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
