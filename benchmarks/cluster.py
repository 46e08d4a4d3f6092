"""The cluster proof: two API processes and two workers on one PostgreSQL, on loopback.

    .venv/bin/python -m benchmarks.cluster                    # all of it, about 4 minutes
    .venv/bin/python -m benchmarks.cluster --rounds 5 --seconds 8   # the scaling figure
    .venv/bin/python -m benchmarks.cluster --skip-scaling     # the proof only (as the test)

What one run does, on a fresh database with fresh owner and service roles (the chart's
layout: migrations as the owner, the service as the unprivileged role):

1. starts two ``nentang serve`` processes and two ``nentang worker`` processes, and
   :class:`benchmarks.balancer.Balancer` in front of the APIs (endpoints follow ``/readyz``);
2. **publication**: publishes a form and its workflow through API 1 and submits through
   API 2 at once (the new version, not a stale one); then publishes version 2 through API 2
   and finds API 1 validating against it on its very next request;
3. **rolling restart under load**: a steady mixed load through the balancer (a quarter
   submissions, each with an ``Idempotency-Key``, the rest reads of cases and of the form)
   while each API in turn is drained, sent SIGTERM, started again and waited for; then each
   worker in turn is stopped with SIGTERM and started again;
4. **expand/contract under load**: the same load while
   ``benchmarks/expand_contract`` applies an expand step (a column, a batched back-fill, an
   index built concurrently) and then its contract step, as the owner role; the APIs, whose
   code knows neither revision, stay ready throughout (``/readyz`` accepts a schema ahead);
5. **horizontal scaling**: closed-loop throughput of case reads with one API process and
   with two (the load generator's connections split between them, as a Service would),
   interleaved over ``--rounds`` rounds; the figure is the median of the per-round ratios.

Every request of phases 3 and 4 is counted: a failure is any transport error, any 5xx, or
any status the request should not get. Progress goes to stderr, the Markdown report to
stdout, the raw figures to ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from alembic import command

from app.config import Settings
from app.core import migrations
from benchmarks import load
from benchmarks.balancer import Balancer
from benchmarks.cases import clone_sql
from benchmarks.run import (
    HOST,
    OUT_DIR,
    REPO,
    ROOT_CODE,
    ROOT_NAME,
    Api,
    Database,
    cpu_used,
    free_port,
    machine,
    nentang_cli,
    postgres_cpu,
    process_cpu,
    revision,
)

KEY = "ho-kinh-doanh"
FORM = json.loads((REPO / "forms" / KEY / "form.json").read_text(encoding="utf-8"))
WORKFLOW = json.loads((REPO / "workflows" / KEY / "workflow.json").read_text(encoding="utf-8"))
SAMPLE = json.loads(sorted((REPO / "forms" / KEY / "valid").glob("*.json"))[0]
                    .read_text(encoding="utf-8"))
EXPAND_CONTRACT = REPO / "benchmarks" / "expand_contract"


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------------

@dataclass
class Process:
    """A ``nentang`` process that can be stopped and started again under the same name
    (and, for an API, on the same port)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        args = [*self.args, *(["--host", HOST, "--port", str(self.port)] if self.port else [])]
        with (self.log_dir / f"{self.name}.log").open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def terminate(self, timeout: float = 60.0) -> float:
        """SIGTERM and wait; returns the seconds it took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{self.name} did not stop in {timeout:g} s") from None
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class Cluster:
    db: Database
    settings: Settings
    env: dict[str, str]
    apis: list[Process]
    workers: list[Process]
    tokens: dict[str, str] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SAMPLE))
    province: str = ""
    commune: str = ""


def wait_ready(url: str, proc: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n"
                               f"{(proc.log_dir / f'{proc.name}.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not become ready in {timeout:g} s")


@contextmanager
def cluster(data_dir: Path, *, apis: int = 2, workers: int = 2) -> Iterator[Cluster]:
    """A fresh database, bootstrapped, with ``apis`` servers and ``workers`` workers."""
    db = Database.fresh()
    with ExitStack() as stack:
        settings = stack.enter_context(db.created(data_dir))
        # No per-client rate limit: the load's few clients would hit it (6000/min per replica)
        # and the scaling figure would measure the limiter.
        env = {**db.env(data_dir), "NENTANG_ACCESS_TOKEN_TTL_SECONDS": "3600",
               "NENTANG_CLIENT_RATE_LIMIT_PER_MINUTE": "0",
               "NENTANG_ISSUER": "http://nentang.cluster", "NENTANG_LOG_JSON": "false"}
        boot = json.loads(nentang_cli(env, "bootstrap", "--code", ROOT_CODE, "--name",
                                      ROOT_NAME))
        api_procs = [Process(f"api-{n + 1}", ["serve", "--graceful-timeout", "20"], env,
                             data_dir, port=free_port()) for n in range(apis)]
        worker_procs = [Process(f"worker-{n + 1}", ["worker", "--poll", "0.5", "--name",
                                                    f"worker-{n + 1}"], env, data_dir)
                        for n in range(workers)]
        for proc in [*api_procs, *worker_procs]:
            stack.callback(proc.stop)
            proc.start()
        for proc in api_procs:
            wait_ready(proc.url, proc)
        found = Cluster(db, settings, env, api_procs, worker_procs)
        api = Api(api_procs[0].url)
        stack.callback(api.http.close)
        found.tokens["platform"] = api.token(boot["client_id"], boot["client_secret"])
        yield found


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(http: httpx.Client, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(path, json=body, headers=_headers(token))
    if answer.status_code != 201:
        raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:1000]}")
    created: dict[str, Any] = answer.json()
    return created


def _token(http: httpx.Client, made: dict[str, Any]) -> str:
    answer = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(made["client_id"], made["client_secret"]))
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def seed_cases(c: Cluster, count: int) -> None:
    """``count`` more cases (each with its submission) at the commune, cloned in SQL from
    the first, so the expand step's back-fill has real work to do under the load."""
    c.db.execute(
        "CREATE TABLE cluster_seed AS SELECT f.tenant_id, f.id AS case_id, f.submission_id, "  # noqa: S608 (count is an int)
        "gen_random_uuid() AS new_case, gen_random_uuid() AS new_submission FROM (SELECT "
        "tenant_id, id, submission_id FROM cases ORDER BY created_at LIMIT 1) f, "
        f"generate_series(1, {count:d})",
        clone_sql("submissions", {"id": "s.new_submission"},
                  "FROM submissions t JOIN cluster_seed s ON t.tenant_id = s.tenant_id "
                  "AND t.id = s.submission_id"),
        clone_sql("cases", {"id": "s.new_case", "submission_id": "s.new_submission"},
                  "FROM cases t JOIN cluster_seed s ON t.tenant_id = s.tenant_id "
                  "AND t.id = s.case_id"),
        "DROP TABLE cluster_seed", "ANALYZE cases", "ANALYZE submissions")


# --- phase 2: publication is live on every replica ---------------------------------------------

def publication(c: Cluster) -> dict[str, Any]:
    """Publish through one API, use through the other at once."""
    one, two = (httpx.Client(base_url=p.url, timeout=30, trust_env=False) for p in c.apis[:2])
    platform = c.tokens["platform"]
    c.province = _create(one, "/api/v1/tenants", platform,
                         {"code": "P01", "name": "Tỉnh thử", "kind": "province",
                          "parent": ROOT_CODE})["code"]
    c.commune = _create(one, "/api/v1/tenants", platform,
                        {"code": "X0101", "name": "Xã thử", "kind": "commune",
                         "parent": c.province})["code"]
    admin = _token(one, _create(one, f"/api/v1/tenants/{c.province}/clients", platform,
                                {"name": "province admin", "roles": ["tenant_admin"]}))
    for role in ("api_client", "officer"):
        c.tokens[role] = _token(one, _create(
            one, f"/api/v1/tenants/{c.commune}/clients", admin,
            {"name": role, "roles": [role]}))
    forms, workflows = (f"/api/v1/tenants/{c.province}/forms",
                        f"/api/v1/tenants/{c.province}/workflows")
    _create(one, forms, admin, FORM)
    published = one.post(f"{forms}/{KEY}/versions/1/publish", headers=_headers(admin))
    _create(one, workflows, admin, WORKFLOW)
    flow = one.post(f"{workflows}/{KEY}/versions/1/publish", headers=_headers(admin))
    submitted = two.post(f"/api/v1/tenants/{c.commune}/submissions",
                         headers=_headers(c.tokens["api_client"]),
                         json={"form": KEY, "data": SAMPLE})
    v2 = copy.deepcopy(FORM)
    v2["schema"]["properties"]["ma_so_thue"] = {"type": "string", "pattern": "^[0-9]{10}$"}
    v2["schema"]["required"].append("ma_so_thue")
    v2["ui_schema"]["fields"]["ma_so_thue"] = {"label": {"vi": "Mã số thuế", "en": "Tax code"}}
    _create(two, f"{forms}/{KEY}/versions", admin, v2)
    second = two.post(f"{forms}/{KEY}/versions/2/publish", headers=_headers(admin))
    stale = one.post(f"/api/v1/tenants/{c.commune}/submissions",
                     headers=_headers(c.tokens["api_client"]), json={"form": KEY, "data": SAMPLE})
    # Version 2 stays published for the load: its submissions carry the tax code.
    c.sample["ma_so_thue"] = "0101234567"
    result = {
        "form_published_on_api_1": published.status_code == 200,
        "workflow_published_on_api_1": flow.status_code == 200,
        "submitted_on_api_2": submitted.status_code,
        "case_opened_on_api_2": bool(submitted.status_code == 201 and submitted.json()["case"]),
        "version_2_published_on_api_2": second.status_code == 200,
        "api_1_refuses_v1_data_at_once": stale.status_code == 422,
    }
    one.close()
    two.close()
    return result


# --- the steady load ----------------------------------------------------------------------------

@dataclass
class Tally:
    by_op: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


EXPECTED = {"submit": 201, "case": 200, "form": 200}


async def steady_load(base: str, c: Cluster, stop: asyncio.Event, tally: Tally, *,
                      concurrency: int = 6) -> None:
    """Mixed requests until ``stop``: every fourth a submission, the others reads."""
    cases: list[str] = []
    portal, officer = _headers(c.tokens["api_client"]), _headers(c.tokens["officer"])
    submissions = f"/api/v1/tenants/{c.commune}/submissions"
    form = f"/api/v1/tenants/{c.commune}/forms/{KEY}"

    async def one(http: httpx.AsyncClient, n: int) -> None:
        if n % 4 == 0 or not cases:
            op, request = "submit", http.post(
                submissions, json={"form": KEY, "data": c.sample},
                headers={**portal, "Idempotency-Key": str(uuid.uuid4())})
        elif n % 4 == 1:
            op, request = "form", http.get(form, headers=officer)
        else:
            op, request = "case", http.get(
                f"/api/v1/tenants/{c.commune}/cases/{cases[n % len(cases)]}", headers=officer)
        started = time.perf_counter()
        try:
            answer = await request
        except httpx.HTTPError as exc:
            tally.by_op[op] += 1
            tally.failures[f"{op}: {type(exc).__name__}"] += 1
            return
        tally.by_op[op] += 1
        tally.latencies.append(time.perf_counter() - started)
        if answer.status_code != EXPECTED[op]:
            tally.failures[f"{op}: {answer.status_code}"] += 1
        elif op == "submit":
            cases.append(answer.json()["case"])

    async def loop(offset: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
            n = offset
            while not stop.is_set():
                await one(http, n)
                n += concurrency

    await asyncio.gather(*(loop(i) for i in range(concurrency)))


async def under_load(c: Cluster, base: str, work: Any,
                     settle: float) -> tuple[Tally, dict[str, Any]]:
    """Run ``work`` (a blocking callable, in a thread) while the steady load goes on."""
    stop, tally = asyncio.Event(), Tally()
    loader = asyncio.create_task(steady_load(base, c, stop, tally))
    await asyncio.sleep(settle)
    try:
        steps = await asyncio.to_thread(work)
        await asyncio.sleep(settle)
    finally:
        stop.set()
        await loader
    return tally, steps


def _tally_report(tally: Tally, balancer: Balancer, before: dict[str, int]) -> dict[str, Any]:
    counts = balancer.counts
    return {"requests": tally.total, "by_op": dict(tally.by_op), "failed": tally.failed,
            "failures": dict(tally.failures),
            "p50_ms": round(statistics.median(tally.latencies) * 1000, 1)
            if tally.latencies else None,
            "max_ms": round(max(tally.latencies) * 1000, 1) if tally.latencies else None,
            "connect_retries": counts.connect_retries - before["connect_retries"],
            "bad_gateway": counts.bad_gateway - before["bad_gateway"],
            "no_backend": counts.no_backend - before["no_backend"],
            "failed_probes": counts.failed_probes - before["failed_probes"]}


def _snapshot(balancer: Balancer) -> dict[str, int]:
    counts = balancer.counts
    return {"connect_retries": counts.connect_retries, "bad_gateway": counts.bad_gateway,
            "no_backend": counts.no_backend, "failed_probes": counts.failed_probes}


# --- phase 3: rolling restart -------------------------------------------------------------------

def rolling_restart(c: Cluster, balancer: Balancer, loop: asyncio.AbstractEventLoop,
                    drain_seconds: float, *, workers: bool = True) -> dict[str, Any]:
    """Each API: out of rotation, SIGTERM, start again, back when ready; then each worker.
    With ``drain_seconds`` 0 the API gets SIGTERM while still in rotation (no preStop
    pause): only the balancer's retry of refused connections stands between it and the
    load."""
    steps: list[dict[str, Any]] = []
    for api in c.apis:
        if drain_seconds:
            balancer.drain(api.name)
            time.sleep(drain_seconds)  # the chart's preStop pause
        stopped_in = api.terminate()
        balancer.replaced(api.name)
        api.start()
        asyncio.run_coroutine_threadsafe(balancer.until_ready(api.name), loop).result(60)
        balancer.restore(api.name)
        steps.append({"process": api.name, "stopped_in_s": round(stopped_in, 2)})
        time.sleep(1.0)
    for worker in c.workers if workers else []:
        stopped_in = worker.terminate()
        worker.start()
        steps.append({"process": worker.name, "stopped_in_s": round(stopped_in, 2)})
    return {"steps": steps}


# --- phase 4: expand / contract -----------------------------------------------------------------

def expand_contract(c: Cluster) -> dict[str, Any]:
    """The demonstration migrations, as the owner role, one step at a time."""
    config = migrations.alembic_config(c.settings)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(
        [str(migrations.MIGRATIONS_DIR / "versions"), str(EXPAND_CONTRACT)]))
    timings: dict[str, Any] = {"cases": c.db.fetch("SELECT count(*) FROM cases")[0][0]}
    for step in ("e1_expand", "c1_contract"):
        started = time.monotonic()
        command.upgrade(config, step)
        timings[step] = round(time.monotonic() - started, 2)
        time.sleep(1.0)
    ready = [httpx.get(f"{api.url}/readyz", timeout=5, trust_env=False).json()
             for api in c.apis]
    return {"steps_s": timings, "readiness_after": ready}


# --- phase 5: horizontal scaling ----------------------------------------------------------------

def case_read(c: Cluster, api: Process, case_id: str) -> load.Target:
    return load.Target(HOST, api.port or 0, path=f"/api/v1/tenants/{c.commune}/cases/{case_id}",
                       headers={"Authorization": f"Bearer {c.tokens['officer']}"})


async def throughput(targets: list[load.Target], connections: int, seconds: float) -> float:
    """Requests per second (2xx) with ``connections`` split evenly over ``targets``."""
    share = connections // len(targets)
    results = await asyncio.gather(*(load.run(t, connections=share, duration=seconds)
                                     for t in targets))
    if any(r.errors or set(r.statuses) - {"200"} for r in results):
        raise RuntimeError(f"errors during the scaling run: {[r.statuses for r in results]}")
    return sum(r.rps for r in results)


def measured_throughput(c: Cluster, targets: list[load.Target], connections: int,
                        seconds: float) -> dict[str, float]:
    """Throughput, and the cores the API processes, PostgreSQL and this process (the load
    generator) kept busy meanwhile: what tells where the ceiling is."""
    pids = [api.proc.pid for api in c.apis if api.proc is not None]
    api_before = [process_cpu(pid) or 0.0 for pid in pids]
    pg_before, own_before, started = postgres_cpu(), time.process_time(), time.monotonic()
    rps = asyncio.run(throughput(targets, connections, seconds))
    wall = time.monotonic() - started
    api_used = sum((process_cpu(pid) or 0.0) - before for pid, before in zip(pids, api_before,
                                                                            strict=True))
    return {"rps": rps, "api_cores": api_used / wall,
            "postgres_cores": (cpu_used(pg_before, postgres_cpu()) or 0.0) / wall,
            "load_cores": (time.process_time() - own_before) / wall}


def scaling(c: Cluster, rounds: int, seconds: float, connections: int) -> dict[str, Any]:
    with httpx.Client(base_url=c.apis[0].url, timeout=30, trust_env=False) as http:
        made = http.post(f"/api/v1/tenants/{c.commune}/submissions",
                         headers=_headers(c.tokens["api_client"]),
                         json={"form": KEY, "data": c.sample})
        case_id = made.json()["case"]
    one = [case_read(c, c.apis[0], case_id)]
    two = [case_read(c, api, case_id) for api in c.apis]
    asyncio.run(throughput(two, connections, 2.0))  # warm both
    rows: list[dict[str, Any]] = []
    for n in range(rounds):
        order = [("1 API", one), ("2 APIs", two)]
        if n % 2:
            order.reverse()
        measured = {label: measured_throughput(c, targets, connections, seconds)
                    for label, targets in order}
        rows.append({**measured, "ratio": measured["2 APIs"]["rps"] / measured["1 API"]["rps"]})
        log(f"scaling round {n + 1}/{rounds}: " + ", ".join(
            f"{label} {m['rps']:.0f} rps (cores: API {m['api_cores']:.2f}, PostgreSQL "
            f"{m['postgres_cores']:.2f}, load {m['load_cores']:.2f})"
            for label, m in measured.items()) + f", ratio {rows[-1]['ratio']:.2f}")
    summary: dict[str, Any] = {"rounds": rows, "connections": connections, "seconds": seconds,
                               "median_ratio": statistics.median(r["ratio"] for r in rows)}
    for label in ("1 API", "2 APIs"):
        summary[label] = {key: statistics.median(r[label][key] for r in rows)
                          for key in ("rps", "api_cores", "postgres_cores", "load_cores")}
    return summary


# --- the run ------------------------------------------------------------------------------------

async def _proof(c: Cluster, drain_seconds: float, settle: float, seed: int,
                 without_drain: bool) -> dict[str, Any]:
    balancer = Balancer({api.name: (HOST, api.port or 0) for api in c.apis})
    port = await balancer.start()
    base = f"http://{HOST}:{port}"
    loop = asyncio.get_running_loop()
    report: dict[str, Any] = {}
    try:
        log("rolling restart of both APIs and both workers under load ...")
        before = _snapshot(balancer)
        tally, steps = await under_load(
            c, base, lambda: rolling_restart(c, balancer, loop, drain_seconds),
            settle)
        report["rolling_restart"] = {**steps, **_tally_report(tally, balancer, before)}
        log(f"  {tally.total} requests, {tally.failed} failed")
        if without_drain:
            log("rolling restart of both APIs with no preStop pause, under load ...")
            before = _snapshot(balancer)
            tally, steps = await under_load(
                c, base,
                lambda: rolling_restart(c, balancer, loop, 0.0, workers=False), settle)
            report["restart_without_drain"] = {**steps,
                                               **_tally_report(tally, balancer, before)}
            log(f"  {tally.total} requests, {tally.failed} failed, "
                f"{report['restart_without_drain']['connect_retries']} connect retries")
        log(f"seeding {seed:,} cases for the back-fill ...")
        await asyncio.to_thread(seed_cases, c, seed)
        log("expand/contract migration under load ...")
        before = _snapshot(balancer)
        tally, steps = await under_load(c, base, lambda: expand_contract(c), settle)
        report["expand_contract"] = {**steps, **_tally_report(tally, balancer, before)}
        log(f"  {tally.total} requests, {tally.failed} failed")
        report["per_backend"] = dict(balancer.counts.per_backend)
    finally:
        await balancer.stop()
    return report


def prove(data_dir: Path, *, drain_seconds: float = 1.0, settle: float = 2.0,
          seed: int = 50_000, without_drain: bool = False, scaling_rounds: int = 0,
          scaling_seconds: float = 8.0, connections: int = 16) -> dict[str, Any]:
    """Phases 1–4 (and 5 when ``scaling_rounds``); returns the figures."""
    with cluster(data_dir) as c:
        log("publishing through one API, using through the other ...")
        report: dict[str, Any] = {"publication": publication(c)}
        report.update(asyncio.run(_proof(c, drain_seconds, settle, seed, without_drain)))
        if scaling_rounds:
            log("horizontal scaling: 1 API against 2 ...")
            report["scaling"] = scaling(c, scaling_rounds, scaling_seconds, connections)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="scaling rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16,
                        help="load connections for the scaling figure (default 16)")
    parser.add_argument("--seed", type=int, default=50_000,
                        help="cases added before the expand step back-fills them (50,000)")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nentang-cluster-") as tmp:
        report = prove(Path(tmp), seed=args.seed, without_drain=True,
                       scaling_rounds=0 if args.skip_scaling else args.rounds,
                       scaling_seconds=args.seconds, connections=args.connections)
    report.update({"revision": revision(), "machine": machine()})
    out = OUT_DIR / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print_report(report, out)
    failed = report["rolling_restart"]["failed"] + report["expand_contract"]["failed"]
    return 1 if failed or not all(report["publication"].values()) else 0


def print_report(report: dict[str, Any], out: Path) -> None:
    print(f"Raw figures: {out.relative_to(REPO)}\n")
    print("| phase | requests | failed | connect retries | p50 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for phase in ("rolling_restart", "restart_without_drain", "expand_contract"):
        if phase not in report:
            continue
        row = report[phase]
        print(f"| {phase.replace('_', ' ')} | {row['requests']} | {row['failed']} | "
              f"{row['connect_retries']} | {row['p50_ms']} | {row['max_ms']} |")
    print(f"\nPublication: {report['publication']}")
    if "scaling" in report:
        s = report["scaling"]
        print(f"\nScaling ({s['connections']} connections, {s['seconds']:g} s x "
              f"{len(s['rounds'])} rounds; medians):\n")
        print("| processes | rps | API cores | PostgreSQL cores | load generator cores |")
        print("| --- | --- | --- | --- | --- |")
        for label in ("1 API", "2 APIs"):
            m = s[label]
            print(f"| {label} | {m['rps']:.0f} | {m['api_cores']:.2f} | "
                  f"{m['postgres_cores']:.2f} | {m['load_cores']:.2f} |")
        print(f"\nMedian of the per-round ratios, 2 APIs / 1 API: {s['median_ratio']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
