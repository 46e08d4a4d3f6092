"""Nentang's full request path against the bare FastAPI + asyncpg floor, in one run.

    .venv/bin/python -m benchmarks.run            # from the repository root

What one run does:

1. creates a fresh PostgreSQL database and fresh owner and service roles, migrated exactly
   as ``tests/conftest.py`` does (``create_roles`` then ``migrations.upgrade``);
2. starts the bare app (:mod:`benchmarks.bare_app`) and Nentang (``nentang serve``), each
   on uvicorn with one worker on a free loopback port, both as the unprivileged service role;
3. bootstraps the platform, builds a ten-tenant tree through the API from the first
   entries of ``tenants/vietnam.json`` (so the province measured is a real one), and
   creates a ``tenant_admin`` client for province ``01``;
4. measures, at a fixed concurrency and after a warm-up, bare GET and POST against
   Nentang's ``GET /api/v1/tenants/01`` and ``POST /api/v1/tenants`` (agencies under
   ``01``), every case ``--rounds`` times, interleaved, rotating the order each round;
5. applies the whole of ``tenants/vietnam.json`` (3,356 tenants with the root) and measures
   again;
6. records ``EXPLAIN (ANALYZE, BUFFERS)`` of the subtree and ancestors queries as the
   service role under a province scope, and the SQL each Nentang request sends;
7. prints a Markdown table, writes the raw figures to ``benchmarks/out/``, and drops the
   database and roles whatever happened.

Rows inserted by a measurement are deleted (and the tables vacuumed) before the next, so
every measurement of a phase starts from the same tree. Besides requests per second, it
reports CPU per request of the server process and of PostgreSQL (from ``/proc``; the
PostgreSQL figure includes anything else the server was doing at the time), which is
steadier than throughput on a small, noisy machine.

``NENTANG_BENCH_PG_URL`` names a superuser connection (default: the test suite's,
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

# EXPLAIN takes no bind parameters: its queries are built from literal(), which admits only
# the hex digits, dashes and slashes of ids and paths.
# ruff: noqa: S608
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import URL, make_url

from app.config import Settings
from app.core import migrations
from app.core.roles import create_roles
from benchmarks import load, sqltrace
from benchmarks.bare_app import SCHEMA

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "benchmarks" / "out"
MANIFEST = REPO / "tenants" / "vietnam.json"
PG_URL = os.environ.get("NENTANG_BENCH_PG_URL",
                        os.environ.get("NENTANG_TEST_PG_URL",
                                       "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
HOST = "127.0.0.1"
ROOT_CODE, ROOT_NAME = "BNV", "Bộ Nội vụ"
# The small tree: the first provinces of the manifest with this many of their communes each.
SMALL_TREE = (4, 3)


def dsn(url: URL) -> str:
    """A plain libpq DSN for asyncpg from a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- PostgreSQL ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Database:
    """A throw-away database with its own owner and service roles."""

    name: str
    owner: str
    app_role: str
    admin_url: URL  # superuser, maintenance database

    @classmethod
    def fresh(cls) -> Database:
        suffix = uuid.uuid4().hex[:10]
        return cls(f"nentang_bench_{suffix}", f"nb_owner_{suffix}", f"nb_app_{suffix}",
                   make_url(PG_URL))

    @property
    def superuser_url(self) -> URL:
        return self.admin_url.set(database=self.name)

    @property
    def app_url(self) -> URL:
        return self.admin_url.set(database=self.name, username=self.app_role, password=None)

    def settings(self, data_dir: Path) -> Settings:
        return Settings(
            data_dir=data_dir, signing_key_file=data_dir / "signing-key.pem",
            database_url=self.app_url.render_as_string(hide_password=False),
            admin_database_url=self.superuser_url.render_as_string(hide_password=False),
            db_owner_role=self.owner, db_app_role=self.app_role, auto_migrate=False,
            log_level="WARNING",
        )

    def env(self, data_dir: Path) -> dict[str, str]:
        """The ``NENTANG_*`` environment for the server and CLI subprocesses."""
        s = self.settings(data_dir)
        return {**os.environ,
                "NENTANG_DATA_DIR": str(s.data_dir),
                "NENTANG_SIGNING_KEY_FILE": str(s.signing_key_file),
                "NENTANG_DATABASE_URL": s.effective_database_url,
                "NENTANG_ADMIN_DATABASE_URL": s.effective_admin_database_url,
                "NENTANG_DB_OWNER_ROLE": self.owner, "NENTANG_DB_APP_ROLE": self.app_role,
                "NENTANG_AUTO_MIGRATE": "false", "NENTANG_LOG_LEVEL": "WARNING"}

    def execute(self, *statements: str, maintenance: bool = False) -> None:
        """Run statements one by one as the superuser, each in its own transaction."""
        url = self.admin_url if maintenance else self.superuser_url

        async def go() -> None:
            conn = await asyncpg.connect(dsn(url))
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(go())

    def fetch(self, query: str, *args: Any, url: URL | None = None,
              setup: tuple[str, ...] = ()) -> list[Any]:
        """Rows of ``query`` (as the superuser unless ``url`` says otherwise), after running
        the ``setup`` statements in the same session."""

        async def go() -> list[Any]:
            conn = await asyncpg.connect(dsn(url or self.superuser_url))
            try:
                for statement in setup:
                    await conn.execute(statement)
                rows: list[Any] = await conn.fetch(query, *args)
                return rows
            finally:
                await conn.close()

        return asyncio.run(go())

    @contextmanager
    def created(self, data_dir: Path) -> Iterator[Settings]:
        self.execute(f'CREATE DATABASE "{self.name}"', maintenance=True)
        try:
            settings = self.settings(data_dir)
            asyncio.run(create_roles(settings))
            migrations.upgrade(settings)
            self.execute(SCHEMA, f'GRANT SELECT, INSERT ON bench_bare TO "{self.app_role}"')
            yield settings
        finally:
            self.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
                     f'DROP ROLE IF EXISTS "{self.app_role}"',
                     f'DROP ROLE IF EXISTS "{self.owner}"', maintenance=True)


# --- processes and CPU accounting ------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process, from ``/proc`` (None where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every visible ``postgres`` process (the server and its backends)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                cpu = process_cpu(int(entry.name))
                if cpu is not None:
                    found[int(entry.name)] = cpu
        except OSError:
            continue
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU seconds used between two :func:`postgres_cpu` samples by the processes alive at
    the second (a backend that exited in between is not counted: this errs low)."""
    if not after:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server subprocess on a free loopback port, stopped (by its pid) on exit."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.port = name, free_port()
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [sys.executable, *args, "--host", HOST, "--port", str(self.port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nentang_cli(env: dict[str, str], *args: str) -> str:
    """Run ``nentang <args>`` (as ``python -m app.cli``) and return its standard output."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env,
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nentang {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# --- the platform, through its API ----------------------------------------------------------

class Api:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def token(self, client_id: str, secret: str) -> str:
        response = self.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, secret))
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def create(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        created: dict[str, Any] = response.json()
        return created


def small_tree(manifest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first ``len(SMALL_TREE)`` provinces of the manifest and some of their communes."""
    provinces = [e for e in manifest if e["kind"] == "province"][:len(SMALL_TREE)]
    entries = []
    for province, communes in zip(provinces, SMALL_TREE, strict=True):
        entries.append(province)
        entries += [e for e in manifest if e.get("parent") == province["code"]][:communes]
    return entries


@dataclass
class Credentials:
    api: Api
    client_id: str
    secret: str

    def headers(self) -> dict[str, str]:
        """Fresh token per measurement, so a long run never outlives one."""
        return {"Authorization": f"Bearer {self.api.token(self.client_id, self.secret)}"}


# --- measurements ----------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    server: Server
    target: Callable[[], load.Target]
    cleanup: Callable[[], None] | None = None


def measure(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    target = case.target()
    asyncio.run(load.run(target, connections=args.connections, duration=args.warmup))
    server_before, pg_before = process_cpu(case.server.proc.pid), postgres_cpu()
    result = asyncio.run(load.run(target, connections=args.connections,
                                  duration=args.duration, label=case.name))
    server_after, pg_after = process_cpu(case.server.proc.pid), postgres_cpu()
    if case.cleanup is not None:
        case.cleanup()
    row = result.as_dict()
    done, elapsed = max(result.ok, 1), result.elapsed_s
    # "busy" is the share of one core used during the measurement: a server at 1.0 is
    # CPU-bound, and the load generator and PostgreSQL show whether they were the limit.
    row["client_busy"] = result.client_cpu_s / elapsed
    if server_before is not None and server_after is not None:
        row["server_cpu_ms_per_req"] = (server_after - server_before) * 1000 / done
        row["server_busy"] = (server_after - server_before) / elapsed
    pg_used = cpu_used(pg_before, pg_after)
    if pg_used is not None:
        row["pg_cpu_ms_per_req"] = pg_used * 1000 / done
        row["pg_busy"] = pg_used / elapsed
    print(f"  {result.line()}", file=sys.stderr, flush=True)
    return row


def run_phase(phase: str, cases: list[Case], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for index in range(args.rounds):
        shift = index % len(cases)
        print(f"{phase}, round {index + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for case in cases[shift:] + cases[:shift]:
            rows.append({"phase": phase, "round": index + 1, **measure(case, args)})
    return rows


def medians(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_req", "pg_cpu_ms_per_req",
            "server_busy", "pg_busy", "client_busy", "errors")
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["phase"], row["label"]), []).append(row)
    return {group: {k: statistics.median(r[k] for r in found if k in r)
                    for k in keys if any(k in r for r in found)}
            for group, found in grouped.items()}


# --- query plans ------------------------------------------------------------------------------

_SAFE_LITERAL = re.compile(r"^[0-9a-f/-]*$")


def literal(value: str) -> str:
    """Quote a path or id for EXPLAIN, which takes no bind parameters."""
    if not _SAFE_LITERAL.match(value):
        raise ValueError(f"unexpected path or id {value!r}")
    return f"'{value}'"


def explain_plans(db: Database, province: str, commune: str) -> dict[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) the tree queries as the service role, row security on.

    The subtree of the root is also explained as the superuser, which bypasses row
    security, to show what the policy costs per row.
    """
    rows = db.fetch("SELECT code, id::text AS id, path FROM tenants WHERE code = ANY($1::text[])",
                    [ROOT_CODE, province, commune])
    found = {r["code"]: r for r in rows}
    root, prov = found[ROOT_CODE]["path"], found[province]["path"]
    ancestors = ", ".join(literal(i) for i in found[commune]["path"].strip("/").split("/")[:-1])
    in_scope = f"path >= {literal(prov)} AND path < {literal(prov[:-1] + '0')}"

    def subtree(p: str) -> str:
        return (f"SELECT * FROM tenants WHERE path > {literal(p)} "
                f"AND path < {literal(p[:-1] + '0')} ORDER BY path")

    queries = {  # label: (scope, query, run as the service role)
        "subtree of the province (province scope)": (prov, subtree(prov), True),
        "ancestors of a commune (province scope)": (
            prov, f"SELECT * FROM tenants WHERE id IN ({ancestors})", True),
        "GET's tenant by code, as the ORM sends it (province scope)": (
            prov, f"SELECT * FROM tenants WHERE code = {literal(province)} AND {in_scope}", True),
        "create's audit head of a commune, as the ORM sends it (province scope)": (
            prov, "SELECT seq, hash FROM audit_records "
            f"WHERE tenant_id = {literal(found[commune]['id'])} AND tenant_id IN "
            f"(SELECT id FROM tenants WHERE {in_scope}) ORDER BY seq DESC LIMIT 1", True),
        "subtree of the root (platform scope)": ("/", subtree(root), True),
        "subtree of the root (superuser: no row security)": ("/", subtree(root), False),
    }
    plans = {}
    for label, (scope, query, as_app) in queries.items():
        setup = f"SELECT set_config('nentang.scope', {literal(scope)}, false)"
        lines = db.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}",
                         url=db.app_url if as_app else None, setup=(setup,))
        plans[label] = {"scope": scope, "query": query, "plan": [r[0] for r in lines]}
    return plans


# --- the run ---------------------------------------------------------------------------------

def revision() -> dict[str, Any]:
    """The commit measured, and whether app/ or migrations/ had uncommitted changes."""
    git = shutil.which("git")
    if git is None:
        return {}

    def run(*args: str) -> str:
        done = subprocess.run([git, *args], cwd=REPO, capture_output=True, text=True,  # noqa: S603
                              check=False)
        return done.stdout.strip()

    return {"commit": run("rev-parse", "--short", "HEAD"),
            "dirty": bool(run("status", "--porcelain", "--", "app", "migrations"))}


def machine() -> dict[str, Any]:
    def proc(name: str, key: str) -> str:
        path = Path("/proc") / name
        lines = path.read_text().splitlines() if path.exists() else []
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")

    mem = proc("meminfo", "MemTotal").split()
    return {"nproc": os.cpu_count(), "cpu": proc("cpuinfo", "model name") or platform.processor(),
            "memory_gib": round(int(mem[0]) / 2**20, 1) if mem else None,
            "python": platform.python_version(), "platform": platform.platform()}


def table(summary: dict[tuple[str, str], dict[str, float]]) -> str:
    lines = ["| phase | case | req/s | p50 ms | p99 ms | server CPU ms/req | PG CPU ms/req "
             "| server / PG / load-gen busy (cores) | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    nan = float("nan")
    for (phase, label), m in summary.items():
        busy = " / ".join(f"{m.get(k, nan):.2f}" for k in ("server_busy", "pg_busy",
                                                            "client_busy"))
        lines.append(
            f"| {phase} | {label} | {m['rps']:,.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} "
            f"| {m.get('server_cpu_ms_per_req', nan):.2f} "
            f"| {m.get('pg_cpu_ms_per_req', nan):.2f} | {busy} | {m['errors']:.0f} |")
    return "\n".join(lines)


def ratios(summary: dict[tuple[str, str], dict[str, float]], small: str,
           full: str) -> dict[str, float]:
    def rps(phase: str, label: str) -> float:
        return summary[(phase, label)]["rps"]

    found = {}
    for phase in (small, full):
        for verb, kind in (("GET", "read"), ("POST", "create")):
            found[f"{kind}: Nentang / bare, {phase}"] = (
                rps(phase, f"nentang {verb}") / rps(phase, f"bare {verb}"))
    for verb in ("GET", "POST"):
        found[f"Nentang {verb}: full tree / small tree"] = (
            rps(full, f"nentang {verb}") / rps(small, f"nentang {verb}"))
    return found


def agency_body(parent: str) -> bytes:
    code = f"AG{load.unique_number()}"
    return json.dumps({"code": code, "name": f"Cơ quan {code}", "kind": "agency",
                       "parent": parent}, ensure_ascii=False).encode()


def start_bare(db: Database, data_dir: Path, stack: ExitStack) -> Server:
    """The bare floor app, connecting as the service role; stopped when ``stack`` closes."""
    bare = Server("bare", ["-m", "uvicorn", "benchmarks.bare_app:app", "--workers", "1",
                           "--no-access-log", "--log-level", "warning"],
                  {**os.environ, "BENCH_BARE_DSN": dsn(db.app_url)}, data_dir)
    stack.callback(bare.stop)
    return bare


def start_nentang(env: dict[str, str], data_dir: Path, stack: ExitStack) -> Server:
    nentang = Server("nentang", ["-m", "app.cli", "serve", "--workers", "1"], env, data_dir)
    stack.callback(nentang.stop)
    return nentang


def province_admin(env: dict[str, str], server: Server, stack: ExitStack,
                   seed: list[dict[str, Any]], province: str) -> tuple[Api, str, Credentials]:
    """Bootstrap the platform, create the ``seed`` tenants and a ``tenant_admin`` client of
    ``province``: the API, the platform admin's token and the province admin."""
    boot = json.loads(nentang_cli(env, "bootstrap", "--code", ROOT_CODE, "--name", ROOT_NAME))
    api = Api(server.base_url)
    stack.callback(api.http.close)
    platform_token = api.token(boot["client_id"], boot["client_secret"])
    for entry in seed:
        api.create("/api/v1/tenants", platform_token, entry)
    client = api.create(f"/api/v1/tenants/{province}/clients", platform_token,
                        {"name": "benchmark province admin", "roles": ["tenant_admin"]})
    return api, platform_token, Credentials(api, client["client_id"], client["client_secret"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0,
                        help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of unmeasured load before each")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of every case")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the report of an earlier run's raw results")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0

    manifest: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"]
    seed = small_tree(manifest)
    province, commune = seed[0]["code"], seed[1]["code"]
    db = Database.fresh()
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "machine": machine(),
                              "revision": revision(), "config": vars(args), "rows": []}
    with tempfile.TemporaryDirectory(prefix="nentang-bench-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        report["machine"]["postgresql"] = db.fetch("SHOW server_version")[0][0]
        env = db.env(data_dir)
        bare = start_bare(db, data_dir, stack)
        nentang = start_nentang(env, data_dir, stack)
        bare.wait_ready()
        nentang.wait_ready()
        _api, _platform_token, admin = province_admin(env, nentang, stack, seed, province)
        province_id = db.fetch("SELECT id FROM tenants WHERE code = $1", province)[0][0]

        def seed_bare() -> int:
            """As many bare rows as there are tenants; returns that number."""
            tenants = int(db.fetch("SELECT count(*) FROM tenants")[0][0])
            db.fetch("INSERT INTO bench_bare (code, name) SELECT 'S' || lpad(i::text, 7, '0'), "
                     "'Bản ghi ' || i FROM generate_series(1, $1::int) i ON CONFLICT DO NOTHING",
                     tenants)
            db.execute("VACUUM (ANALYZE) bench_bare")
            return tenants

        def drop_bare_inserts() -> None:
            db.execute("DELETE FROM bench_bare WHERE code LIKE 'N%'", "VACUUM (ANALYZE) bench_bare")

        def drop_agencies() -> None:
            db.fetch("DELETE FROM audit_records WHERE tenant_id IN "
                     "(SELECT id FROM tenants WHERE parent_id = $1 AND kind = 'agency')",
                     province_id)
            db.fetch("DELETE FROM tenants WHERE parent_id = $1 AND kind = 'agency'", province_id)
            db.execute("VACUUM (ANALYZE) tenants", "VACUUM (ANALYZE) audit_records")

        cases = [
            Case("bare GET", bare, lambda: load.Target(HOST, bare.port, "GET", "/bare/S0000001")),
            Case("nentang GET", nentang, lambda: load.Target(
                HOST, nentang.port, "GET", f"/api/v1/tenants/{province}",
                headers=admin.headers())),
            Case("bare POST", bare, lambda: load.Target(
                HOST, bare.port, "POST", "/bare", body=lambda: json.dumps(
                    {"code": f"N{load.unique_number()}", "name": "Cơ quan thử tải"},
                    ensure_ascii=False).encode()), drop_bare_inserts),
            Case("nentang POST", nentang, lambda: load.Target(
                HOST, nentang.port, "POST", "/api/v1/tenants", headers=admin.headers(),
                body=lambda: agency_body(province)), drop_agencies),
        ]

        small = f"small tree ({seed_bare()} tenants)"
        report["rows"] += run_phase(small, cases, args)

        print(f"Applying {MANIFEST.relative_to(REPO)} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        nentang_cli(env, "apply", str(MANIFEST.relative_to(REPO)))
        report["apply_seconds"] = round(time.perf_counter() - started, 1)
        print(f"  applied in {report['apply_seconds']} s", file=sys.stderr, flush=True)
        db.execute("VACUUM (ANALYZE) tenants", "VACUUM (ANALYZE) audit_records")
        full = f"full tree ({seed_bare()} tenants)"
        report["rows"] += run_phase(full, cases, args)

        report["explain"] = explain_plans(db, province, commune)
        headers = admin.headers()
        report["sql_per_request"] = asyncio.run(sqltrace.trace(settings, {
            "GET /api/v1/tenants/{code}": lambda http: sqltrace.status(http.get(
                f"/api/v1/tenants/{province}", headers=headers)),
            "POST /api/v1/tenants": lambda http: sqltrace.status(http.post(
                "/api/v1/tenants", headers={**headers, "Content-Type": "application/json"},
                content=agency_body(province))),
        }))

    summary = medians(report["rows"])
    report["medians"] = [{"phase": p, "case": c, **m} for (p, c), m in summary.items()]
    report["ratios"] = ratios(summary, small, full)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print_report(report, out)
    return 0


def abbreviate(sql: str) -> str:
    """A statement with its column and value lists elided, so its shape fits on a line."""
    columns = re.match(r"SELECT (.*?) FROM ", sql)
    if columns and len(columns.group(1)) > 60:
        sql = "SELECT … FROM " + sql[columns.end():]
    return re.sub(r" \(([^()]*)\) VALUES \(.*\)$", " (…) VALUES (…)", sql)


def print_report(report: dict[str, Any], out: Path) -> None:
    summary = medians(report["rows"])
    m, c = report["machine"], report["config"]
    print(f"\n## Results ({c['connections']} connections, {c['duration']:g} s x "
          f"{c['rounds']} rounds, medians)\n")
    rev = report["revision"]
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, PostgreSQL "
          f"{m['postgresql']}, Python {m['python']}; apply took {report['apply_seconds']} s\n")
    print(table(summary))
    print("\n| ratio of req/s | value |\n|---|---:|")
    for name, value in report["ratios"].items():
        print(f"| {name} | {value:.2f} |")
    print("\n## SQL per Nentang request (warm)\n")
    for label, trace in report["sql_per_request"].items():
        print(f"- {label} (HTTP {trace['status']}): {len(trace['statements'])} statements in "
              f"{trace['transactions']} transaction(s) = {trace['round_trips']} round trips")
        for statement in trace["statements"]:
            print(f"    - `{abbreviate(statement)}`")
    print("\n## Query plans (full tree)\n")
    for label, plan in report["explain"].items():
        print(f"### {label}\n\n```\n{plan['query']}\n" + "\n".join(plan["plan"]) + "\n```\n")
    print(f"Raw results: {out.resolve().relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
