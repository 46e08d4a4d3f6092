"""The cross-tenant test harness.

Every route of the public API that touches tenant data registers an *isolation case* here:
a function that, given a victim tenant, builds the request an attacker would send against
it. ``tests/test_isolation.py`` then sends every case with the credentials of

* an administrator of a **sibling** province (victims: the other province and its commune), and
* an administrator of a **commune** (victim: its own parent province),

and asserts a 403 or 404 *and* that the database is byte-for-byte unchanged. It also fails
when the OpenAPI document lists an ``/api/v1`` route with no registered case, so a new
endpoint cannot ship without its isolation test.

To cover a new route, add a function decorated with ``@isolation_case(METHOD, PATH)`` where
PATH is the route exactly as OpenAPI spells it, here or in a ``tests/isolation_<area>.py``
module (each is loaded by :func:`load_cases`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.core.db import Base
from tests.conftest import Backend
from tests.platform import Credentials, new_code


@dataclass
class Attack:
    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # None: the response must be 403 or 404. Otherwise a custom check of the response.
    check: Callable[[httpx.Response, str], None] | None = None


@dataclass
class Victim:
    """Objects inside a victim tenant that attacks name by id."""

    user_id: str
    client_id: str
    role_key: str
    doomed_role_key: str
    doomed_grant_id: str
    # Form objects by name (see tests/isolation_forms.py).
    forms: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    province_a: str
    admin_a: Credentials
    commune_a: str
    commune_admin: Credentials
    province_b: str
    admin_b: Credentials
    commune_b: str
    victims: dict[str, Victim] = field(default_factory=dict)


Builder = Callable[[World, str], Attack]
CASES: dict[tuple[str, str], Builder] = {}


def load_cases() -> dict[tuple[str, str], Builder]:
    """Every registered case, including those of the ``tests/isolation_*.py`` modules."""
    for path in sorted(Path(__file__).parent.glob("isolation_*.py")):
        importlib.import_module(f"tests.{path.stem}")
    return CASES


def isolation_case(method: str, path: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        CASES[(method.upper(), path)] = builder
        return builder

    return register


async def snapshot(backend: Backend) -> dict[str, str]:
    """A digest of every row of every table, read past both walls."""
    engine = backend.superuser_engine()
    digests: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = (await conn.execute(text(f"SELECT * FROM {table.name}"))).all()
                canonical = "\n".join(sorted(repr(tuple(map(str, row))) for row in rows))
                digests[table.name] = hashlib.sha256(canonical.encode()).hexdigest()
    finally:
        await engine.dispose()
    return digests


# -- tenants -------------------------------------------------------------------------------

@isolation_case("POST", "/api/v1/tenants")
def create_under_victim(world: World, victim: str) -> Attack:
    return Attack("POST", "/api/v1/tenants",
                  json={"code": new_code(), "name": "x", "kind": "agency", "parent": victim})


def _not_listed(response: httpx.Response, victim: str) -> None:
    assert response.status_code == 200, response.text
    assert victim not in {t["code"] for t in response.json()["items"]}


@isolation_case("GET", "/api/v1/tenants")
def list_visible(world: World, victim: str) -> Attack:
    return Attack("GET", "/api/v1/tenants", params={"limit": "500"}, check=_not_listed)


@isolation_case("GET", "/api/v1/tenants/{tenant}")
def read_tenant(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}")


@isolation_case("PATCH", "/api/v1/tenants/{tenant}")
def rename_tenant(world: World, victim: str) -> Attack:
    return Attack("PATCH", f"/api/v1/tenants/{victim}", json={"name": "taken over"},
                  headers={"If-Match": '"1"'})


@isolation_case("GET", "/api/v1/tenants/{tenant}/children")
def list_children(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/children", params={"recursive": "true"})


# -- identity ------------------------------------------------------------------------------

@isolation_case("POST", "/api/v1/tenants/{tenant}/clients")
def create_client(world: World, victim: str) -> Attack:
    return Attack("POST", f"/api/v1/tenants/{victim}/clients",
                  json={"name": "backdoor", "roles": ["tenant_admin"]})


@isolation_case("GET", "/api/v1/tenants/{tenant}/clients")
def list_clients(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/clients")


# -- audit ---------------------------------------------------------------------------------

@isolation_case("GET", "/api/v1/tenants/{tenant}/audit")
def read_audit(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/audit")


@isolation_case("GET", "/api/v1/tenants/{tenant}/audit/verify")
def verify_audit(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/audit/verify")


# -- users, roles, grants ------------------------------------------------------------------

@isolation_case("POST", "/api/v1/tenants/{tenant}/users")
def create_user(world: World, victim: str) -> Attack:
    return Attack("POST", f"/api/v1/tenants/{victim}/users",
                  json={"username": f"u{new_code().lower()}", "display_name": "Kẻ lạ",
                        "roles": ["tenant_admin"]})


@isolation_case("POST", "/api/v1/tenants/{tenant}/users/bulk")
def bulk_create_users(world: World, victim: str) -> Attack:
    return Attack("POST", f"/api/v1/tenants/{victim}/users/bulk",
                  json={"users": [{"username": f"u{new_code().lower()}",
                                   "display_name": "Kẻ lạ"}]})


@isolation_case("GET", "/api/v1/tenants/{tenant}/users")
def list_users(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/users")


@isolation_case("GET", "/api/v1/tenants/{tenant}/users/{user_id}")
def read_user(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/users/{world.victims[victim].user_id}")


@isolation_case("PATCH", "/api/v1/tenants/{tenant}/users/{user_id}")
def disable_user(world: World, victim: str) -> Attack:
    return Attack("PATCH", f"/api/v1/tenants/{victim}/users/{world.victims[victim].user_id}",
                  json={"display_name": "taken over"})


@isolation_case("POST", "/api/v1/tenants/{tenant}/users/{user_id}/password")
def reset_password(world: World, victim: str) -> Attack:
    return Attack("POST",
                  f"/api/v1/tenants/{victim}/users/{world.victims[victim].user_id}/password",
                  json={"password": "a-password-we-know"})


@isolation_case("POST", "/api/v1/tenants/{tenant}/users/{user_id}/totp")
def enrol_totp(world: World, victim: str) -> Attack:
    return Attack("POST",
                  f"/api/v1/tenants/{victim}/users/{world.victims[victim].user_id}/totp")


@isolation_case("GET", "/api/v1/tenants/{tenant}/roles")
def list_roles(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/roles")


@isolation_case("POST", "/api/v1/tenants/{tenant}/roles")
def create_role(world: World, victim: str) -> Attack:
    return Attack("POST", f"/api/v1/tenants/{victim}/roles",
                  json={"key": "backdoor", "name": "x", "permissions": ["cases:read"]})


@isolation_case("GET", "/api/v1/tenants/{tenant}/roles/{key}")
def read_role(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/roles/{world.victims[victim].role_key}")


@isolation_case("PUT", "/api/v1/tenants/{tenant}/roles/{key}")
def replace_role(world: World, victim: str) -> Attack:
    return Attack("PUT", f"/api/v1/tenants/{victim}/roles/{world.victims[victim].role_key}",
                  json={"name": "x", "permissions": ["cases:read"]})


@isolation_case("DELETE", "/api/v1/tenants/{tenant}/roles/{key}")
def delete_role(world: World, victim: str) -> Attack:
    return Attack("DELETE",
                  f"/api/v1/tenants/{victim}/roles/{world.victims[victim].doomed_role_key}")


@isolation_case("GET", "/api/v1/tenants/{tenant}/grants")
def list_grants(world: World, victim: str) -> Attack:
    return Attack("GET", f"/api/v1/tenants/{victim}/grants", params={"recursive": "true"})


@isolation_case("POST", "/api/v1/tenants/{tenant}/grants")
def create_grant(world: World, victim: str) -> Attack:
    return Attack("POST", f"/api/v1/tenants/{victim}/grants",
                  json={"principal_id": world.victims[victim].user_id, "role": "tenant_admin"})


@isolation_case("DELETE", "/api/v1/tenants/{tenant}/grants/{grant_id}")
def revoke_grant(world: World, victim: str) -> Attack:
    return Attack("DELETE",
                  f"/api/v1/tenants/{victim}/grants/{world.victims[victim].doomed_grant_id}")


def _me_shows_nothing_of(response: httpx.Response, victim: str) -> None:
    assert response.status_code == 200, response.text
    assert victim not in {g["tenant"] for g in response.json()["grants"]}


@isolation_case("GET", "/api/v1/me")
def whoami(world: World, victim: str) -> Attack:
    return Attack("GET", "/api/v1/me", check=_me_shows_nothing_of)
