"""Cross-tenant cases for the routes that read, change and rotate one API client.

Each attack is a valid request (the victim's own admin gets < 400 with it), aimed at the
victim tenant's client."""

from __future__ import annotations

from tests.isolation import Attack, World, isolation_case

ONE = "/api/v1/tenants/{tenant}/clients/{client_id}"


def _url(world: World, victim: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{victim}/clients/{world.victims[victim].client_id}{suffix}"


@isolation_case("GET", ONE)
def read_client(world: World, victim: str) -> Attack:
    return Attack("GET", _url(world, victim))


@isolation_case("PATCH", ONE)
def revoke_client(world: World, victim: str) -> Attack:
    return Attack("PATCH", _url(world, victim),
                  json={"status": "disabled", "scopes": ["cases:read"],
                        "rate_limit_per_minute": 1, "name": "taken over"})


@isolation_case("POST", ONE + "/secret")
def rotate_client_secret(world: World, victim: str) -> Attack:
    return Attack("POST", _url(world, victim, "/secret"), json={"overlap_seconds": 0})
