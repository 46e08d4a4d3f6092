"""SLA timers fired by the worker: escalation, notification, automatic actions, each exactly
once; and three worker processes sharing 10,000 due timers without firing any twice."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text

from app.cases import timers
from app.core.db import Base, utcnow
from app.core.outbox import OutboxEvent
from tests.conftest import Backend, only_postgresql
from tests.platform import Platform
from tests.test_cases import act, office, read, submit
from tests.test_workflows import catalogue


async def scalar(backend: Backend, sql: str | Any, **params: Any) -> Any:
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql) if isinstance(sql, str) else sql, params)
    finally:
        await engine.dispose()


def later(days: float) -> Any:
    moment = utcnow() + timedelta(days=days)
    return lambda: moment


async def test_a_case_deadline_escalates_and_notifies_once(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    where = await office(platform, client)  # the case must finish in 3 working days
    case_id = (await submit(client, where))["case"]
    claimed = await client.post(where.cases(f"/{case_id}/claim"), headers=where.officer.headers)
    assert claimed.status_code == 200
    province_officer = await platform.client_for(where.province, ["officer"], by=where.admin)

    # Other tests' cases share the database, so count this case's own breaches.
    first = await timers.run_once(platform.app.state.db, "w1", clock=later(10))
    assert first.fired >= 1 and first.errors == []
    await timers.run_once(platform.app.state.db, "w1", clock=later(20))

    case = (await read(client, where, case_id, where.officer)).json()
    assert case["assignee"] is not None  # escalation widens who may act; it takes nothing
    inbox = await client.get("/api/v1/me/tasks", headers=province_officer.headers)
    assert [(t["case"], t["escalated"]) for t in inbox.json()["items"]] == [(case_id, True)]
    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    breach = [h for h in history if h["kind"] == "breach"]
    assert len(breach) == 1 and breach[0]["detail"]["timer"] == "case"
    events = await scalar(backend, select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.topic == "case.sla_breached",
        OutboxEvent.aggregate_id == uuid.UUID(case_id)))
    assert events == 1


async def test_a_state_deadline_takes_the_automatic_action(client: httpx.AsyncClient,
                                                           platform: Platform) -> None:
    definition = catalogue("ho-kinh-doanh")
    review = next(s for s in definition["states"] if s["name"] == "xem_xet_ho_so")
    review["sla"] = {"duration": "PT4H", "days": "calendar",
                     "on_breach": [{"type": "action", "action": "qua_han_trinh_lanh_dao"}]}
    definition["actions"].append({"name": "qua_han_trinh_lanh_dao",
                                  "title": {"vi": "Quá hạn, trình lãnh đạo",
                                            "en": "Overdue: to the head"},
                                  "from": "xem_xet_ho_so", "to": "trinh_ky",
                                  "roles": ["system"]})
    where = await office(platform, client, definition)
    case_id = (await submit(client, where))["case"]
    assert (await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)).status_code == 200
    await timers.run_once(platform.app.state.db, "w1", clock=later(0.1))
    assert (await read(client, where, case_id, where.reviewer)).json()["state"]["name"] == (
        "xem_xet_ho_so")
    fired = await timers.run_once(platform.app.state.db, "w1", clock=later(0.5))
    assert fired.fired >= 1 and fired.errors == []
    case = (await read(client, where, case_id, where.reviewer)).json()
    assert case["state"]["name"] == "trinh_ky"
    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    assert [(h["kind"], h["actor"], h["action"]) for h in history[-2:]] == [
        ("breach", "system", None), ("action", "system", "qua_han_trinh_lanh_dao")]


def _columns(table: str) -> list[str]:
    return [c.name for c in Base.metadata.tables[table].columns]


async def _clone(backend: Backend, case_id: str, copies: int) -> None:
    """``copies`` cases like ``case_id`` (each with its own submission), each with a case
    timer already due, written past both walls in a few statements."""
    replace = {"submissions": {"id": "ids.submission_id"},
               "cases": {"id": "ids.case_id", "submission_id": "ids.submission_id"}}
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "CREATE TEMP TABLE ids ON COMMIT DROP AS SELECT gen_random_uuid() AS case_id, "
                "gen_random_uuid() AS submission_id FROM generate_series(1, :n)"), {"n": copies})
            original = await conn.scalar(text("SELECT submission_id FROM cases WHERE id = :c"),
                                         {"c": case_id})
            for table, key in (("submissions", original), ("cases", case_id)):
                columns = _columns(table)
                values = ", ".join(replace[table].get(c, f"t.{c}") for c in columns)
                await conn.execute(text(
                    f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "
                    f"FROM {table} t, ids WHERE t.id = :key"), {"key": key})
            await conn.execute(text(
                "INSERT INTO case_timers (tenant_id, id, case_id, kind, due_at) "
                "SELECT c.tenant_id, gen_random_uuid(), ids.case_id, 'case', "
                "now() - interval '1 hour' FROM cases c, ids WHERE c.id = :c"), {"c": case_id})
    finally:
        await engine.dispose()


@only_postgresql()
async def test_three_workers_fire_ten_thousand_timers_exactly_once(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    where = await office(platform, client)
    case_id = (await submit(client, where))["case"]
    await _clone(backend, case_id, 10_000)
    env = {**os.environ, "NENTANG_DATABASE_URL": backend.settings.effective_database_url,
           "NENTANG_DB_APP_ROLE": backend.settings.db_app_role, "NENTANG_AUTO_MIGRATE": "false",
           "NENTANG_LOG_LEVEL": "WARNING"}
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", "--once", "--batch", "100",
        "--name", f"w{i}", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE) for i in range(3)]
    outputs = [await w.communicate() for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs

    fired = await scalar(backend, "SELECT count(*) FROM case_timers WHERE fired_at IS NOT NULL "
                         "AND tenant_id = (SELECT tenant_id FROM cases WHERE id = :c)", c=case_id)
    assert fired == 10_000
    twice = await scalar(backend, "SELECT count(*) FROM (SELECT case_id FROM case_history "
                         "WHERE kind = 'breach' GROUP BY case_id HAVING count(*) > 1) x")
    assert twice == 0
    breaches = await scalar(backend, "SELECT count(*) FROM outbox_events WHERE topic = "
                            "'case.sla_breached' AND tenant_id = (SELECT tenant_id FROM cases "
                            "WHERE id = :c)", c=case_id)
    assert breaches == 10_000
    per_worker = await scalar(backend, "SELECT array_agg(n ORDER BY owner) FROM (SELECT "
                              "lease_owner AS owner, count(*) AS n FROM case_timers WHERE "
                              "fired_at IS NOT NULL AND tenant_id = (SELECT tenant_id FROM "
                              "cases WHERE id = :c) GROUP BY lease_owner) x", c=case_id)
    assert len(per_worker) == 3 and sum(per_worker) == 10_000, per_worker
    claimed = " ".join(err.decode() for _out, err in outputs)
    assert claimed.count("Fired") == 3
