"""Cross-tenant cases for a tenant's identity-provider configuration (see tests/isolation.py).

The ``/oauth/federated`` sign-in routes are anonymous and outside ``/api/v1``: no case."""

from __future__ import annotations

from tests.isolation import Attack, World, isolation_case

PATH = "/api/v1/tenants/{tenant}/identity-provider"


@isolation_case("PUT", PATH)
def take_over_identity_provider(world: World, victim: str) -> Attack:
    """A complete, valid configuration: the owner's own request succeeds with it."""
    return Attack("PUT", PATH.format(tenant=victim), json={
        "display_name": "Kẻ lạ", "issuer": "https://id.attacker.example",
        "client_id": "attacker", "client_secret": "attacker-secret",
        "scopes": "openid profile citizen", "match_claim": "citizen_id",
        "jit_enabled": True, "jit_roles": ["officer"]})


@isolation_case("GET", PATH)
def read_identity_provider(world: World, victim: str) -> Attack:
    return Attack("GET", PATH.format(tenant=victim))


@isolation_case("DELETE", PATH)
def delete_identity_provider(world: World, victim: str) -> Attack:
    return Attack("DELETE", PATH.format(tenant=victim))
