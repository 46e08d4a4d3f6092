"""At least once, in order, through crashes: 1,000 cases are made while the gateway is down;
then it comes up, and worker processes deliver while being killed with SIGKILL mid-delivery,
three times. Every event arrives, each case's events arrive in order, a receiver that drops
repeats by event id sees each once, and the dead letters are exactly the events the gateway
was told to refuse. PostgreSQL only: several worker processes share the queue."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import Backend, only_postgresql
from tests.gateway_simulator import GatewaySimulator
from tests.platform import Platform
from tests.test_cases import office
from tests.test_forms import sample
from tests.test_subscriptions import xroad
from tests.test_workflows import catalogue

CASES = 1_000
REFUSED_EVERY = 97  # the gateway refuses every event of these cases, for good


async def _workers(backend: Backend, count: int) -> list[asyncio.subprocess.Process]:
    env = {**os.environ, "NENTANG_DATABASE_URL": backend.settings.effective_database_url,
           "NENTANG_DB_APP_ROLE": backend.settings.db_app_role, "NENTANG_AUTO_MIGRATE": "false",
           "NENTANG_LOG_LEVEL": "WARNING", "NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS": "true",
           "NENTANG_DELIVERY_BACKOFF_SECONDS": "0.2", "NENTANG_DELIVERY_TIMEOUT_SECONDS": "2",
           "NENTANG_DELIVERY_LEASE_SECONDS": "4", "NENTANG_DELIVERY_MAX_ATTEMPTS": "100"}
    return [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", "--poll", "0.2", "--batch", "40",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(count)]


async def _pending(backend: Backend, tenant: str) -> int:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT count(*) FROM deliveries d JOIN tenants t ON t.id = d.tenant_id "
                "WHERE t.code = :t AND d.status = 'pending'"), {"t": tenant}))
    finally:
        await engine.dispose()


async def _dead(backend: Backend, tenant: str) -> set[tuple[str, str]]:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT d.ordering_key::text, e.id::text FROM deliveries d "
                "JOIN outbox_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id "
                "JOIN tenants t ON t.id = d.tenant_id WHERE t.code = :t AND d.status = 'dead'"),
                {"t": tenant})
            return {(r[0], r[1]) for r in rows}
    finally:
        await engine.dispose()


@only_postgresql()
async def test_every_event_arrives_once_deduplicated_in_order_through_three_kills(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    definition = catalogue("ho-kinh-doanh")
    start = next(s for s in definition["states"] if s["type"] == "start")
    start["on_enter"] = [{"type": "sharing", "event": "hkd.da-nop"}]  # a second event per case
    where = await office(platform, client, definition)
    with GatewaySimulator(down=True, delay=0.01).running() as gateway:
        made = await client.post(f"/api/v1/tenants/{where.province}/subscriptions",
                                 headers=where.admin.headers, json={
                                     "name": "lgsp", "transport": "xroad",
                                     "target": xroad(gateway),
                                     "events": ["case.opened", "sharing:hkd.da-nop"]})
        assert made.status_code == 201, made.text
        data = sample("ho-kinh-doanh")
        cases: list[str] = []
        for _ in range(CASES):
            submitted = await client.post(f"/api/v1/tenants/{where.commune}/submissions",
                                          headers=where.portal.headers,
                                          json={"form": "ho-kinh-doanh", "data": data})
            assert submitted.status_code == 201, submitted.text
            cases.append(submitted.json()["case"])
        refused = set(cases[::REFUSED_EVERY])
        gateway.refused_cases = refused

        workers = await _workers(backend, 2)
        try:
            await asyncio.sleep(1.5)  # they try while the gateway is down
            assert not gateway.unique_events()
            gateway.down = False
            kills = 0
            deadline = time.monotonic() + 240
            while await _pending(backend, where.commune) and time.monotonic() < deadline:
                arrived = len(gateway.received)
                if kills < 3 and arrived >= (kills + 1) * 2 * CASES // 4:
                    victim = workers.pop(0)
                    victim.send_signal(signal.SIGKILL)  # mid-delivery: requests in flight
                    await victim.wait()
                    kills += 1
                    workers += await _workers(backend, 1)
                await asyncio.sleep(0.1)
            assert kills == 3, f"only {kills} kills: {len(gateway.received)} arrivals"
            assert await _pending(backend, where.commune) == 0, "deliveries still pending"
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                await worker.wait()

        arrived: dict[str, list[Any]] = {}
        for arrival in gateway.unique_events():
            arrived.setdefault(arrival.body["case"]["id"], []).append(arrival)
        delivered = [c for c in cases if c not in refused]
        assert set(arrived) == set(delivered)
        for case_id in delivered:  # each once, in the order they happened
            assert [a.body["type"] for a in arrived[case_id]] == ["case.opened",
                                                                 "case.hook.sharing"]
        dead = await _dead(backend, where.commune)
        assert {case for case, _ in dead} == refused and len(dead) == 2 * len(refused)
        total = len([a for a in gateway.received if a.fault != "refused"])
        print(f"{total} arrivals for {2 * len(delivered)} events "
              f"({total - 2 * len(delivered)} repeats dropped by event id)")
