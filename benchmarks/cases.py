"""Cases: transition throughput, the inbox over a million cases, and the SLA timer worker.

    .venv/bin/python -m benchmarks.cases                       # from the repository root
    .venv/bin/python -m benchmarks.cases --cases 100000 --rounds 2 --seconds 5   # quicker
    .venv/bin/python -m benchmarks.cases --report benchmarks/out/cases-<time>.json

What one run does:

1. creates a fresh PostgreSQL database and fresh owner and service roles, migrated exactly
   as ``tests/conftest.py`` does (:meth:`benchmarks.run.Database.created`), plus the floor's
   tables (:mod:`benchmarks.bare_app`, :mod:`benchmarks.bare_cases`); starts the bare app
   (with its case transition, :mod:`benchmarks.bare_cases`) and Nentang (``nentang serve``),
   each on uvicorn with one worker on a free loopback port, as the unprivileged service role;
2. bootstraps the platform, applies the whole of ``tenants/vietnam.json`` (3,356 tenants),
   and, with the platform admin, publishes the catalogue form and workflow
   ``ho-kinh-doanh`` at the root, so every tenant uses them; creates a portal client
   (``api_client``) at a commune of province ``01``, an ``officer`` client at ``01`` (for
   the transitions) and an ``officer`` client at the province whose commune count is
   nearest 100 (for the inbox); submits one application through the API, which opens the
   *template case*, and takes ``tiep_nhan_ho_so`` on a second one through the API;
3. loads ``--cases`` cases (default 1,000,000) in SQL as the superuser, each with its own
   submission (a copy of the template's, so the foreign keys hold), spread over every
   province office and commune of the tree (communes weighted 1 to 5, a province office 15,
   as :mod:`benchmarks.reports` does). ``--open-share`` of them (default 6 %) are open: 30 %
   of those waiting for receipt (``tiep_nhan``) and 35 % in review (``xem_xet_ho_so``), both
   actionable by the ``officer`` role at the case's tenant, 15 % waiting on the applicant
   (``cho_bo_sung``: clock paused, no task), 20 % awaiting the leader's signature
   (``trinh_ky``: ``reviewer`` tasks); 10 % of the open, unpaused ones are claimed by someone
   else. Open cases were opened over the last six days and are due four days after opening,
   so about a third are overdue; those have had their case timer fired and carry the
   workflow's escalation (``officer`` at the parent unit, an escalated task). The rest are
   closed (85 % approved, 10 % refused, 5 % withdrawn) over the last year, with no tasks.
   Every case has its ``routes`` computed with the service's :func:`routes_from` from its
   tenant's lineage, its ``case_tasks`` derived with the service's :func:`task_rows`, its
   pending or fired ``case_timers`` and its ``opened`` history entry. ``VACUUM (ANALYZE)``
   follows, and a sample of open cases is checked against :func:`task_rows`;
4. **the inbox** (``GET /api/v1/me/tasks``) of the inbox officer: first page (``limit=50``)
   and page 5 through the cursor, with and without ``sla=overdue``, each three ways,
   interleaved over ``--rounds`` rounds, rotated each round, sequential requests for
   ``--inbox-seconds`` after ``--inbox-warmup``:

   * ``API``: through the server, timed by the client to the whole response;
   * ``Nentang SQL``: the very statement and parameters the service sends (captured from the
     app in-process), as the service role under the officer's scope, row security on;
   * ``SQL floor``: a hand-written statement for the same page as the superuser.

   All three must return the same cases in the same order (checked first). It then records
   ``EXPLAIN (ANALYZE, BUFFERS)`` of the service's statement (service role and superuser) and
   of the floor, and of the statement under PostgreSQL's generic plan, which a pooled
   connection may switch to from its sixth run;
5. **transitions**: ``POST /api/v1/tenants/{t}/cases/{id}/actions/tiep_nhan_ho_so`` with
   ``If-Match: "<id>.1"`` on a different fresh case every request (cases cloned in SQL from
   the template, spread over the communes of ``01``, topped up before each measurement),
   against the bare floor: ``POST /bare/submissions`` (the JSONB insert that
   :mod:`benchmarks.submissions` calls the like-for-like floor), ``POST /bare`` (the
   foundation floor) and ``POST /bare/cases/{id}/actions/tiep_nhan_ho_so`` (a bare
   transition: one ``UPDATE ... RETURNING`` with the revision check and one history
   ``INSERT`` in a transaction), ``--concurrency`` connections, ``--warmup`` then
   ``--seconds``, interleaved over ``--rounds`` rounds; and the SQL one transition sends
   (:mod:`benchmarks.sqltrace`);
6. **timers**: ``--timers`` cases with a due case timer (cloned like ``_clone`` in
   ``tests/test_timers.py``, with their tasks and history), fired by 1, 2 and 3
   ``nentang worker --once`` processes started together (``--timer-rounds`` rounds, the
   order rotated): timers per second over the wall time from start to the last exit, and
   from the first claim (the earliest lease, less the lease) to the last exit, so a worker's
   start-up (measured alone with nothing due) counts only in the first; worker and
   PostgreSQL CPU per timer; every timer must be fired exactly once (one breach in the
   history and one outbox event each). Then, in-process, one worker's ``run_once`` over
   ``--profile-timers`` timers without and with cProfile (CPU time), and the statements per
   fired timer. The action path gets the same treatment: ``--profile-actions`` sequential
   actions through the app in-process (ASGI, no server), without and with cProfile;
7. prints Markdown tables, writes the raw figures to ``benchmarks/out/``, and drops the
   database and roles whatever happened.

CPU per request of the server process and of PostgreSQL comes from ``/proc``, as in
:mod:`benchmarks.run`, except that PostgreSQL's is that of the backends serving this run's
database only (:class:`DbCpu`; other sessions' test suites share the server), the figure for
every ``postgres`` process being kept in the raw results as ``pg_all_*``. cProfile is run
with a CPU-time clock and counts each resumption of a coroutine as a call, so a coroutine's
cumulative time can exceed the total; own times are exact. The machine is small and noisy:
figures are medians over rounds, ratios are taken within the same run, and nothing here
asserts a timing.

``NENTANG_BENCH_PG_URL`` names a superuser connection (default: the test suite's,
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

# SQL is built from this module's constants, the model's column names and statements
# captured from the service; values are bind parameters, except in EXECUTE of a prepared
# statement (sql_literal quotes them).
# ruff: noqa: S608
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

import app.models  # noqa: F401  (every table in Base.metadata)
from app.cases import timers
from app.cases.service import routes_from, task_rows
from app.core.db import Base
from app.core.db import Database as AppDatabase
from app.core.pagination import decode_cursor
from app.main import create_app
from app.tenancy.models import path_upper
from app.workflows import engine
from app.workflows.definitions import Workflow, compile_workflow
from benchmarks import load, sqltrace
from benchmarks.bare_app import SUBMISSIONS_SCHEMA
from benchmarks.bare_cases import CASES_GRANTS, CASES_SCHEMA
from benchmarks.reports import UNITS_SQL, publish_form, summarise
from benchmarks.run import (
    HOST,
    MANIFEST,
    OUT_DIR,
    PG_URL,
    REPO,
    ROOT_CODE,
    ROOT_NAME,
    Api,
    Credentials,
    Database,
    Server,
    abbreviate,
    cpu_used,
    dsn,
    machine,
    medians,
    nentang_cli,
    postgres_cpu,
    process_cpu,
    revision,
    table,
)
from benchmarks.run import Case as Measured

KEY = "ho-kinh-doanh"
FORM_FILE = REPO / "forms" / KEY / "form.json"
WORKFLOW_FILE = REPO / "workflows" / KEY / "workflow.json"
SAMPLE_FILE = sorted((REPO / "forms" / KEY / "valid").glob("*.json"))[0]
ACT_PROVINCE = "01"  # transitions and timers happen in its communes
ACTION = "tiep_nhan_ho_so"
ROLE = "officer"
PAGE = 50
LATER_PAGE = 5
NEVER = datetime(9999, 12, 31, tzinfo=UTC)  # app.cases.inbox.NEVER
# Open cases: opened over the last OPEN_DAYS days, due DUE_DAYS after opening.
OPEN_DAYS, DUE_DAYS, CLAIMED = 6, 4, 0.10
# (state, status, outcome, revision, share of the open or of the closed cases)
OPEN_STATES = (("tiep_nhan", 1, 0.30), ("xem_xet_ho_so", 2, 0.35), ("cho_bo_sung", 2, 0.15),
               ("trinh_ky", 3, 0.20))
CLOSED_STATES = (("da_cap", "approved", 4, 0.85), ("tu_choi", "rejected", 3, 0.10),
                 ("da_rut", "withdrawn", 2, 0.05))
SAMPLE_CHECK = 300
BARE, BARE_JSON, BARE_MOVE, NENTANG = ("bare POST", "bare JSONB POST", "bare transition",
                                       "nentang action")
API, OWN, FLOOR = "API", "Nentang SQL", "SQL floor"
WORKER_START_RUNS = 3
LEASE = timedelta(seconds=60)  # app.cases.timers.run_once's default lease
GENERIC_TIMEOUT_S = 60


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


async def connect(url: Any, **kwargs: Any) -> asyncpg.Connection:
    return await asyncpg.connect(dsn(url), **kwargs)


class DbCpu:
    """CPU seconds used by the PostgreSQL backends serving one database, from ``/proc``.

    Other work on the same PostgreSQL server (test suites of other sessions) is left out. A
    thread samples every backend of the database while the block runs, so backends that exit
    meanwhile (a worker process's connections) still count, up to their last sample.
    """

    def __init__(self, database: str, interval: float = 0.1) -> None:
        self.marker, self.interval = f" {database} ", interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[int, float]:
        found = {}
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or (entry / "comm").read_text().strip() != "postgres":
                    continue
                if self.marker not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    continue
            except OSError:
                continue
            cpu = process_cpu(int(entry.name))
            if cpu is not None:
                found[int(entry.name)] = cpu
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.last.update(self.sample())

    def __enter__(self) -> DbCpu:
        self.first = self.sample()
        self.last = dict(self.first)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.last.update(self.sample())

    @property
    def used(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / _TICK, total / _TICK


def machine_busy(before: tuple[float, float], after: tuple[float, float],
                 elapsed: float) -> float:
    """Cores the whole machine kept busy between two :func:`machine_cpu` samples."""
    return (after[0] - before[0]) / elapsed


def sessions(database: str) -> int:
    """Sessions PostgreSQL has counted for the database (connections opened, PG 14+)."""
    async def go() -> int:
        conn = await asyncpg.connect(dsn(make_url(PG_URL)))
        try:
            return int(await conn.fetchval(
                "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = $1",
                database) or 0)
        finally:
            await conn.close()
    return asyncio.run(go())


def measure_http(case: Measured, settings: argparse.Namespace, database: str) -> dict[str, Any]:
    """:func:`benchmarks.run.measure`, with PostgreSQL's CPU counted for this database's
    backends only (``pg_*``; every ``postgres`` process's as ``pg_all_*``)."""
    target = case.target()
    asyncio.run(load.run(target, connections=settings.connections, duration=settings.warmup))
    sessions_before = sessions(database)
    server_before, pg_before = process_cpu(case.server.proc.pid), postgres_cpu()
    whole_before = machine_cpu()
    with DbCpu(database) as own:
        result = asyncio.run(load.run(target, connections=settings.connections,
                                      duration=settings.duration, label=case.name))
    whole_after = machine_cpu()
    server_after, pg_after = process_cpu(case.server.proc.pid), postgres_cpu()
    new_sessions = sessions(database) - sessions_before
    if case.cleanup is not None:
        case.cleanup()
    row = result.as_dict()
    row["new_pg_sessions"] = new_sessions
    done, elapsed = max(result.ok, 1), result.elapsed_s
    # Everything the machine did, this run or not: near nproc, the run was short of CPU.
    row["machine_busy"] = machine_busy(whole_before, whole_after, elapsed)
    row["client_busy"] = result.client_cpu_s / elapsed
    if server_before is not None and server_after is not None:
        row["server_cpu_ms_per_req"] = (server_after - server_before) * 1000 / done
        row["server_busy"] = (server_after - server_before) / elapsed
    row["pg_cpu_ms_per_req"] = own.used * 1000 / done
    row["pg_busy"] = own.used / elapsed
    pg_all = cpu_used(pg_before, pg_after)
    if pg_all is not None:
        row["pg_all_cpu_ms_per_req"] = pg_all * 1000 / done
        row["pg_all_busy"] = pg_all / elapsed
    log(f"  {result.line()}")
    return row


# --- cloning rows in SQL -----------------------------------------------------------------------

def columns(table: str) -> list[str]:
    return [c.name for c in Base.metadata.tables[table].columns]


def clone_sql(table: str, replace_: dict[str, str], source: str) -> str:
    """``INSERT INTO table (all columns) SELECT <t.column or its replacement> <source>``."""
    names = columns(table)
    values = ", ".join(replace_.get(c, f"t.{c}") for c in names)
    return f"INSERT INTO {table} ({', '.join(names)}) SELECT {values} {source}"


@dataclass(frozen=True)
class Template:
    """The case opened through the API that every loaded case copies."""

    tenant_id: uuid.UUID
    case_id: uuid.UUID
    submission_id: uuid.UUID
    data: str  # the case's data, as JSON


def escalation_extra(workflow: Workflow) -> list[dict[str, Any]]:
    """``cases.extra`` after the case SLA's breach rules, as the worker stores it."""
    current = engine.Case(state="tiep_nhan", data={})
    for rule in workflow.sla.on_breach if workflow.sla else ():
        if rule["type"] in ("escalate", "reassign"):
            current = engine.breach(current, rule, whole_case=True)
    return [vars(e) for e in current.extra]


def task_spec(workflow: Workflow) -> list[tuple[str, bool, str, str, bool]]:
    """``(state, escalated case, role, jurisdiction, escalated task)`` for every open state,
    from the service's own :func:`task_rows` run on symbolic routes."""
    symbolic = {j: f"@{j}" for j in ("case", "parent", "province", "ministry")}
    found = []
    for name, state in workflow.states.items():
        if state.type == "terminal":
            continue
        for escalated in (False, True):
            extra = escalation_extra(workflow) if escalated else []
            fake = SimpleNamespace(status="open", state=name, routes=symbolic, extra=extra)
            for role, at, esc in sorted(task_rows(cast(Any, fake), workflow)):
                found.append((name, escalated, role, at.removeprefix("@"), esc))
    return found


async def prepare_tables(db: Database, workflow: Workflow) -> dict[str, Any]:
    """``bench_routes`` (every tenant's code and case routes, from :func:`routes_from`) and
    ``bench_task_spec`` (:func:`task_spec`), as the superuser (the service role cannot see
    them)."""
    conn = await connect(db.superuser_url)
    try:
        rows = await conn.fetch("SELECT id, code, kind, path FROM tenants")
        by_id = {str(r["id"]): r for r in rows}
        records = []
        for r in rows:
            ids = r["path"].strip("/").split("/")
            lineage = [(by_id[i]["path"], by_id[i]["kind"]) for i in ids]
            records.append((r["id"], r["code"], r["kind"], json.dumps(routes_from(lineage))))
        await conn.execute("CREATE TABLE bench_routes (tenant_id uuid PRIMARY KEY, code text, "
                           "kind text, routes jsonb)")
        await conn.executemany("INSERT INTO bench_routes VALUES ($1, $2, $3, $4::jsonb)", records)
        spec = task_spec(workflow)
        await conn.execute("CREATE TABLE bench_task_spec (state text, escalated boolean, "
                           "role text, jurisdiction text, esc boolean)")
        await conn.executemany("INSERT INTO bench_task_spec VALUES ($1, $2, $3, $4, $5)", spec)
        await conn.execute("ANALYZE bench_routes")
        return {"tenants": len(records), "task_spec": [list(s) for s in spec]}
    finally:
        await conn.close()


TASKS_SQL = """
INSERT INTO case_tasks (tenant_id, case_id, role, at_path, escalated)
SELECT DISTINCT ON (p.tenant_id, p.case_id, s.role, r.routes ->> s.jurisdiction)
       p.tenant_id, p.case_id, s.role, r.routes ->> s.jurisdiction, s.esc
FROM {plan} p
JOIN bench_routes r ON r.tenant_id = p.tenant_id
JOIN bench_task_spec s ON s.state = p.state AND s.escalated = p.escalated
WHERE p.status = 'open' AND r.routes ? s.jurisdiction
ORDER BY p.tenant_id, p.case_id, s.role, r.routes ->> s.jurisdiction, s.esc DESC
"""


async def clone_fresh(db: Database, template: Template, tenants: Sequence[uuid.UUID],
                      count: int, *, due: bool) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``count`` copies of the template case, still in ``tiep_nhan``, round-robin over
    ``tenants``, each with its submission, history entry, task and case timer: the
    template's pending timer, or (``due``) one that fell due an hour ago."""
    conn = await connect(db.superuser_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE bench_fresh ON COMMIT DROP AS SELECT gen_random_uuid() AS "
                "case_id, gen_random_uuid() AS submission_id, ($1::uuid[])[1 + i % "
                "cardinality($1::uuid[])] AS tenant_id, 'tiep_nhan'::text AS state, "
                "'open'::text AS status, false AS escalated FROM generate_series(1, $2::int) "
                "AS g(i)", list(tenants), count)
            keys = (template.tenant_id, template.submission_id)
            await conn.execute(clone_sql(
                "submissions", {"tenant_id": "f.tenant_id", "id": "f.submission_id"},
                "FROM submissions t, bench_fresh f WHERE t.tenant_id = $1 AND t.id = $2"), *keys)
            keys = (template.tenant_id, template.case_id)
            await conn.execute(clone_sql(
                "cases", {"tenant_id": "f.tenant_id", "id": "f.case_id",
                          "submission_id": "f.submission_id", "routes": "r.routes"},
                "FROM cases t, bench_fresh f JOIN bench_routes r ON r.tenant_id = f.tenant_id "
                "WHERE t.tenant_id = $1 AND t.id = $2"), *keys)
            await conn.execute(clone_sql(
                "case_history", {"tenant_id": "f.tenant_id", "case_id": "f.case_id"},
                "FROM case_history t, bench_fresh f WHERE t.tenant_id = $1 AND t.case_id = $2"),
                *keys)
            await conn.execute(TASKS_SQL.format(plan="bench_fresh"))
            if due:
                await conn.execute(
                    "INSERT INTO case_timers (tenant_id, id, case_id, kind, due_at) SELECT "
                    "f.tenant_id, gen_random_uuid(), f.case_id, 'case', now() - interval "
                    "'1 hour' FROM bench_fresh f")
            else:
                await conn.execute(clone_sql(
                    "case_timers", {"tenant_id": "f.tenant_id", "id": "gen_random_uuid()",
                                    "case_id": "f.case_id"},
                    "FROM case_timers t, bench_fresh f WHERE t.tenant_id = $1 "
                    "AND t.case_id = $2 AND t.fired_at IS NULL"), *keys)
            rows = await conn.fetch("SELECT tenant_id, case_id FROM bench_fresh")
    finally:
        await conn.close()
    return [(r["tenant_id"], r["case_id"]) for r in rows]


PLAN_SQL = f"""
CREATE TEMP TABLE bench_plan AS
WITH g AS (
    SELECT i, 1 + floor(random() * $2::int)::int AS slot, random() AS r, random() AS age,
           random() AS claim
    FROM generate_series(1, $1::int) AS g(i)
), s AS (
    SELECT g.i, g.claim, u.tenant_id, st.state, st.status, st.outcome, st.revision,
           now() - g.age * CASE WHEN st.status = 'closed' THEN interval '365 days'
                                WHEN st.state = 'cho_bo_sung' THEN interval '30 days'
                                ELSE interval '{OPEN_DAYS} days' END AS created_at
    FROM g
    JOIN bench_units u ON u.slot = g.slot
    JOIN bench_states st ON g.r >= st.lo AND g.r < st.hi
)
SELECT s.*, gen_random_uuid() AS case_id, gen_random_uuid() AS submission_id, d.due_at,
       coalesce(d.due_at <= now(), false) AS escalated,
       CASE WHEN d.due_at IS NOT NULL AND s.claim < {CLAIMED}
            THEN gen_random_uuid()::text END AS assignee,
       CASE WHEN s.status = 'closed' THEN least(now(), s.created_at + interval '2 days')
            END AS closed_at,
       CASE WHEN s.state = 'cho_bo_sung' THEN least(now(), s.created_at + interval '1 day')
            END AS paused_since
FROM s
CROSS JOIN LATERAL (
    SELECT CASE WHEN s.status = 'open' AND s.state <> 'cho_bo_sung'
                THEN s.created_at + interval '{DUE_DAYS} days' END AS due_at) d
"""
PLAN_CASES = {
    "tenant_id": "p.tenant_id", "id": "p.case_id", "submission_id": "p.submission_id",
    "state": "p.state", "status": "p.status", "outcome": "p.outcome",
    "extra": "CASE WHEN p.escalated THEN $3::jsonb ELSE '[]'::jsonb END",
    "assignee": "p.assignee", "routes": "r.routes", "revision": "p.revision + p.escalated::int",
    "updated_at": "least(now(), greatest(p.created_at, p.closed_at, p.paused_since, "
                  "CASE WHEN p.escalated THEN p.due_at END))",
    "state_entered_at": "coalesce(p.closed_at, p.paused_since, p.created_at)",
    "closed_at": "p.closed_at", "pauses": "'[]'::jsonb", "paused_since": "p.paused_since",
    "case_due_at": "p.due_at", "case_due_soon_at": "p.due_at - interval '1 day'",
    "state_due_at": "NULL", "state_due_soon_at": "NULL", "created_at": "p.created_at",
}
PLAN_TIMERS = """
INSERT INTO case_timers (tenant_id, id, case_id, kind, state, due_at, fired_at, lease_owner,
                         lease_until)
SELECT p.tenant_id, gen_random_uuid(), p.case_id, 'case', NULL, p.due_at,
       CASE WHEN p.escalated THEN p.due_at END, CASE WHEN p.escalated THEN 'loader' END,
       CASE WHEN p.escalated THEN p.due_at + interval '1 minute' END
FROM bench_plan p WHERE p.due_at IS NOT NULL
"""


def state_bands(open_share: float) -> list[tuple[str, str, str | None, int, float, float]]:
    """``(state, status, outcome, revision, lo, hi)``: a case whose random draw falls in
    ``[lo, hi)`` is in that state."""
    bands, lo = [], 0.0
    for state, rev, share in OPEN_STATES:
        bands.append((state, "open", None, rev, lo, lo + open_share * share))
        lo += open_share * share
    for state, outcome, rev, share in CLOSED_STATES:
        bands.append((state, "closed", outcome, rev, lo, lo + (1 - open_share) * share))
        lo += (1 - open_share) * share
    bands[-1] = (*bands[-1][:5], 1.0 + 1e-9)
    return bands


async def load_cases(db: Database, template: Template, workflow: Workflow, count: int,
                     open_share: float, seed: float) -> dict[str, Any]:
    """Load ``count`` cases (see the module's docstring) and ``VACUUM (ANALYZE)``."""
    conn = await connect(db.superuser_url)
    timings: dict[str, float] = {}

    async def step(name: str, statement: str, *args: Any) -> None:
        started = time.perf_counter()
        await conn.execute(statement, *args)
        timings[name] = round(time.perf_counter() - started, 1)
        log(f"  {name}: {timings[name]} s")

    try:
        await conn.execute("SELECT setseed($1::float8)", seed)
        await conn.execute(UNITS_SQL)
        slots = int(await conn.fetchval("SELECT count(*) FROM bench_units"))
        await conn.execute("CREATE TEMP TABLE bench_states (state text, status text, "
                           "outcome text, revision int, lo float8, hi float8)")
        await conn.executemany("INSERT INTO bench_states VALUES ($1, $2, $3, $4, $5, $6)",
                               state_bands(open_share))
        await step("plan", PLAN_SQL, count, slots)
        await step("submissions", clone_sql(
            "submissions", {"tenant_id": "p.tenant_id", "id": "p.submission_id",
                            "created_at": "p.created_at", "updated_at": "p.created_at",
                            "submitted_at": "p.created_at"},
            "FROM submissions t, bench_plan p WHERE t.tenant_id = $1 AND t.id = $2"),
            template.tenant_id, template.submission_id)
        await step("cases", clone_sql(
            "cases", PLAN_CASES, "FROM cases t, bench_plan p JOIN bench_routes r "
            "ON r.tenant_id = p.tenant_id WHERE t.tenant_id = $1 AND t.id = $2"),
            template.tenant_id, template.case_id, json.dumps(escalation_extra(workflow)))
        await step("case_history", clone_sql(
            "case_history", {"tenant_id": "p.tenant_id", "case_id": "p.case_id",
                             "at": "p.created_at"},
            "FROM case_history t, bench_plan p WHERE t.tenant_id = $1 AND t.case_id = $2"),
            template.tenant_id, template.case_id)
        await step("case_tasks", TASKS_SQL.format(plan="bench_plan"))
        await step("case_timers", PLAN_TIMERS)
        await step("vacuum_analyze", "VACUUM (ANALYZE) submissions, cases, case_history, "
                   "case_tasks, case_timers")
        states = {r["state"]: r["n"] for r in await conn.fetch(
            "SELECT state, count(*) AS n FROM bench_plan GROUP BY state ORDER BY state")}
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'open') AS open, "
            "count(*) FILTER (WHERE escalated) AS overdue_escalated, "
            "count(*) FILTER (WHERE assignee IS NOT NULL) AS claimed FROM bench_plan")
        tasks = int(await conn.fetchval("SELECT count(*) FROM case_tasks"))
        sizes = {t: round(int(await conn.fetchval(f"SELECT pg_total_relation_size('{t}')"))
                          / 2**20) for t in ("submissions", "cases", "case_history",
                                             "case_tasks", "case_timers")}
    finally:
        await conn.close()
    return {"count": count, "open_share": open_share, "seed": seed, "slots": slots,
            "seconds": timings, "states": states, **dict(counts), "case_tasks": tasks,
            "total_mib": sizes}


async def check_sample(db: Database, workflow: Workflow) -> dict[str, Any]:
    """Compare a sample of open cases' ``case_tasks`` with the service's :func:`task_rows`."""
    conn = await connect(db.superuser_url)
    try:
        rows = await conn.fetch(
            "SELECT c.state, c.status, c.routes::text AS routes, c.extra::text AS extra, "
            "coalesce((SELECT json_agg(json_build_array(t.role, t.at_path, t.escalated)) "
            "FROM case_tasks t WHERE t.tenant_id = c.tenant_id AND t.case_id = c.id), "
            "'[]')::text AS tasks FROM cases c TABLESAMPLE SYSTEM (5) "
            "WHERE c.status = 'open' LIMIT $1", SAMPLE_CHECK)
    finally:
        await conn.close()
    differ = []
    for r in rows:
        fake = SimpleNamespace(status=r["status"], state=r["state"],
                               routes=json.loads(r["routes"]), extra=json.loads(r["extra"]))
        want = task_rows(cast(Any, fake), workflow)
        have = {(a, b, c) for a, b, c in json.loads(r["tasks"])}
        if want != have:
            differ.append({"state": r["state"], "want": sorted(want), "have": sorted(have)})
    if differ:
        raise RuntimeError(f"{len(differ)} of {len(rows)} sampled cases have other tasks than "
                           f"the service would store: {differ[:3]}")
    return {"sampled": len(rows), "tasks_as_service": len(rows)}


# --- transitions ---------------------------------------------------------------------------------

class Pool:
    """Fresh cases to act on, one per request; topped up before each measurement."""

    def __init__(self, name: str, make: Callable[[int], list[tuple[str, uuid.UUID]]],
                 path: Callable[[str, uuid.UUID], str], first_guess: int) -> None:
        self.name, self.make, self.path = name, make, path
        self.items: deque[tuple[str, uuid.UUID]] = deque()
        self.need, self.taken, self.exhausted, self.made = first_guess, 0, 0, 0
        self.last: tuple[str, uuid.UUID] | None = None

    def ready(self) -> Pool:
        """Top up to about 1.5 times the most one measurement has used."""
        if len(self.items) < self.need:
            wanted = self.need - len(self.items)
            started = time.perf_counter()
            self.items.extend(self.make(wanted))
            self.made += wanted
            log(f"  {self.name}: {wanted:,} fresh cases in {time.perf_counter() - started:.1f} s")
        self.taken = 0
        return self

    def used(self) -> None:
        self.need = max(self.need, int(self.taken * 1.5) + 500)

    def take(self) -> tuple[str, str]:
        """A path and its If-Match; when none is left, a used one again (it will get 412)."""
        self.taken += 1
        if self.items:
            self.last = self.items.popleft()
        else:
            self.exhausted += 1
        assert self.last is not None
        tenant, case_id = self.last
        return self.path(tenant, case_id), f'"{case_id}.1"'


@dataclass(frozen=True)
class ActionTarget(load.Target):
    """Every request takes the action on the next fresh case of ``pool``."""

    pool: Pool | None = field(default=None, compare=False)

    def encode(self) -> bytes:
        assert self.pool is not None
        path, tag = self.pool.take()
        plain = replace(self, path=path, headers={**self.headers, "If-Match": tag}, pool=None)
        return load.Target.encode(plain)


def bare_case_maker(db: Database, data: str) -> Callable[[int], list[tuple[str, uuid.UUID]]]:
    def make(count: int) -> list[tuple[str, uuid.UUID]]:
        rows = db.fetch("INSERT INTO bench_bare_cases (id, state, revision, data) SELECT "
                        "gen_random_uuid(), 'tiep_nhan', 1, $1::jsonb FROM generate_series(1, "
                        "$2::int) RETURNING id", data, count)
        return [("", r["id"]) for r in rows]
    return make


def unique_body() -> bytes:
    return json.dumps({"code": f"N{load.unique_number()}", "name": "Cơ quan thử tải"},
                      ensure_ascii=False).encode()


def transitions(db: Database, args: argparse.Namespace, bare: Server, nentang: Server,
                officer: Credentials, nentang_pool: Pool, bare_pool: Pool,
                bodies: Callable[[], bytes]) -> list[dict[str, Any]]:
    def after(pool: Pool, cleanup: Callable[[], None] | None = None) -> Callable[[], None]:
        def done() -> None:
            pool.used()
            if cleanup is not None:
                cleanup()
        return done

    def drop_bare_inserts() -> None:
        db.execute("DELETE FROM bench_bare WHERE code LIKE 'N%'",
                   "DELETE FROM bench_bare_submissions", "VACUUM (ANALYZE) bench_bare",
                   "VACUUM (ANALYZE) bench_bare_submissions")

    def vacuum_cases() -> None:
        db.execute("VACUUM (ANALYZE) cases", "VACUUM (ANALYZE) case_tasks",
                   "VACUUM (ANALYZE) case_timers", "VACUUM (ANALYZE) outbox_events")

    cases = [
        Measured(BARE_JSON, bare, lambda: load.Target(
            HOST, bare.port, "POST", "/bare/submissions", body=bodies), drop_bare_inserts),
        Measured(NENTANG, nentang, lambda: ActionTarget(
            HOST, nentang.port, "POST", "", headers=officer.headers(), body=lambda: b"{}",
            pool=nentang_pool.ready()), after(nentang_pool, vacuum_cases)),
        Measured(BARE_MOVE, bare, lambda: ActionTarget(
            HOST, bare.port, "POST", "", body=lambda: b"{}", pool=bare_pool.ready()),
            after(bare_pool, lambda: db.execute("VACUUM (ANALYZE) bench_bare_cases"))),
        Measured(BARE, bare, lambda: load.Target(
            HOST, bare.port, "POST", "/bare", body=unique_body), drop_bare_inserts),
    ]
    settings = argparse.Namespace(connections=args.concurrency, warmup=args.warmup,
                                  duration=args.seconds)
    rows = []
    for index in range(args.rounds):
        shift = index % len(cases)
        log(f"transitions, round {index + 1}/{args.rounds}")
        for case in cases[shift:] + cases[:shift]:
            rows.append({"phase": "transition", "round": index + 1,
                         **measure_http(case, settings, db.name)})
    return rows


def transition_ratios(summary: dict[tuple[str, str], dict[str, float]]) -> dict[str, float]:
    def get(label: str, key: str) -> float:
        return summary[("transition", label)][key]

    found = {}
    for floor in (BARE_JSON, BARE, BARE_MOVE):
        found[f"req/s: {NENTANG} / {floor}"] = get(NENTANG, "rps") / get(floor, "rps")
        found[f"p99: {NENTANG} / {floor}"] = get(NENTANG, "p99_ms") / get(floor, "p99_ms")
        key = "server_cpu_ms_per_req"
        if key in summary[("transition", NENTANG)] and key in summary[("transition", floor)]:
            found[f"server CPU per request: {NENTANG} / {floor}"] = (
                get(NENTANG, key) / get(floor, key))
    return found


async def actions_in_process(settings: Any, pool: Pool, headers: dict[str, str],
                             count: int) -> dict[str, Any]:
    """``count`` sequential actions through the app in this process (no HTTP server, no
    concurrency), without and then with cProfile: CPU per action and where it goes."""
    app_ = create_app(settings)
    transport = httpx.ASGITransport(app=app_)
    found: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            async def one() -> None:
                path, tag = pool.take()
                response = await http.post(path, content=b"{}", headers={
                    **headers, "If-Match": tag, "Content-Type": "application/json"})
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:500]}")

            for _ in range(20):
                await one()
            cpu, started = time.process_time(), time.perf_counter()
            for _ in range(count):
                await one()
            found["plain"] = {"actions": count, "seconds": time.perf_counter() - started,
                              "cpu_s": time.process_time() - cpu}
            profile = cProfile.Profile(time.process_time)
            started = time.perf_counter()
            profile.enable()
            for _ in range(count):
                await one()
            profile.disable()
            found["profiled"] = {"actions": count, "seconds": time.perf_counter() - started}
            found["profile"] = profile_summary(profile)
    finally:
        await app_.state.db.dispose()
    return found


# --- the inbox -----------------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    overdue: bool
    cursor: str | None = None
    after: tuple[datetime, uuid.UUID] | None = None  # the cursor's (urgency, case id)
    page_number: int = 1
    # filled in by capture()
    scope: str = ""
    statement: str = ""
    parameters: list[Any] = field(default_factory=list)

    def query(self) -> str:
        params = {"limit": str(PAGE)}
        if self.overdue:
            params["sla"] = "overdue"
        if self.cursor:
            params["cursor"] = self.cursor
        return "/api/v1/me/tasks?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())


def floor_sql(variant: Variant) -> str:
    """The hand-written statement for the same page: the officer's task range, grouped per
    case, joined to the open cases nobody else holds, most urgent first."""
    where = ["c.status = 'open'", "(c.assignee IS NULL OR c.assignee = $4 OR t.escalated)"]
    if variant.overdue:
        where.append("(c.state_due_at <= $5 OR c.case_due_at <= $5)")
    if variant.after is not None:
        where.append("(coalesce(c.state_due_at, c.case_due_at, $6), c.id) > ($7, $8)")
    return ("SELECT c.*, t.escalated FROM (SELECT tenant_id, case_id, bool_or(escalated) AS "
            "escalated FROM case_tasks WHERE role = $1 AND at_path >= $2 AND at_path < $3 "
            "GROUP BY tenant_id, case_id) t JOIN cases c ON c.tenant_id = t.tenant_id AND "
            "c.id = t.case_id WHERE " + " AND ".join(where)
            + f" ORDER BY coalesce(c.state_due_at, c.case_due_at, $6), c.id LIMIT {PAGE + 1}")


def floor_args(variant: Variant, path: str, me: str, now: datetime) -> list[Any]:
    after = variant.after or (NEVER, uuid.UUID(int=0))
    return [ROLE, path, path_upper(path), me, now, NEVER, *after]


async def capture(settings: Any, variants: list[Variant],
                  headers: dict[str, str]) -> dict[str, Any]:
    """Run every variant in-process (:func:`benchmarks.sqltrace.trace`) and keep, besides the
    trace, the inbox statement, its parameters and the scope set before it."""
    seen: dict[str, list[tuple[str, Any]]] = {}
    current = [""]

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.setdefault(current[0], []).append((statement, parameters))

    def request(variant: Variant) -> Callable[[httpx.AsyncClient], Awaitable[int]]:
        async def go(http: httpx.AsyncClient) -> int:
            current[0] = variant.name
            seen[variant.name] = []
            return await sqltrace.status(http.get(variant.query(), headers=headers))
        return go

    event.listen(Engine, "before_cursor_execute", record)
    try:
        trace = await sqltrace.trace(settings, {f"GET /api/v1/me/tasks ({v.name})": request(v)
                                                for v in variants})
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    for variant in variants:
        for statement, parameters in seen[variant.name]:
            if "nentang.scope" in statement:
                variant.scope = next(iter(parameters))
            elif "case_tasks" in statement and "ORDER BY" in statement:
                variant.statement, variant.parameters = statement, list(parameters)
                break
        if not variant.statement:
            raise RuntimeError(f"no inbox statement captured for {variant.name}")
    return trace


def ids_of(rows: Sequence[Any]) -> list[str]:
    out = []
    for row in rows[:PAGE]:
        keys = list(row.keys())
        key = "id" if "id" in keys else next(k for k in keys if k.endswith("_id")
                                             and k.startswith("cases"))
        out.append(str(row[key]))
    return out


async def sql_runs(url: Any, statement: str, args: Sequence[Any], *, scope: str | None,
                   seconds: float, warmup: float, label: str, database: str) -> dict[str, Any]:
    """Sequential runs of one statement on one connection (prepared, as the service's
    driver does), timed to the last row, with PostgreSQL's CPU."""
    conn = await connect(url)
    try:
        if scope is not None:
            await conn.execute("SELECT set_config('nentang.scope', $1, false)", scope)
        deadline = time.perf_counter() + warmup
        while time.perf_counter() < deadline:
            await conn.fetch(statement, *args)
        latencies: list[float] = []
        with DbCpu(database, interval=1.0) as own:  # the backend lives throughout
            started = time.perf_counter()
            deadline = started + seconds
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                await conn.fetch(statement, *args)
                latencies.append((time.perf_counter() - sent) * 1000)
            elapsed = time.perf_counter() - started
        pg_used = own.used
    finally:
        await conn.close()
    latencies.sort()
    row: dict[str, Any] = {
        "label": label, "ok": len(latencies), "errors": 0, "elapsed_s": round(elapsed, 3),
        "rps": len(latencies) / elapsed, "p50_ms": load.percentile(latencies, 0.5),
        "p90_ms": load.percentile(latencies, 0.9), "p99_ms": load.percentile(latencies, 0.99),
        "max_ms": latencies[-1], "mean_ms": statistics.fmean(latencies)}
    row["pg_cpu_ms_per_req"] = pg_used * 1000 / max(len(latencies), 1)
    row["pg_busy"] = pg_used / elapsed
    log(f"  {label}: p50 {row['p50_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms  n {row['ok']}")
    return row


def inbox(db: Database, settings: Any, args: argparse.Namespace, nentang: Server, api: Api,
          officer: Credentials, province_path: str) -> dict[str, Any]:
    headers = officer.headers()
    me = api.http.get("/api/v1/me", headers=headers).json()["id"]
    variants = []
    for overdue in (False, True):
        first = Variant("overdue, page 1" if overdue else "page 1", overdue)
        variants.append(first)
        cursor, number, page = None, 1, None
        while number < LATER_PAGE:  # walk to page LATER_PAGE, or the last full one
            response = api.http.get(replace(first, cursor=cursor).query(), headers=headers)
            page = response.json()
            if not page["next_cursor"]:
                break
            cursor, number = page["next_cursor"], number + 1
        if cursor is not None:
            moment, last = decode_cursor(cursor, str, uuid.UUID) or ["", ""]
            variants.append(Variant(f"{'overdue, ' if overdue else ''}page {number}", overdue,
                                    cursor, (datetime.fromisoformat(moment), last), number))
    log("Capturing the inbox statements ...")
    trace = asyncio.run(capture(settings, variants, headers))
    now_of = {v.name: next((p for p in v.parameters if isinstance(p, datetime) and p != NEVER),
                           datetime.now(UTC)) for v in variants}
    counts = {}
    for overdue in (False, True):  # how many tasks the officer has
        condition = "AND (c.state_due_at <= $4 OR c.case_due_at <= $4)" if overdue else ""
        counts["overdue" if overdue else "all"] = int(db.fetch(
            "SELECT count(*) FROM (SELECT tenant_id, case_id, bool_or(escalated) AS e FROM "
            "case_tasks WHERE role = $1 AND at_path >= $2 AND at_path < $3 GROUP BY 1, 2) t "
            "JOIN cases c ON c.tenant_id = t.tenant_id AND c.id = t.case_id WHERE "
            "c.status = 'open' AND (c.assignee IS NULL OR t.e) " + condition,
            ROLE, province_path, path_upper(province_path),
            *([datetime.now(UTC)] if overdue else []))[0][0])

    def floor_statement(v: Variant) -> tuple[str, list[Any]]:
        """The floor with its parameters renumbered to those it uses."""
        sql = floor_sql(v)
        all_args = floor_args(v, province_path, me, now_of[v.name])
        used = sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})
        renumber = {old: new for new, old in enumerate(used, start=1)}
        sql = re.sub(r"\$(\d+)", lambda m: f"${renumber[int(m.group(1))]}", sql)
        return sql, [all_args[n - 1] for n in used]

    agreement = {}
    for v in variants:
        api_ids = [i["case"] for i in api.http.get(v.query(), headers=headers).json()["items"]]
        own = asyncio.run(fetch_scoped(db.app_url, v.statement, v.parameters, v.scope))
        sql, sql_args = floor_statement(v)
        base = db.fetch(sql, *sql_args)
        agreement[v.name] = {"api": len(api_ids), OWN: ids_of(own) == api_ids,
                             FLOOR: ids_of(base) == api_ids}
        if not (agreement[v.name][OWN] and agreement[v.name][FLOOR]) or not api_ids:
            raise RuntimeError(f"inbox {v.name}: the three ways differ or are empty: "
                               f"{api_ids[:3]} / {ids_of(own)[:3]} / {ids_of(base)[:3]}")
        log(f"  {v.name}: {len(api_ids)} items, all three agree")

    measure_args = argparse.Namespace(connections=args.inbox_concurrency,
                                      warmup=args.inbox_warmup, duration=args.inbox_seconds)
    items = [(v, m) for v in variants for m in (API, OWN, FLOOR)]
    rows = []
    for index in range(args.rounds):
        log(f"inbox, round {index + 1}/{args.rounds}")
        shift = (index * 4) % len(items)
        for v, method in items[shift:] + items[:shift]:
            label = f"{v.name}: {method}"
            if method == API:
                target = load.Target(HOST, nentang.port, "GET", v.query(),
                                     headers=officer.headers())
                row = measure_http(Measured(label, nentang, lambda t=target: t), measure_args,
                                   db.name)
            elif method == OWN:
                row = asyncio.run(sql_runs(db.app_url, v.statement, v.parameters, scope=v.scope,
                                           seconds=args.inbox_seconds,
                                           warmup=args.inbox_warmup, label=label,
                                           database=db.name))
            else:
                sql, sql_args = floor_statement(v)
                row = asyncio.run(sql_runs(db.superuser_url, sql, sql_args, scope=None,
                                           seconds=args.inbox_seconds,
                                           warmup=args.inbox_warmup, label=label,
                                           database=db.name))
            rows.append({"phase": "inbox", "round": index + 1, "variant": v.name,
                         "method": method, **row, "label": label})
    log("Explaining the inbox ...")
    plans = {}
    for v in variants:
        if v.page_number != 1 and v.overdue:
            continue
        sql, sql_args = floor_statement(v)
        runs = [(f"{v.name}: {OWN}, service role, row security on", db.app_url, v.statement,
                 v.parameters, v.scope),
                (f"{v.name}: {FLOOR}, superuser", db.superuser_url, sql, sql_args, None)]
        if v.name == "page 1":
            runs.insert(1, (f"{v.name}: {OWN}, superuser (no row security)", db.superuser_url,
                            v.statement, v.parameters, None))
        for label, url, statement, statement_args, scope in runs:
            lines = asyncio.run(explain(url, statement, statement_args, scope))
            plans[label] = {"statement": statement, "parameters": statement_args,
                            "scope": scope, "plan": lines, "summary": summarise(lines)}
    generic = {v.name: asyncio.run(generic_plan(db, v)) for v in variants
               if v.page_number == 1}
    return {"province_path": province_path, "tasks": counts,
            "variants": [{"name": v.name, "query": v.query(), "page": v.page_number,
                          "scope": v.scope, "statement": v.statement,
                          "parameters": v.parameters, "floor": floor_statement(v)[0]}
                         for v in variants],
            "agreement": agreement, "rows": rows, "explain": plans, "generic": generic,
            "sql_per_request": trace}


async def fetch_scoped(url: Any, statement: str, args: Sequence[Any],
                       scope: str | None) -> list[Any]:
    """Rows of ``statement``, with ``nentang.scope`` set first when ``scope`` is given."""
    conn = await connect(url)
    try:
        if scope is not None:
            await conn.execute("SELECT set_config('nentang.scope', $1, false)", scope)
        rows: list[Any] = await conn.fetch(statement, *args)
        return rows
    finally:
        await conn.close()


async def explain(url: Any, statement: str, args: Sequence[Any], scope: str | None) -> list[str]:
    lines = await fetch_scoped(url, f"EXPLAIN (ANALYZE, BUFFERS) {statement}", args, scope)
    return [r[0] for r in lines]


def sql_literal(value: Any) -> str:
    """A captured parameter as a SQL literal, for ``EXECUTE`` of a prepared statement."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, (str, uuid.UUID)):
        return "'" + str(value).replace("'", "''") + "'"
    raise TypeError(f"unexpected parameter {value!r}")


async def generic_plan(db: Database, variant: Variant) -> dict[str, Any]:
    """The inbox statement under the custom and the generic plan (as a pooled connection
    runs it from its sixth execution when the generic one looks cheaper), as the service
    role under the officer's scope: EXPLAIN ANALYZE of each, cancelled after a minute."""
    conn = await connect(db.app_url)
    found: dict[str, Any] = {}
    try:
        await conn.execute(f"SET statement_timeout = {GENERIC_TIMEOUT_S * 1000}")
        await conn.execute("SELECT set_config('nentang.scope', $1, false)", variant.scope)
        await conn.execute(f"PREPARE inbox AS {variant.statement}")
        execute = "EXECUTE inbox(" + ", ".join(sql_literal(v) for v in variant.parameters) + ")"
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            try:
                lines = [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")]
                found[mode] = {"plan": lines, "summary": summarise(lines)}
            except asyncpg.QueryCanceledError:
                found[mode] = {"plan": [], "summary": {}, "cancelled_after_s": GENERIC_TIMEOUT_S}
        # What plan_cache_mode = auto picks after five custom runs.
        await conn.execute("RESET plan_cache_mode")
        await conn.execute("DEALLOCATE inbox")
        await conn.execute(f"PREPARE inbox AS {variant.statement}")
        ms = []
        for _ in range(8):
            started = time.perf_counter()
            await conn.execute(execute)
            ms.append(round((time.perf_counter() - started) * 1000, 1))
        found["auto_ms_first_8_runs"] = ms
        found["generic_plans_used"] = await conn.fetchval(
            "SELECT generic_plans FROM pg_prepared_statements WHERE name = 'inbox'")
    finally:
        await conn.close()
    return found


# --- timers ----------------------------------------------------------------------------------

def worker_args(name: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "worker", "--once", "--name", name]


def run_workers(env: dict[str, str], names: list[str], database: str) -> dict[str, Any]:
    """Start ``nentang worker --once`` processes together; wall time to the last exit, the
    moment the first batch was claimed, and the CPU they and this database's backends
    used."""
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    whole_before = machine_cpu()
    with DbCpu(database) as pg:
        started, started_at = time.perf_counter(), time.time()
        procs = [subprocess.Popen(worker_args(n), cwd=REPO, env=env,  # noqa: S603
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in names]
        try:
            outputs = [p.communicate() for p in procs]
        finally:
            for p in procs:  # only if interrupted: the workers started here, by their pids
                if p.poll() is None:
                    p.kill()
                    p.wait()
        wall, ended_at = time.perf_counter() - started, time.time()
    busy = machine_busy(whole_before, machine_cpu(), wall)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = [(p.returncode, err[-2000:]) for p, (_out, err) in zip(procs, outputs, strict=True)
              if p.returncode != 0]
    if failed:
        raise RuntimeError(f"worker failed: {failed}")
    worker_cpu = ((children_after.ru_utime - children_before.ru_utime)
                  + (children_after.ru_stime - children_before.ru_stime))
    return {"wall_s": wall, "started_at": started_at, "ended_at": ended_at,
            "worker_cpu_s": worker_cpu, "pg_cpu_s": pg.used, "machine_busy": busy,
            "said": [err.strip().splitlines()[-1] if err.strip() else "" for _o, err in outputs]}


def verify_fired(db: Database, case_ids: list[uuid.UUID]) -> dict[str, Any]:
    ids = [str(c) for c in case_ids]
    fired = int(db.fetch("SELECT count(*) FROM case_timers WHERE case_id = ANY($1::uuid[]) "
                         "AND fired_at IS NOT NULL", ids)[0][0])
    breaches = int(db.fetch("SELECT count(*) FROM case_history WHERE case_id = ANY($1::uuid[]) "
                            "AND kind = 'breach'", ids)[0][0])
    events = int(db.fetch("SELECT count(*) FROM outbox_events WHERE aggregate_id = "
                          "ANY($1::uuid[]) AND topic = 'case.sla_breached'", ids)[0][0])
    per_worker = {r["lease_owner"]: int(r["n"]) for r in db.fetch(
        "SELECT lease_owner, count(*) AS n FROM case_timers WHERE case_id = ANY($1::uuid[]) "
        "AND fired_at IS NOT NULL GROUP BY lease_owner ORDER BY lease_owner", ids)}
    if not fired == breaches == events == len(ids):
        raise RuntimeError(f"{len(ids)} due timers: {fired} fired, {breaches} breaches, "
                           f"{events} events")
    # A claim leases its batch until claim time + the lease: the first claim's moment.
    first_claim = db.fetch(
        "SELECT extract(epoch FROM min(lease_until) - $2::interval)::float8 FROM case_timers "
        "WHERE case_id = ANY($1::uuid[])", ids, LEASE)[0][0]
    return {"fired": fired, "per_worker": per_worker, "first_claim_at": first_claim}


def vacuum_case_tables(db: Database) -> None:
    db.execute(*(f"VACUUM (ANALYZE) {t}" for t in ("case_timers", "cases", "case_tasks",
                                                    "case_history", "outbox_events")))


def timer_phase(db: Database, settings: Any, args: argparse.Namespace, env: dict[str, str],
                template: Template, communes: list[uuid.UUID]) -> dict[str, Any]:
    log("Worker start-up with nothing due ...")
    idle = [run_workers(env, [f"idle{i}"], db.name) for i in range(WORKER_START_RUNS)]
    startup_cpu = statistics.median(r["worker_cpu_s"] for r in idle)
    counts = [int(k) for k in args.workers.split(",")]
    rows = []
    for index in range(args.timer_rounds):
        shift = index % len(counts)
        for k in counts[shift:] + counts[:shift]:
            made = clone_fresh_sync(db, template, communes, args.timers, due=True)
            vacuum_case_tables(db)
            log(f"timers, round {index + 1}/{args.timer_rounds}: {args.timers:,} due, "
                f"{k} worker(s) ...")
            ran = run_workers(env, [f"r{index + 1}k{k}w{i + 1}" for i in range(k)], db.name)
            checked = verify_fired(db, [c for _t, c in made])
            window = max(ran["ended_at"] - checked["first_claim_at"], 1e-3)
            row = {"round": index + 1, "workers": k, "timers": args.timers, **ran, **checked,
                   "firing_window_s": window,
                   "timers_per_s": args.timers / ran["wall_s"],
                   "timers_per_s_firing": args.timers / window,
                   "worker_cpu_ms_per_timer": ran["worker_cpu_s"] * 1000 / args.timers,
                   "worker_cpu_ms_per_timer_net": max(ran["worker_cpu_s"] - k * startup_cpu, 0)
                   * 1000 / args.timers,
                   "pg_cpu_ms_per_timer": ran["pg_cpu_s"] * 1000 / args.timers,
                   "busy_cores": (ran["worker_cpu_s"] + ran["pg_cpu_s"]) / ran["wall_s"]}
            log(f"  {row['timers_per_s']:.0f} timers/s over the wall time, "
                f"{row['timers_per_s_firing']:.0f} from the first claim; per worker "
                f"{checked['per_worker']}")
            rows.append(row)
    in_process = asyncio.run(timers_in_process(db, settings, template, communes, args))
    return {"startup_s": [r["wall_s"] for r in idle], "startup_cpu_s": startup_cpu,
            "rows": rows, **in_process}


def clone_fresh_sync(db: Database, template: Template, tenants: Sequence[uuid.UUID],
                     count: int, *, due: bool) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return asyncio.run(clone_fresh(db, template, tenants, count, due=due))


class Recorder:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.transactions = 0

    def statement(self, _conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        self.statements.append(" ".join(sql.split()))

    def begin(self, _conn: Any) -> None:
        self.transactions += 1


async def timers_in_process(db: Database, settings: Any, template: Template,
                            communes: list[uuid.UUID], args: argparse.Namespace) -> dict[str, Any]:
    """One worker's ``run_once`` in this process: its rate, its cProfile, its statements."""
    app_db = AppDatabase(settings.effective_database_url, pool_size=2)
    found: dict[str, Any] = {}
    try:
        # A few timers first, so connections, prepared statements and imports are warm.
        await clone_fresh(db, template, communes, 20, due=True)
        await timers.run_once(app_db, "warm")

        await clone_fresh(db, template, communes, args.profile_timers, due=True)
        await asyncio.to_thread(vacuum_case_tables, db)
        cpu_before = time.process_time()
        with DbCpu(db.name) as pg:
            started = time.perf_counter()
            plain = await timers.run_once(app_db, "plain")
            seconds = time.perf_counter() - started
        found["plain"] = {"fired": plain.fired, "seconds": seconds,
                          "worker_cpu_s": time.process_time() - cpu_before, "pg_cpu_s": pg.used}

        await clone_fresh(db, template, communes, args.profile_timers, due=True)
        await asyncio.to_thread(vacuum_case_tables, db)
        profile = cProfile.Profile(time.process_time)
        started = time.perf_counter()
        profile.enable()
        profiled = await timers.run_once(app_db, "profiled")
        profile.disable()
        found["profiled"] = {"fired": profiled.fired, "seconds": time.perf_counter() - started}
        found["profile"] = profile_summary(profile)

        traced_count = 100
        await clone_fresh(db, template, communes, traced_count, due=True)
        recorder = Recorder()
        engine_ = app_db.engine.sync_engine
        event.listen(engine_, "before_cursor_execute", recorder.statement)
        event.listen(engine_, "begin", recorder.begin)
        try:
            traced = await timers.run_once(app_db, "traced")
        finally:
            event.remove(engine_, "before_cursor_execute", recorder.statement)
            event.remove(engine_, "begin", recorder.begin)
        found["sql"] = statements_per_timer(recorder, traced.fired)
    finally:
        await app_db.dispose()
    return found


def statements_per_timer(recorder: Recorder, fired: int) -> dict[str, Any]:
    statements = recorder.statements
    savepoints = [i for i, s in enumerate(statements) if s.startswith("SAVEPOINT")]
    one: list[str] = []
    if savepoints:
        start = savepoints[0]
        end = next((i for i in range(start + 1, len(statements))
                    if statements[i].startswith("RELEASE SAVEPOINT")), len(statements) - 1)
        one = statements[start:end + 1]
    return {"fired": fired, "statements": len(statements), "transactions": recorder.transactions,
            "round_trips": len(statements) + 2 * recorder.transactions,
            "per_timer": len(statements) / max(fired, 1),
            "round_trips_per_timer": (len(statements) + 2 * recorder.transactions)
            / max(fired, 1),
            "one_timer": one,
            "outside_timers": [s for i, s in enumerate(statements) if not any(
                a <= i for a in savepoints)][:20]}


def _where(filename: str) -> str:
    """A profile entry's file without machine paths: repository-relative, or from the
    package (site-packages) or standard library directory on."""
    path = Path(filename)
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1:])
    try:
        return str(path.resolve().relative_to(REPO))
    except (ValueError, OSError):
        pass
    for i, part in enumerate(parts):
        if part.startswith("python3"):
            return "stdlib/" + "/".join(parts[i + 1:])
    return filename if filename.startswith("<") or filename == "~" else path.name


def _family(where: str) -> str:
    """The package an entry belongs to (``builtins`` for C functions)."""
    if where.startswith("stdlib/asyncio"):
        return "asyncio"
    if where.startswith("stdlib/"):
        return "stdlib (other)"
    if where.startswith("<") or where == "~" or "/" not in where:
        return "builtins and generated"
    return where.split("/", 1)[0]


def profile_summary(profile: cProfile.Profile, top: int = 15) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    raw = cast(dict[tuple[str, int, str], tuple[int, int, float, float, Any]],
               stats.stats)  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in raw.values())

    def entry(key: tuple[str, int, str], value: tuple[int, int, float, float, Any]
              ) -> dict[str, Any]:
        filename, line, name = key
        _cc, calls, own, cumulative, _callers = value
        return {"function": f"{_where(filename)}:{line}({name})", "calls": calls,
                "own_s": round(own, 3), "cumulative_s": round(cumulative, 3)}

    by_cumulative = sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)
    by_own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    families: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, own, _ct, _callers) in raw.items():
        family = _family(_where(filename))
        families[family] = families.get(family, 0.0) + own
    app_entries = [kv for kv in by_cumulative if _where(kv[0][0]).startswith("app/")]
    return {"total_own_s": round(total, 3),
            "cumulative": [entry(k, v) for k, v in by_cumulative[:top]],
            "app_cumulative": [entry(k, v) for k, v in app_entries[:25]],
            "own": [entry(k, v) for k, v in by_own[:top]],
            "own_by_family": {k: round(v / total, 3) for k, v in
                              sorted(families.items(), key=lambda kv: -kv[1])}}


# --- the run -----------------------------------------------------------------------------------

def nearest_hundred(manifest: list[dict[str, Any]]) -> tuple[str, int]:
    """The province whose commune count is nearest 100 (the first such, by code)."""
    counts: dict[str, int] = {}
    for entry in manifest:
        if entry["kind"] == "commune":
            counts[entry["parent"]] = counts.get(entry["parent"], 0) + 1
    code = min(sorted(counts), key=lambda c: abs(counts[c] - 100))
    return code, counts[code]


def publish_workflow(api: Api, token: str, definition: dict[str, Any]) -> None:
    workflows = f"/api/v1/tenants/{ROOT_CODE}/workflows"
    api.create(workflows, token, definition)
    done = api.http.post(f"{workflows}/{definition['key']}/versions/1/publish",
                         headers={"Authorization": f"Bearer {token}"})
    if done.status_code != 200:
        raise RuntimeError(f"publish workflow: {done.status_code} {done.text}")


def client(api: Api, token: str, tenant: str, roles: list[str], name: str) -> Credentials:
    made = api.create(f"/api/v1/tenants/{tenant}/clients", token, {"name": name, "roles": roles})
    return Credentials(api, made["client_id"], made["client_secret"])


def submit(api: Api, portal: Credentials, commune: str, sample: dict[str, Any]) -> str:
    response = api.http.post(f"/api/v1/tenants/{commune}/submissions", headers=portal.headers(),
                             json={"form": KEY, "data": sample})
    if response.status_code != 201 or not response.json().get("case"):
        raise RuntimeError(f"submit: {response.status_code} {response.text[:2000]}")
    case: str = response.json()["case"]
    return case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000,
                        help="cases to load for the inbox (default 1,000,000)")
    parser.add_argument("--open-share", type=float, default=0.06,
                        help="share of the loaded cases that are open (default 0.06)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the transitions and of the inbox")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds per transition measurement")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of unmeasured load before each transition measurement")
    parser.add_argument("-c", "--concurrency", type=int, default=32,
                        help="connections for the transitions")
    parser.add_argument("--inbox-seconds", type=float, default=5.0,
                        help="seconds per inbox measurement")
    parser.add_argument("--inbox-warmup", type=float, default=1.0)
    parser.add_argument("--inbox-concurrency", type=int, default=1,
                        help="connections for the inbox through the API (1: sequential)")
    parser.add_argument("--timers", type=int, default=2000,
                        help="due timers per worker run")
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run")
    parser.add_argument("--timer-rounds", type=int, default=2)
    parser.add_argument("--profile-timers", type=int, default=500,
                        help="due timers fired in-process, without and with cProfile")
    parser.add_argument("--profile-actions", type=int, default=200,
                        help="sequential actions taken in-process, without and with cProfile")
    parser.add_argument("--seed", type=float, default=0.42,
                        help="PostgreSQL setseed() for the loader, in [-1, 1]")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: "
                        "inbox, transitions, timers")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the report of an earlier run's raw results")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    manifest: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"]
    inbox_province, inbox_communes = nearest_hundred(manifest)
    act_communes = [e["code"] for e in manifest if e.get("parent") == ACT_PROVINCE]
    form = json.loads(FORM_FILE.read_text(encoding="utf-8"))
    workflow_definition = json.loads(WORKFLOW_FILE.read_text(encoding="utf-8"))
    sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    db = Database.fresh()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(), "machine": machine(), "revision": revision(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "inbox_province": {"code": inbox_province, "communes": inbox_communes},
        "act_province": {"code": ACT_PROVINCE, "communes": len(act_communes)},
        "sample": SAMPLE_FILE.name}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nentang-bench-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        db.execute(SUBMISSIONS_SCHEMA, *CASES_SCHEMA,
                   f'GRANT SELECT, INSERT ON bench_bare_submissions TO "{db.app_role}"',
                   *(g.format(role=db.app_role) for g in CASES_GRANTS))
        report["machine"]["postgresql"] = db.fetch("SHOW server_version")[0][0]
        report["postgresql_settings"] = {name: db.fetch(f"SHOW {name}")[0][0] for name in (
            "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost",
            "synchronous_commit", "jit")}
        env = db.env(data_dir)
        bare = Server("bare", ["-m", "uvicorn", "benchmarks.bare_cases:app", "--workers", "1",
                               "--no-access-log", "--log-level", "warning"],
                      {**os.environ, "BENCH_BARE_DSN": dsn(db.app_url)}, data_dir)
        stack.callback(bare.stop)
        nentang = Server("nentang", ["-m", "app.cli", "serve", "--workers", "1"], env, data_dir)
        stack.callback(nentang.stop)
        bare.wait_ready()
        nentang.wait_ready()

        boot = json.loads(nentang_cli(env, "bootstrap", "--code", ROOT_CODE, "--name", ROOT_NAME))
        log(f"Applying {MANIFEST.relative_to(REPO)} ...")
        started = time.perf_counter()
        nentang_cli(env, "apply", str(MANIFEST.relative_to(REPO)))
        report["apply_seconds"] = round(time.perf_counter() - started, 1)
        db.execute("VACUUM (ANALYZE) tenants", "VACUUM (ANALYZE) audit_records")
        api = Api(nentang.base_url)
        stack.callback(api.http.close)
        platform_token = api.token(boot["client_id"], boot["client_secret"])
        publish_form(api, platform_token, form)
        publish_workflow(api, platform_token, workflow_definition)
        commune = act_communes[0]
        portal = client(api, platform_token, commune, ["api_client"], "benchmark portal")
        act_officer = client(api, platform_token, ACT_PROVINCE, [ROLE], "benchmark officer")
        inbox_officer = client(api, platform_token, inbox_province, [ROLE],
                               "benchmark inbox officer")

        template_case = submit(api, portal, commune, sample)
        checked_case = submit(api, portal, commune, sample)
        moved = api.http.post(f"/api/v1/tenants/{commune}/cases/{checked_case}/actions/{ACTION}",
                              headers={**act_officer.headers(), "If-Match": f'"{checked_case}.1"'},
                              json={})
        if moved.status_code != 200 or moved.json()["state"]["name"] != "xem_xet_ho_so":
            raise RuntimeError(f"action through the API: {moved.status_code} {moved.text[:2000]}")
        row = db.fetch("SELECT tenant_id, id, submission_id, data::text AS data FROM cases "
                       "WHERE id = $1", uuid.UUID(template_case))[0]
        template = Template(row["tenant_id"], row["id"], row["submission_id"], row["data"])
        definition = db.fetch("SELECT definition::text FROM workflow_versions v JOIN workflows w "
                              "ON w.tenant_id = v.tenant_id AND w.id = v.workflow_id "
                              "WHERE w.key = $1", KEY)[0][0]
        workflow = compile_workflow(json.loads(definition))
        report["tables"] = asyncio.run(prepare_tables(db, workflow))
        codes = {r["tenant_id"]: r["code"] for r in db.fetch(
            "SELECT tenant_id, code FROM bench_routes")}
        paths = {r["code"]: r["path"] for r in db.fetch("SELECT code, path FROM tenants")}
        act_ids = [r["id"] for r in db.fetch("SELECT id FROM tenants WHERE code = ANY($1::text[])"
                                             " ORDER BY code", act_communes)]

        log(f"Loading {args.cases:,} cases ...")
        report["load"] = asyncio.run(load_cases(db, template, workflow, args.cases,
                                                args.open_share, args.seed))
        report["load"]["sample"] = asyncio.run(check_sample(db, workflow))

        if "inbox" not in skip:
            report["inbox"] = inbox(db, settings, args, nentang, api, inbox_officer,
                                    paths[inbox_province])

        if "transitions" not in skip:
            def make_cases(count: int) -> list[tuple[str, uuid.UUID]]:
                made = clone_fresh_sync(db, template, act_ids, count, due=False)
                return [(codes[t], c) for t, c in made]

            nentang_pool = Pool("nentang pool", make_cases, lambda t, c: (
                f"/api/v1/tenants/{t}/cases/{c}/actions/{ACTION}"), 5000)
            bare_pool = Pool("bare pool", bare_case_maker(db, template.data),
                             lambda _t, c: f"/bare/cases/{c}/actions/{ACTION}", 20000)
            bodies = (lambda text: lambda: text.replace(
                "00000000-0000-4000-8000-00000000feed", str(uuid.uuid4())).encode())(
                json.dumps({"form": KEY, "data": sample | {
                    "ma_ho_so": "00000000-0000-4000-8000-00000000feed"}}, ensure_ascii=False))
            for pool, server, headers in ((nentang_pool, nentang, act_officer.headers()),
                                          (bare_pool, bare, {})):
                path, tag = pool.ready().take()
                checked = api.http.post(server.base_url + path, json={},
                                        headers={**headers, "If-Match": tag})
                if checked.status_code != 200:
                    raise RuntimeError(f"{pool.name}: {checked.status_code} {checked.text[:2000]}")
            rows = transitions(db, args, bare, nentang, act_officer, nentang_pool, bare_pool,
                               bodies)
            pool_info = {p.name: {"made": p.made, "exhausted": p.exhausted}
                         for p in (nentang_pool, bare_pool)}
            nentang_pool.need = 10
            officer_headers = act_officer.headers()

            def act_once(http: httpx.AsyncClient) -> Awaitable[int]:
                path, tag = nentang_pool.ready().take()
                return sqltrace.status(http.post(path, headers={
                    **officer_headers, "If-Match": tag, "Content-Type": "application/json"},
                    content=b"{}"))

            inbox_headers = inbox_officer.headers()
            trace = asyncio.run(sqltrace.trace(settings, {
                f"POST /api/v1/tenants/{{t}}/cases/{{id}}/actions/{ACTION}": act_once,
                "GET /api/v1/me/tasks (page 1)": lambda http: sqltrace.status(
                    http.get(f"/api/v1/me/tasks?limit={PAGE}", headers=inbox_headers)),
            }))
            log(f"Profiling {args.profile_actions} actions in-process ...")
            nentang_pool.need = 2 * args.profile_actions + 40
            nentang_pool.ready()
            in_process = asyncio.run(actions_in_process(settings, nentang_pool, officer_headers,
                                                        args.profile_actions))
            summary = medians(rows)
            report["transitions"] = {
                "rows": rows, "pools": pool_info, "sql_per_request": trace,
                "in_process": in_process,
                "medians": [{"phase": p, "case": c, **m} for (p, c), m in summary.items()],
                "ratios": transition_ratios(summary)}

        if "timers" not in skip:
            report["timers"] = timer_phase(db, settings, args, env, template, act_ids)
    report["total_seconds"] = round(time.perf_counter() - began)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"cases-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print_report(report, out)
    return 0


# --- the report ----------------------------------------------------------------------------------

def inbox_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["variant"], row["method"]), []).append(row)
    found: dict[str, dict[str, dict[str, float]]] = {}
    for (variant, method), runs in grouped.items():
        entry = {k: statistics.median(r[k] for r in runs) for k in (
            "p50_ms", "p99_ms", "rps", "pg_cpu_ms_per_req", "server_cpu_ms_per_req")
            if all(k in r for r in runs)}
        entry["p99_min_ms"] = min(r["p99_ms"] for r in runs)
        entry["p99_max_ms"] = max(r["p99_ms"] for r in runs)
        entry["requests"] = sum(r["ok"] for r in runs)
        found.setdefault(variant, {})[method] = entry
    return found


def print_sql(trace: dict[str, Any]) -> None:
    for label, found in trace.items():
        print(f"- {label} (HTTP {found['status']}): {len(found['statements'])} statements in "
              f"{found['transactions']} transaction(s) = {found['round_trips']} round trips")
        for statement in found["statements"]:
            print(f"    - `{abbreviate(statement)[:300]}`")


def print_profile(prof: dict[str, Any], count: int, unit: str) -> None:
    per = prof["total_own_s"] * 1000 / max(count, 1)
    print(f"Own CPU time by package ({per:.1f} ms per {unit} under cProfile): " + ", ".join(
        f"{k} {v:.0%}" for k, v in prof["own_by_family"].items() if v >= 0.01) + "\n")
    for key, title in (("cumulative", "cumulative time"), ("own", "own time"),
                       ("app_cumulative", "cumulative time, app/ only")):
        if key not in prof:
            continue
        print(f"Top {len(prof[key])} by {title} (CPU time of this process, cProfile):\n")
        print("| function | calls | own s | cumulative s |\n|---|---:|---:|---:|")
        for e in prof[key]:
            print(f"| `{e['function']}` | {e['calls']:,} | {e['own_s']:.2f} "
                  f"| {e['cumulative_s']:.2f} |")
        print()


def print_report(report: dict[str, Any], out: Path) -> None:
    m, c, rev = report["machine"], report["config"], report["revision"]
    nan = float("nan")
    print("\n## Cases, inbox and timers\n")
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, PostgreSQL "
          f"{m['postgresql']} (" + ", ".join(f"{k} {v}" for k, v in
                                           report["postgresql_settings"].items())
          + f"), Python {m['python']}. {report['tables']['tenants']:,} tenants (apply "
          f"{report['apply_seconds']} s). Whole run {report.get('total_seconds', 0) / 60:.1f} "
          "min.\n")
    load_ = report["load"]
    print(f"Loaded {load_['count']:,} cases ({load_['open']:,} open, "
          f"{load_['overdue_escalated']:,} overdue and escalated, {load_['claimed']:,} claimed "
          f"by others; {load_['case_tasks']:,} task rows) in "
          + ", ".join(f"{k} {v} s" for k, v in load_["seconds"].items())
          + ". Sizes (MiB, with indexes): "
          + ", ".join(f"{k} {v:,}" for k, v in load_["total_mib"].items())
          + f". {load_['sample']['sampled']} sampled open cases have exactly the tasks the "
          "service computes.\n")

    if "inbox" in report:
        ib = report["inbox"]
        prov = report["inbox_province"]
        print(f"### Inbox: officer at province `{prov['code']}` ({prov['communes']} communes), "
              f"{ib['tasks']['all']:,} tasks ({ib['tasks']['overdue']:,} overdue)\n")
        print(f"Sequential requests ({c['inbox_concurrency']} connection), "
              f"{c['inbox_seconds']:g} s x {c['rounds']} rounds, medians (p99: median of the "
              "rounds' p99s, with their range). Ratios are to the SQL floor.\n")
        print(f"| page | {API} p50 / p99 ms | {OWN} p50 / p99 ms | {FLOOR} p50 / p99 ms "
              f"| API / floor (p99) | {OWN} / floor (p99) | server CPU ms/req (API) "
              "| PG CPU ms/req: API / own / floor |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        summary = inbox_summary(ib["rows"])
        for variant, methods in summary.items():
            a, o, f = methods[API], methods[OWN], methods[FLOOR]
            print(f"| {variant} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} "
                  f"| {o['p50_ms']:.1f} / {o['p99_ms']:.1f} | {f['p50_ms']:.1f} / "
                  f"{f['p99_ms']:.1f} | {a['p99_ms'] / f['p99_ms']:.1f} "
                  f"| {o['p99_ms'] / f['p99_ms']:.1f} | {a.get('server_cpu_ms_per_req', nan):.1f} "
                  f"| {a.get('pg_cpu_ms_per_req', nan):.1f} / {o.get('pg_cpu_ms_per_req', nan):.1f}"
                  f" / {f.get('pg_cpu_ms_per_req', nan):.1f} |")
        print("\nQuery plans (EXPLAIN ANALYZE, BUFFERS):\n")
        print("| statement | execution ms | planning ms | buffers | scans |")
        print("|---|---:|---:|---|---|")
        for label, plan in ib["explain"].items():
            s = plan["summary"]
            scans = "; ".join(f"{x['node']} ({x['rows']:,} rows x {x['loops']:,} loops)"
                              for x in s["scans"])
            print(f"| {label} | {s.get('execution_ms', nan):.1f} | {s.get('planning_ms', nan):.1f}"
                  f" | {s.get('buffers', '')} | {scans} |")
        for name, g in ib["generic"].items():
            custom = g["force_custom_plan"]["summary"].get("execution_ms", nan)
            generic = g["force_generic_plan"]["summary"].get("execution_ms", nan)
            print(f"\nPrepared ({name}): custom plan {custom:.1f} ms, generic plan "
                  f"{generic:.1f} ms; plan_cache_mode auto, first 8 runs (ms): "
                  f"{g['auto_ms_first_8_runs']} (generic plans used: {g['generic_plans_used']})")
        print("\nSQL per inbox request (warm):\n")
        print_sql({k: v for k, v in ib["sql_per_request"].items() if "page 1)" in k})
        first = next(iter(ib["explain"].values()))
        print(f"\n```\n{first['statement']}\n-- parameters: "
              f"{json.dumps(first['parameters'], ensure_ascii=False, default=str)}\n\n"
              + "\n".join(first["plan"]) + "\n```\n")

    if "transitions" in report:
        tr = report["transitions"]
        print(f"### Transitions ({c['concurrency']} connections, {c['seconds']:g} s x "
              f"{c['rounds']} rounds after {c['warmup']:g} s warm-up, medians)\n")
        print(table(medians(tr["rows"])))
        print("\n| ratio | value |\n|---|---:|")
        for name, value in tr["ratios"].items():
            print(f"| {name} | {value:.3f} |")
        opened: dict[str, list[int]] = {}
        whole: dict[str, list[float]] = {}
        for r in tr["rows"]:
            opened.setdefault(r["label"], []).append(r.get("new_pg_sessions", 0))
            whole.setdefault(r["label"], []).append(r.get("machine_busy", nan))
        print("\nWhole machine busy (cores, median; this run and everything else): "
              + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in whole.items()))
        print(f"\nFresh cases made: {json.dumps(tr['pools'])}. New PostgreSQL sessions per "
              "measurement (median): "
              + ", ".join(f"{k} {statistics.median(v):g}" for k, v in opened.items()) + "\n")
        print("SQL per request (warm):\n")
        print_sql(tr["sql_per_request"])
        ip = tr["in_process"]
        plain = ip["plain"]
        if plain["actions"] and ip["profiled"]["actions"]:  # --profile-actions 0 skips it
            print(f"\nIn-process, sequential ({plain['actions']} actions, no HTTP server): "
                  f"{plain['seconds'] * 1000 / plain['actions']:.1f} ms and "
                  f"{plain['cpu_s'] * 1000 / plain['actions']:.1f} ms of CPU per action "
                  f"(this process, load and app together); under cProfile "
                  f"{ip['profiled']['seconds'] * 1000 / ip['profiled']['actions']:.1f} ms.\n")
            print_profile(ip["profile"], ip["profiled"]["actions"], "action")

    if "timers" in report:
        tm = report["timers"]
        print(f"### SLA timers ({c['timers']:,} due per run, `nentang worker --once` processes "
              f"started together, {c['timer_rounds']} rounds, medians; a worker's start-up "
              f"with nothing due: {statistics.median(tm['startup_s']):.2f} s, "
              f"{tm['startup_cpu_s']:.2f} s CPU)\n")
        print("| workers | timers/s (wall, incl. start-up) | timers/s from first claim "
              "| per worker | worker CPU ms/timer (net of start-up) | PG CPU ms/timer "
              "| cores busy: workers + PG / whole machine | split |")
        print("|---:|---:|---:|---:|---:|---:|---:|---|")
        by_k: dict[int, list[dict[str, Any]]] = {}
        for row in tm["rows"]:
            by_k.setdefault(row["workers"], []).append(row)
        for k, runs in sorted(by_k.items()):
            def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r[key] for r in runs)
            print(f"| {k} | {med('timers_per_s'):.0f} | {med('timers_per_s_firing'):.0f} "
                  f"| {med('timers_per_s_firing') / k:.0f} "
                  f"| {med('worker_cpu_ms_per_timer'):.1f} "
                  f"({med('worker_cpu_ms_per_timer_net'):.1f}) "
                  f"| {med('pg_cpu_ms_per_timer'):.1f} | {med('busy_cores'):.2f} / "
                  f"{statistics.median(r.get('machine_busy', nan) for r in runs):.2f} "
                  f"| {' / '.join(str(n) for n in runs[-1]['per_worker'].values())} |")
        plain, profiled = tm["plain"], tm["profiled"]
        if plain["fired"] and profiled["fired"]:  # --profile-timers 0 skips it
            print(f"\nIn-process `run_once`, one worker: {plain['fired']:,} timers in "
                  f"{plain['seconds']:.1f} s = {plain['fired'] / plain['seconds']:.0f} "
                  f"timers/s, {plain['worker_cpu_s'] * 1000 / plain['fired']:.1f} ms of worker "
                  f"CPU and {plain['pg_cpu_s'] * 1000 / plain['fired']:.1f} ms of PostgreSQL "
                  f"CPU per timer (under cProfile "
                  f"{profiled['fired'] / profiled['seconds']:.0f}/s).\n")
            print_profile(tm["profile"], tm["profiled"]["fired"], "timer")
        sql = tm["sql"]
        print(f"SQL: {sql['statements']} statements in {sql['transactions']} transactions for "
              f"{sql['fired']} timers = {sql['per_timer']:.1f} statements "
              f"({sql['round_trips_per_timer']:.1f} round trips) per fired timer. One timer:\n")
        for statement in sql["one_timer"]:
            print(f"    - `{abbreviate(statement)[:300]}`")
    print(f"\nRaw results: {out.resolve().relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
