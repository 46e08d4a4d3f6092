"""Creating a submission of a 40-field form against the bare JSONB insert floor, in one run.

    .venv/bin/python -m benchmarks.submissions            # from the repository root

What one run does:

1. creates a fresh PostgreSQL database and fresh owner and service roles, migrated exactly
   as ``tests/conftest.py`` does (:meth:`benchmarks.run.Database.created`), and adds the
   floor's JSONB table (:data:`benchmarks.bare_app.SUBMISSIONS_SCHEMA`, granted SELECT and
   INSERT to the service role);
2. starts the bare app (:mod:`benchmarks.bare_app`) and Nentang (``nentang serve``), each
   on uvicorn with one worker on a free loopback port, both as the unprivileged service role;
3. bootstraps the platform, builds the ten-tenant tree of :mod:`benchmarks.run` through the
   API, creates a ``tenant_admin`` client for province ``01`` and, with it, creates and
   publishes there the 40-field form of :func:`benchmarks.validation.definition`;
4. measures, at a fixed concurrency and after a warm-up, every case ``--rounds`` times,
   interleaved, rotating the order each round:

   * ``bare POST``: the foundation benchmark's floor, ``POST /bare`` (one small row);
   * ``bare JSONB POST``: ``POST /bare/submissions`` with the very body Nentang gets, parsed
     by pydantic, inserted as JSONB in one pooled asyncpg statement and echoed back: the
     like-for-like floor;
   * ``nentang POST``: ``POST /api/v1/tenants/01/submissions`` with the province admin's
     token (``status`` defaults to ``submitted``, so the data is validated in full);
   * ``nentang POST + Idempotency-Key``: the same, with a new ``Idempotency-Key`` on every
     request (leave it out with ``--no-idempotency``);

   every body is ``{"form": <key>, "data": <valid_payload()>}`` (about 2.2 kB: 40 fields,
   two nested addresses and three attachment-metadata objects of name, SHA-256, size and
   media type) with a fresh ``ma_ho_so`` UUID per request;
5. records the SQL Nentang sends per create (:mod:`benchmarks.sqltrace`), without and with
   an ``Idempotency-Key``;
6. prints a Markdown table and the ratios, writes the raw figures to ``benchmarks/out/``,
   and drops the database and roles whatever happened.

The rows a measurement inserts (submissions, their audit records, which are the tail of
the province's chain, idempotency keys, bare rows) are deleted and the tables vacuumed
before the next, so every measurement starts from the same database. Besides requests per
second and the p50/p99 latency, it reports CPU per request of the server process and of
PostgreSQL (from ``/proc``; the PostgreSQL figure includes anything else the server was
doing at the time), which is steadier than throughput on a small, noisy machine. The
figures are medians over rounds (the p99 too: the median of the rounds' p99s).

``NENTANG_BENCH_PG_URL`` names a superuser connection (default: the test suite's,
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import load, sqltrace
from benchmarks.bare_app import SUBMISSIONS_SCHEMA
from benchmarks.run import (
    HOST,
    MANIFEST,
    OUT_DIR,
    REPO,
    Api,
    Case,
    Database,
    abbreviate,
    machine,
    medians,
    province_admin,
    revision,
    run_phase,
    small_tree,
    start_bare,
    start_nentang,
    table,
)
from benchmarks.validation import definition, valid_payload

PHASE = "40-field form"
BARE, BARE_JSON = "bare POST", "bare JSONB POST"
NENTANG, NENTANG_KEYED = "nentang POST", "nentang POST + Idempotency-Key"
_ID = "00000000-0000-4000-8000-00000000feed"  # replaced by a fresh UUID in every body


class Bodies:
    """Request bodies for one form: the same JSON each time but for a fresh ``ma_ho_so``."""

    def __init__(self, form_key: str) -> None:
        data = valid_payload() | {"ma_ho_so": _ID}
        self.template = json.dumps({"form": form_key, "data": data}, ensure_ascii=False)
        self.attachments = len(data["tep_dinh_kem"])

    def __call__(self) -> bytes:
        return self.template.replace(_ID, str(uuid.uuid4())).encode()


@dataclass(frozen=True)
class KeyedTarget(load.Target):
    """A target whose every request carries a new ``Idempotency-Key``."""

    def encode(self) -> bytes:
        request_line, _, rest = super().encode().partition(b"\r\n")
        key = f"Idempotency-Key: bench-{load.unique_number()}".encode()
        return request_line + b"\r\n" + key + b"\r\n" + rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.submissions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0,
                        help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of unmeasured load before each")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of every case")
    parser.add_argument("--no-idempotency", action="store_true",
                        help="leave out the Idempotency-Key case")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the report of an earlier run's raw results")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0

    manifest: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"]
    seed = small_tree(manifest)
    province = seed[0]["code"]
    form = definition()
    bodies = Bodies(form["key"])
    db = Database.fresh()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(), "machine": machine(), "revision": revision(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "payload": {"form": form["key"], "fields": len(form["schema"]["properties"]),
                    "attachments": bodies.attachments, "body_bytes": len(bodies())},
        "rows": []}
    with tempfile.TemporaryDirectory(prefix="nentang-bench-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        db.execute(SUBMISSIONS_SCHEMA,
                   f'GRANT SELECT, INSERT ON bench_bare_submissions TO "{db.app_role}"')
        report["machine"]["postgresql"] = db.fetch("SHOW server_version")[0][0]
        env = db.env(data_dir)
        bare = start_bare(db, data_dir, stack)
        nentang = start_nentang(env, data_dir, stack)
        bare.wait_ready()
        nentang.wait_ready()
        api, _platform_token, admin = province_admin(env, nentang, stack, seed, province)
        forms = f"/api/v1/tenants/{province}/forms"
        admin_token = api.token(admin.client_id, admin.secret)
        headers = {"Authorization": f"Bearer {admin_token}"}
        api.create(forms, admin_token, form)
        published = api.http.post(f"{forms}/{form['key']}/versions/1/publish", headers=headers)
        if published.status_code != 200:
            raise RuntimeError(f"publish: {published.status_code} {published.text}")
        province_id = db.fetch("SELECT id FROM tenants WHERE code = $1", province)[0][0]
        audit_head = db.fetch("SELECT coalesce(max(seq), 0) FROM audit_records "
                              "WHERE tenant_id = $1", province_id)[0][0]
        submissions_path = f"/api/v1/tenants/{province}/submissions"
        check_once(api, bare.base_url + "/bare/submissions", {}, bodies())
        check_once(api, submissions_path, headers, bodies())

        def drop_bare_inserts() -> None:
            db.execute("DELETE FROM bench_bare WHERE code LIKE 'N%'", "VACUUM (ANALYZE) bench_bare")

        def drop_bare_submissions() -> None:
            db.execute("DELETE FROM bench_bare_submissions",
                       "VACUUM (ANALYZE) bench_bare_submissions")

        def drop_submissions() -> None:
            # The audit records after the set-up are the tail of the province's chain, so
            # deleting them leaves the chain intact.
            db.fetch("DELETE FROM submissions WHERE tenant_id = $1", province_id)
            db.fetch("DELETE FROM idempotency_keys WHERE tenant_id = $1", province_id)
            db.fetch("DELETE FROM audit_records WHERE tenant_id = $1 AND seq > $2",
                     province_id, audit_head)
            db.execute("VACUUM (ANALYZE) submissions", "VACUUM (ANALYZE) idempotency_keys",
                       "VACUUM (ANALYZE) audit_records")

        drop_bare_submissions()
        drop_submissions()
        cases = [
            Case(BARE, bare, lambda: load.Target(
                HOST, bare.port, "POST", "/bare", body=lambda: json.dumps(
                    {"code": f"N{load.unique_number()}", "name": "Cơ quan thử tải"},
                    ensure_ascii=False).encode()), drop_bare_inserts),
            Case(BARE_JSON, bare, lambda: load.Target(
                HOST, bare.port, "POST", "/bare/submissions", body=bodies),
                drop_bare_submissions),
            Case(NENTANG, nentang, lambda: load.Target(
                HOST, nentang.port, "POST", submissions_path, headers=admin.headers(),
                body=bodies), drop_submissions),
        ]
        if not args.no_idempotency:
            cases.append(Case(NENTANG_KEYED, nentang, lambda: KeyedTarget(
                HOST, nentang.port, "POST", submissions_path, headers=admin.headers(),
                body=bodies), drop_submissions))
        report["rows"] += run_phase(PHASE, cases, args)

        headers = {**admin.headers(), "Content-Type": "application/json"}

        def keyed() -> dict[str, str]:
            return {**headers, "Idempotency-Key": f"trace-{load.unique_number()}"}

        report["sql_per_request"] = asyncio.run(sqltrace.trace(settings, {
            "POST /api/v1/tenants/{t}/submissions": lambda http: sqltrace.status(http.post(
                submissions_path, headers=headers, content=bodies())),
            "POST /api/v1/tenants/{t}/submissions with Idempotency-Key":
                lambda http: sqltrace.status(http.post(
                    submissions_path, headers=keyed(), content=bodies())),
        }))

    summary = medians(report["rows"])
    report["medians"] = [{"phase": p, "case": c, **m} for (p, c), m in summary.items()]
    report["ratios"] = ratios(summary)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"submissions-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print_report(report, out)
    return 0


def check_once(api: Api, url: str, headers: dict[str, str], body: bytes) -> None:
    """One request before measuring, so a body the server refuses stops the run early."""
    response = api.http.post(url, headers={**headers, "Content-Type": "application/json"},
                             content=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:2000]}")


def ratios(summary: dict[tuple[str, str], dict[str, float]]) -> dict[str, float]:
    def get(label: str, key: str) -> float:
        return summary[(PHASE, label)][key]

    found = {}
    nentang = [NENTANG] + ([NENTANG_KEYED] if (PHASE, NENTANG_KEYED) in summary else [])
    for label in nentang:
        for floor in (BARE_JSON, BARE):
            found[f"req/s: {label} / {floor}"] = get(label, "rps") / get(floor, "rps")
            found[f"p99: {label} / {floor}"] = get(label, "p99_ms") / get(floor, "p99_ms")
            if all("server_cpu_ms_per_req" in summary[(PHASE, x)] for x in (label, floor)):
                found[f"server CPU per request: {label} / {floor}"] = (
                    get(label, "server_cpu_ms_per_req") / get(floor, "server_cpu_ms_per_req"))
    if len(nentang) == 2:
        found[f"req/s: {NENTANG_KEYED} / {NENTANG}"] = (
            get(NENTANG_KEYED, "rps") / get(NENTANG, "rps"))
    return found


def print_report(report: dict[str, Any], out: Path) -> None:
    summary = medians(report["rows"])
    m, c, p = report["machine"], report["config"], report["payload"]
    print(f"\n## Submission create ({c['connections']} connections, {c['duration']:g} s x "
          f"{c['rounds']} rounds, medians)\n")
    rev = report["revision"]
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, PostgreSQL "
          f"{m['postgresql']}, Python {m['python']}. Form `{p['form']}`: {p['fields']} fields, "
          f"{p['attachments']} attachment-metadata items, {p['body_bytes']:,}-byte body.\n")
    print(table(summary))
    print("\n| ratio | value |\n|---|---:|")
    for name, value in report["ratios"].items():
        print(f"| {name} | {value:.2f} |")
    print("\n## SQL per Nentang submission create (warm)\n")
    for label, trace in report["sql_per_request"].items():
        print(f"- {label} (HTTP {trace['status']}): {len(trace['statements'])} statements in "
              f"{trace['transactions']} transaction(s) = {trace['round_trips']} round trips")
        for statement in trace["statements"]:
            print(f"    - `{abbreviate(statement)}`")
    print(f"\nRaw results: {out.resolve().relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
