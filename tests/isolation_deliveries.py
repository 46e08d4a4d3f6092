"""Cross-tenant cases for hook deliveries and webhook signing keys.

Each victim's ``vw-pub`` cases queue a delivery to a loopback address; :func:`victim_deliveries`
runs the worker with the default (strict) target rule, which gives them up at once, so every
victim holds a dead delivery for the replay case to name."""

from __future__ import annotations

from app.deliveries import worker
from tests.isolation import Attack, World, isolation_case
from tests.platform import Credentials, Platform

DELIVERIES = "/api/v1/tenants/{tenant}/deliveries"
SECRETS = "/api/v1/tenants/{tenant}/webhook-secrets"
SUBSCRIPTIONS = "/api/v1/tenants/{tenant}/subscriptions"


async def victim_deliveries(platform: Platform, tenant: str,
                            admin: Credentials) -> dict[str, str]:
    await worker.run_once(platform.app.state.db, "isolation", options=worker.Options())
    listed = await platform.http.get(DELIVERIES.format(tenant=tenant),
                                      params={"status": "dead"}, headers=admin.headers)
    assert listed.status_code == 200 and listed.json()["items"], listed.text
    made = await platform.http.post(SUBSCRIPTIONS.format(tenant=tenant), headers=admin.headers,
                                    json=_subscription("victim-sub"))
    assert made.status_code == 201, made.text
    return {"delivery_id": listed.json()["items"][0]["id"], "subscription_id": made.json()["id"]}


def _subscription(name: str) -> dict[str, object]:
    return {"name": name, "transport": "webhook", "events": ["case.closed"],
            "target": {"url": "http://127.0.0.1:9/nentang-isolation-subscription"}}


def _delivery(world: World, victim: str, suffix: str = "") -> str:
    return f"{DELIVERIES.format(tenant=victim)}/{world.victims[victim].forms['delivery_id']}" \
        + suffix


@isolation_case("GET", DELIVERIES)
def list_deliveries(world: World, victim: str) -> Attack:
    return Attack("GET", DELIVERIES.format(tenant=victim), params={"status": "dead"})


@isolation_case("GET", DELIVERIES + "/{delivery_id}")
def read_delivery(world: World, victim: str) -> Attack:
    return Attack("GET", _delivery(world, victim))


@isolation_case("POST", DELIVERIES + "/{delivery_id}/replay")
def replay_delivery(world: World, victim: str) -> Attack:
    return Attack("POST", _delivery(world, victim, "/replay"))


@isolation_case("GET", SECRETS)
def list_secrets(world: World, victim: str) -> Attack:
    return Attack("GET", SECRETS.format(tenant=victim))


@isolation_case("POST", SECRETS)
def create_secret(world: World, victim: str) -> Attack:
    return Attack("POST", SECRETS.format(tenant=victim), json={"overlap_seconds": 60})


@isolation_case("GET", DELIVERIES + "/{delivery_id}/attempts")
def list_attempts(world: World, victim: str) -> Attack:
    return Attack("GET", _delivery(world, victim, "/attempts"))


def _subscription_url(world: World, victim: str) -> str:
    return f"{SUBSCRIPTIONS.format(tenant=victim)}/{world.victims[victim].forms['subscription_id']}"


@isolation_case("GET", SUBSCRIPTIONS)
def list_subscriptions(world: World, victim: str) -> Attack:
    return Attack("GET", SUBSCRIPTIONS.format(tenant=victim))


@isolation_case("POST", SUBSCRIPTIONS)
def create_subscription(world: World, victim: str) -> Attack:
    return Attack("POST", SUBSCRIPTIONS.format(tenant=victim), json=_subscription("new-sub"))


@isolation_case("GET", SUBSCRIPTIONS + "/{subscription_id}")
def read_subscription(world: World, victim: str) -> Attack:
    return Attack("GET", _subscription_url(world, victim))


@isolation_case("PUT", SUBSCRIPTIONS + "/{subscription_id}")
def replace_subscription(world: World, victim: str) -> Attack:
    return Attack("PUT", _subscription_url(world, victim), json=_subscription("victim-sub"))


@isolation_case("DELETE", SUBSCRIPTIONS + "/{subscription_id}")
def delete_subscription(world: World, victim: str) -> Attack:
    return Attack("DELETE", _subscription_url(world, victim))
