"""What authentication and the permission check cost per request, against unauthenticated
routes of the same server, measured in one run.

    .venv/bin/python -m benchmarks.auth            # from the repository root; about 3.5 minutes

One run creates a fresh database and roles, starts ``nentang serve`` (one uvicorn worker, on
a free loopback port, as the unprivileged service role) and bootstraps it, all with the
helpers of :mod:`benchmarks.run`. It then creates the same ten-tenant tree as that
benchmark's small phase and a ``tenant_admin`` client for the first province, and measures,
at a fixed concurrency and after a warm-up, interleaved and rotating the order each round:

(a) ``GET /healthz``: no authentication, no database;
(b) ``GET /readyz``: no authentication, reads the database;
(c) ``GET /api/v1/me`` with the client's bearer token: token verification (cached after the
    first request), the principal's live state from the database, the request's scope, and
    the grants' tenants;
(d) ``GET /api/v1/tenants/{province}`` with the same token: the same authentication, the
    permission check (``Requires``) and the tenant read;
(e) ``GET /api/v1/me`` with the token's signature altered: the 401 path (a token that fails
    is never cached, so every request checks the RS256 signature).

Every case is measured ``--rounds`` times and the medians reported: requests per second,
the server process's CPU per request and PostgreSQL's (from ``/proc``), and from these the
throughput ratios c/a and c/b and the CPU per request that authentication adds (c - b). The
SQL each request sends is recorded with :mod:`benchmarks.sqltrace`.

The server runs with ``NENTANG_CLIENT_RATE_LIMIT_PER_MINUTE=0`` (no per-client limit), so the
default of 6,000 requests a minute does not turn the authenticated cases into 429s.
``NENTANG_BENCH_PG_URL`` names the superuser connection, as for :mod:`benchmarks.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import load, sqltrace
from benchmarks.run import (
    HOST,
    MANIFEST,
    OUT_DIR,
    REPO,
    Database,
    Server,
    abbreviate,
    cpu_used,
    machine,
    postgres_cpu,
    process_cpu,
    province_admin,
    revision,
    small_tree,
    start_nentang,
)

HEALTHZ, READYZ, ME, TENANT, BAD_TOKEN = "a", "b", "c", "d", "e"
TITLES = {
    HEALTHZ: "GET /healthz (no auth, no DB)",
    READYZ: "GET /readyz (no auth, DB)",
    ME: "GET /api/v1/me (token)",
    TENANT: "GET /api/v1/tenants/{code} (token + Requires)",
    BAD_TOKEN: "GET /api/v1/me, bad signature (401)",
}
METRICS = ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_req", "pg_cpu_ms_per_req",
           "server_busy", "pg_busy", "client_busy", "unexpected")


def tamper(token: str) -> str:
    """The token with one character of its signature changed (not the last, whose low bits
    base64url may ignore), so it is well formed, names a known key and fails verification."""
    head, _, signature = token.rpartition(".")
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1:]}"


@dataclass
class Case:
    key: str
    target: Callable[[], load.Target]
    expect: int = 200


def measure(case: Case, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """One warmed-up measurement. Unlike :func:`benchmarks.run.measure`, a case counts the
    status it expects (401 for the bad token) as its successes."""
    target = case.target()
    asyncio.run(load.run(target, connections=args.concurrency, duration=args.warmup))
    server_before, pg_before = process_cpu(server.proc.pid), postgres_cpu()
    result = asyncio.run(load.run(target, connections=args.concurrency,
                                  duration=args.seconds, label=case.key))
    server_after, pg_after = process_cpu(server.proc.pid), postgres_cpu()
    done = result.statuses.get(str(case.expect), 0)
    elapsed = result.elapsed_s
    row: dict[str, Any] = {
        "case": case.key, "rps": done / elapsed, "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms, "statuses": result.statuses,
        "unexpected": sum(result.statuses.values()) - done, "first_error": result.first_error,
        "client_busy": result.client_cpu_s / elapsed,
    }
    if server_before is not None and server_after is not None:
        row["server_cpu_ms_per_req"] = (server_after - server_before) * 1000 / max(done, 1)
        row["server_busy"] = (server_after - server_before) / elapsed
    pg_used = cpu_used(pg_before, pg_after)
    if pg_used is not None:
        row["pg_cpu_ms_per_req"] = pg_used * 1000 / max(done, 1)
        row["pg_busy"] = pg_used / elapsed
    print(f"  ({case.key}) {TITLES[case.key]}: {row['rps']:,.0f} req/s, server "
          f"{row.get('server_cpu_ms_per_req', float('nan')):.2f} ms/req, statuses "
          f"{result.statuses}", file=sys.stderr, flush=True)
    return row


def medians(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for key in TITLES:
        mine = [r for r in rows if r["case"] == key]
        if mine:
            found[key] = {m: statistics.median(r[m] for r in mine if m in r)
                          for m in METRICS if any(m in r for r in mine)}
    return found


def per_round(rows: list[dict[str, Any]], num: str, den: str) -> list[float]:
    """The ratio of two cases' req/s within each round (paired, so less noisy)."""
    rounds: dict[int, dict[str, float]] = {}
    for r in rows:
        rounds.setdefault(r["round"], {})[r["case"]] = r["rps"]
    return [v[num] / v[den] for v in rounds.values() if v.get(den) and num in v]


def derived(rows: list[dict[str, Any]], summary: dict[str, dict[str, float]]
            ) -> dict[str, Any]:
    """Throughput ratios (of the medians, with the range of per-round ratios) and CPU-per-
    request differences (of the medians)."""
    ratios = {}
    for num, den in ((ME, HEALTHZ), (ME, READYZ), (TENANT, ME), (TENANT, READYZ),
                     (BAD_TOKEN, HEALTHZ)):
        paired = per_round(rows, num, den)
        ratios[f"{num}/{den}"] = {"of_medians": summary[num]["rps"] / summary[den]["rps"],
                                  "rounds_min": min(paired), "rounds_max": max(paired),
                                  "rounds_median": statistics.median(paired)}
    differences = {}
    for minuend, subtrahend in ((ME, READYZ), (ME, HEALTHZ), (TENANT, ME),
                                (BAD_TOKEN, HEALTHZ)):
        a, b = summary[minuend], summary[subtrahend]
        server = a["server_cpu_ms_per_req"] - b["server_cpu_ms_per_req"]
        pg = a["pg_cpu_ms_per_req"] - b["pg_cpu_ms_per_req"]
        differences[f"{minuend}-{subtrahend}"] = {"server": server, "pg": pg,
                                                   "total": server + pg}
    return {"ratios": ratios, "cpu_differences_ms": differences}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--concurrency", type=int, default=32,
                        help="keep-alive connections of the load generator")
    parser.add_argument("-s", "--seconds", type=float, default=5.0,
                        help="measured seconds per case and round")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each measurement")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of every case")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the report of an earlier run's raw results")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0

    manifest: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"]
    seed = small_tree(manifest)
    province = seed[0]["code"]
    db = Database.fresh()
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "machine": machine(),
                              "revision": revision(), "config": vars(args), "rows": []}
    with tempfile.TemporaryDirectory(prefix="nentang-bench-auth-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        report["machine"]["postgresql"] = db.fetch("SHOW server_version")[0][0]
        env = {**db.env(data_dir), "NENTANG_CLIENT_RATE_LIMIT_PER_MINUTE": "0"}
        server = start_nentang(env, data_dir, stack)
        server.wait_ready()
        api, _platform_token, admin = province_admin(env, server, stack, seed, province)
        report["tenants"] = int(db.fetch("SELECT count(*) FROM tenants")[0][0])

        def bad_headers() -> dict[str, str]:
            scheme, token = admin.headers()["Authorization"].split(" ", 1)
            return {"Authorization": f"{scheme} {tamper(token)}"}

        headers = admin.headers()
        checks = {"me": api.http.get("/api/v1/me", headers=headers),
                  "bad": api.http.get("/api/v1/me", headers=bad_headers())}
        if checks["me"].status_code != 200 or checks["bad"].status_code != 401:
            raise RuntimeError(f"unexpected statuses: me {checks['me'].status_code} "
                               f"{checks['me'].text}; bad token {checks['bad'].status_code}")
        report["me"] = checks["me"].json()

        def get(path: str, auth: Callable[[], dict[str, str]] | None = None
                ) -> Callable[[], load.Target]:
            # A fresh token per measurement (its first use, in the warm-up, verifies it).
            return lambda: load.Target(HOST, server.port, "GET", path,
                                       headers=auth() if auth is not None else {})

        cases = [
            Case(HEALTHZ, get("/healthz")),
            Case(READYZ, get("/readyz")),
            Case(ME, get("/api/v1/me", admin.headers)),
            Case(TENANT, get(f"/api/v1/tenants/{province}", admin.headers)),
            Case(BAD_TOKEN, get("/api/v1/me", bad_headers), expect=401),
        ]
        for index in range(args.rounds):
            shift = index % len(cases)
            print(f"round {index + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for case in cases[shift:] + cases[:shift]:
                report["rows"].append({"round": index + 1, **measure(case, server, args)})

        headers, bad = admin.headers(), bad_headers()

        def call(path: str, sent: dict[str, str] | None = None
                 ) -> Callable[[Any], Any]:
            return lambda http: sqltrace.status(http.get(path, headers=sent or {}))

        report["sql_per_request"] = asyncio.run(sqltrace.trace(settings, {
            "(a) GET /healthz": call("/healthz"),
            "(b) GET /readyz": call("/readyz"),
            "(c) GET /api/v1/me": call("/api/v1/me", headers),
            "(d) GET /api/v1/tenants/{code}": call(f"/api/v1/tenants/{province}", headers),
            "(e) GET /api/v1/me, bad signature": call("/api/v1/me", bad),
        }))

    summary = medians(report["rows"])
    report["medians"] = summary
    report.update(derived(report["rows"], summary))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"auth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print_report(report, out)
    return 0


def print_report(report: dict[str, Any], out: Path) -> None:
    summary: dict[str, dict[str, float]] = report["medians"]
    m, c, rev = report["machine"], report["config"], report["revision"]
    nan = float("nan")
    print(f"\n## Authentication overhead ({c['concurrency']} connections, {c['seconds']:g} s "
          f"x {c['rounds']} rounds after {c['warmup']:g} s warm-up, medians)\n")
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), PostgreSQL {m['postgresql']}, Python "
          f"{m['python']}; {report['tenants']} tenants; per-client rate limit off\n")
    print("| case | req/s | p50 ms | p99 ms | server CPU ms/req | PG CPU ms/req "
          "| server / PG / load-gen busy (cores) | unexpected statuses |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, row in summary.items():
        busy = " / ".join(f"{row.get(k, nan):.2f}"
                          for k in ("server_busy", "pg_busy", "client_busy"))
        print(f"| ({key}) {TITLES[key]} | {row['rps']:,.0f} | {row['p50_ms']:.1f} "
              f"| {row['p99_ms']:.1f} | {row.get('server_cpu_ms_per_req', nan):.2f} "
              f"| {row.get('pg_cpu_ms_per_req', nan):.2f} | {busy} "
              f"| {row['unexpected']:.0f} |")
    print("\n| req/s ratio | of the medians | per round: median [range] |\n|---|---:|---:|")
    for name, r in report["ratios"].items():
        print(f"| {name} | **{r['of_medians']:.2f}** | {r['rounds_median']:.2f} "
              f"[{r['rounds_min']:.2f}–{r['rounds_max']:.2f}] |")
    print("\n| CPU ms per request, difference of medians | server | PostgreSQL | total |\n"
          "|---|---:|---:|---:|")
    for name, d in report["cpu_differences_ms"].items():
        print(f"| {name.replace('-', ' − ')} | {d['server']:+.2f} | {d['pg']:+.2f} "
              f"| **{d['total']:+.2f}** |")
    print("\n## SQL per request (warm)\n")
    for label, trace in report["sql_per_request"].items():
        print(f"- {label} (HTTP {trace['status']}): {len(trace['statements'])} statements in "
              f"{trace['transactions']} transaction(s) = {trace['round_trips']} round trips")
        for statement in trace["statements"]:
            print(f"    - `{abbreviate(statement)}`")
    print(f"\nRaw results: {out.resolve().relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
