"""Cross-tenant cases for data services and gateway trust (see tests/isolation.py).

The victims publish nothing beforehand: the owner's control run publishes (POST) and trusts
(PUT) before its reads, with the victim's form ``vf-pub`` (the complaint form)."""

from __future__ import annotations

import httpx

from tests.isolation import Attack, World, isolation_case
from tests.platform import Credentials

SERVICES = "/api/v1/tenants/{tenant}/data-services"
LOOKUPS = "/api/v1/tenants/{tenant}/lookups"
PREFILL = "/api/v1/tenants/{tenant}/forms/{key}/prefill"
# A lookup of the victim's complaint form; its register is unreachable (the owner's prefill
# answers "fill in by hand").
LOOKUP = {"form": "vf-pub", "field": "loai_don", "settings": {
    "url": "http://127.0.0.1:9/register/{value}", "fills": {"an_danh": "/an_danh"},
    "timeout_seconds": 0.5}}
TRUST = "/api/v1/tenants/{tenant}/gateway-trust"
# A gateway's public key (P-256), as a JWKS.
JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "isolation",
                  "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                  "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}


@isolation_case("GET", SERVICES)
def list_data_services(world: World, victim: str) -> Attack:
    return Attack("GET", SERVICES.format(tenant=victim))


@isolation_case("POST", SERVICES)
def publish_data_service(world: World, victim: str) -> Attack:
    return Attack("POST", SERVICES.format(tenant=victim), json={
        "name": "khieu-nai", "title": "Khiếu nại", "source": "submissions", "form": "vf-pub",
        "fields": ["loai_don"], "consumers": ["VN/GOV/000.00.00.G22/KHIEU-NAI"]})


@isolation_case("GET", TRUST)
def read_gateway_trust(world: World, victim: str) -> Attack:
    return Attack("GET", TRUST.format(tenant=victim))


@isolation_case("PUT", TRUST)
def replace_gateway_trust(world: World, victim: str) -> Attack:
    return Attack("PUT", TRUST.format(tenant=victim), json={
        "issuer": "https://lgsp.example.gov.vn", "audience": "nentang", "keys": JWKS})


async def victim_lookups(http: httpx.AsyncClient, tenant: str,
                         admin: Credentials) -> dict[str, str]:
    made = await http.put(f"{LOOKUPS.format(tenant=tenant)}/victim-lookup", json=LOOKUP,
                          headers=admin.headers)
    assert made.status_code == 200, made.text
    return {}


@isolation_case("GET", LOOKUPS)
def list_lookups(world: World, victim: str) -> Attack:
    return Attack("GET", LOOKUPS.format(tenant=victim))


@isolation_case("PUT", LOOKUPS + "/{name}")
def replace_lookup(world: World, victim: str) -> Attack:
    return Attack("PUT", f"{LOOKUPS.format(tenant=victim)}/victim-lookup", json=LOOKUP)


@isolation_case("DELETE", LOOKUPS + "/{name}")
def delete_lookup(world: World, victim: str) -> Attack:
    return Attack("DELETE", f"{LOOKUPS.format(tenant=victim)}/victim-lookup")


@isolation_case("POST", PREFILL)
def prefill_from_victims_lookup(world: World, victim: str) -> Attack:
    return Attack("POST", PREFILL.format(tenant=victim, key="vf-pub"),
                  json={"field": "loai_don", "value": "khieu-nai"})
