"""Another tenant's credentials get 403 or 404 on every tenant-scoped route, and change nothing.

See :mod:`tests.isolation` for the harness and how to register a new route.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Backend
from tests.isolation import Victim, World, load_cases, snapshot
from tests.isolation_deliveries import victim_deliveries
from tests.isolation_forms import victim_forms
from tests.isolation_reports import victim_reports
from tests.isolation_sharing import victim_lookups
from tests.isolation_signing import victim_signatures
from tests.isolation_workflows import delegation, victim_workflows
from tests.pki import build as build_pki
from tests.platform import Credentials, Platform

SCENARIOS = ["sibling-province", "commune-to-parent"]
CASES = load_cases()


@pytest.fixture(scope="session")
async def world(platform: Platform) -> World:
    province_a, admin_a = await platform.province_with_admin()
    commune_a = await platform.tenant(province_a, "commune", by=admin_a)
    commune_admin = await platform.client_for(commune_a, ["tenant_admin"], by=admin_a)
    province_b, admin_b = await platform.province_with_admin()
    commune_b = await platform.tenant(province_b, "commune", by=admin_b)
    await platform.client_for(commune_b, ["officer"], by=admin_b)
    world = World(province_a, admin_a, commune_a, commune_admin, province_b, admin_b, commune_b)
    for victim in (province_a, province_b, commune_b):
        world.victims[victim] = await _victim_objects(platform, victim)
    # A delegation and signatures in each victim, made by the admin whose unit it is (for the
    # owner's run).
    pki = build_pki()
    for victim, admin in ((province_a, admin_a), (province_b, admin_b), (commune_b, admin_b)):
        forms = world.victims[victim].forms
        forms["delegation_id"] = await delegation(platform.http, admin,
                                                  world.victims[victim].user_id)
        forms.update(await victim_signatures(platform.http, victim, admin, pki))
        forms["anchor_pem"] = pki.root.pem
    return world


async def _victim_objects(platform: Platform, tenant: str) -> Victim:
    user = await platform.user_for(tenant, ["officer"])
    client = await platform.client_for(tenant, ["officer"])
    for key in ("victim_role", "doomed_role"):
        await platform.role_for(tenant, key, ["cases:read"])
    other = await platform.user_for(tenant, [])
    grant = await platform.grant(tenant, other["id"], "reviewer")
    forms = await victim_forms(platform.http, tenant, platform.admin)
    forms.update(await victim_reports(platform.http, tenant, platform.admin))
    forms.update(await victim_workflows(platform.http, tenant, platform.admin))
    forms.update(await victim_deliveries(platform, tenant, platform.admin))
    forms.update(await victim_lookups(platform.http, tenant, platform.admin))
    return Victim(user["id"], client.client_id, "victim_role", "doomed_role", grant["id"], forms)


# The owner creates before it reads and deletes last, so a route that reads or removes a
# definition (such as the identity provider) finds the one its PUT or POST case made.
_OWNER_STEPS = {"POST": 0, "PUT": 0, "PATCH": 1, "GET": 2, "DELETE": 3}


def _owner_order(case: tuple[tuple[str, str], object]) -> tuple[int, str, str]:
    (method, path), _builder = case
    return _OWNER_STEPS.get(method, 2), method, path


def attackers(world: World, scenario: str) -> list[tuple[Credentials, str]]:
    if scenario == "sibling-province":
        return [(world.admin_a, world.province_b), (world.admin_a, world.commune_b)]
    return [(world.commune_admin, world.province_a)]


def test_every_tenant_route_has_an_isolation_case(app: Any) -> None:
    routes = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    }
    missing = sorted(routes - set(CASES))
    assert not missing, f"routes without a cross-tenant test in tests/isolation.py: {missing}"
    stale = sorted(set(CASES) - routes)
    assert not stale, f"isolation cases for routes that no longer exist: {stale}"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_other_tenant_cannot_touch(
    route: tuple[str, str], scenario: str, world: World, client: httpx.AsyncClient,
    backend: Backend,
) -> None:
    for credentials, victim in attackers(world, scenario):
        attack = CASES[route](world, victim)
        before = await snapshot(backend)
        response = await client.request(
            attack.method, attack.url, json=attack.json, content=attack.content,
            params=attack.params, headers={**credentials.headers, **attack.headers})
        if attack.check is not None:
            attack.check(response, victim)
        else:
            assert response.status_code in (403, 404), (
                f"{attack.method} {attack.url} by {credentials.tenant}: "
                f"{response.status_code} {response.text}")
            assert response.headers["content-type"] == "application/problem+json"
        assert await snapshot(backend) == before, "the database changed"


async def test_the_owner_can_do_what_attackers_cannot(
    world: World, client: httpx.AsyncClient
) -> None:
    """The same requests succeed for the victim's own admin, so the 404s above are isolation,
    not broken routes."""
    for route, builder in sorted(CASES.items(), key=_owner_order):
        attack = builder(world, world.province_b)
        response = await client.request(
            attack.method, attack.url, json=attack.json, content=attack.content,
            params=attack.params, headers={**world.admin_b.headers, **attack.headers})
        assert response.status_code < 400, f"{route}: {response.status_code} {response.text}"
