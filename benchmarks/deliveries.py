"""Outbox delivery: the lag from an event to its arrival while cases are being created under
load, and the delivery throughput per worker, against a bare sender in the same run.

    .venv/bin/python -m benchmarks.deliveries                 # about 4 minutes
    .venv/bin/python -m benchmarks.deliveries --rate 20 --seconds 60 --backlog 3000
    .venv/bin/python -m benchmarks.deliveries --report benchmarks/out/deliveries-<time>.json

What one run does:

1. creates a fresh PostgreSQL database with fresh owner and service roles, migrated as the
   tests do; starts Nentang (``nentang serve``, one uvicorn worker) and a receiving system
   (:mod:`benchmarks.receiver`, its own uvicorn process, answering 200 at once and recording
   each arrival's wall-clock time); bootstraps the platform, creates a small tree, publishes the
   ``ho-kinh-doanh`` form and workflow at the root, a portal client at a commune, and at the
   root one ``xroad`` subscription to ``case.opened`` pointed at the receiver (so every case
   opened anywhere makes one delivery);
2. **lag under load**: starts ``--workers`` worker processes (``nentang worker --poll``),
   then submits applications through the API at ``--rate`` per second for ``--seconds``
   (each opens a case, in the same transaction as its event and delivery), and waits until
   every delivery has arrived. Lag = arrival time at the receiver − the event's
   ``occurred_at`` (same machine, same clock); p50, p99 and max over every event;
3. **throughput per worker**: with no worker running, submits ``--backlog`` applications
   (a backlog of as many deliveries), starts 1 worker and times first to last arrival; then
   the same with 2 workers on a fresh backlog;
4. **the baseline**: a bare sender (one asyncio process, httpx, 16 requests in flight like a
   worker) POSTs ``--backlog`` bodies of the same size to the same receiver; the ratio is a
   worker's deliveries per second to the bare sender's.

A delivery costs, per event, the worker's claim (one locking query per batch), the load of
its event, tenant and subscription, the send, and the record with its audit row; the bare
sender does only the send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.cases import FORM_FILE, KEY, SAMPLE_FILE, WORKFLOW_FILE, client, publish_workflow
from benchmarks.reports import publish_form
from benchmarks.run import (
    MANIFEST,
    OUT_DIR,
    REPO,
    ROOT_CODE,
    ROOT_NAME,
    Api,
    Credentials,
    Database,
    Server,
    machine,
    nentang_cli,
    revision,
    small_tree,
    start_nentang,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def arrivals(receiver: Server) -> list[list[Any]]:
    found: list[list[Any]] = httpx.get(f"{receiver.base_url}/dump", timeout=30).json()
    return found


def workers(env: dict[str, str], count: int, poll: float, data_dir: Path) -> list[Any]:
    import subprocess

    return [subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "app.cli", "worker", "--poll", str(poll), "--batch", "100",
         "--name", f"bench-{i}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=(data_dir / f"worker-{i}.log").open("wb")) for i in range(count)]


def stop(processes: list[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(30)


def submit_many(api: Api, portal: Credentials, commune: str, sample: dict[str, Any],
                count: int, *, rate: float | None = None, threads: int = 4) -> list[float]:
    """Submit ``count`` applications (paced to ``rate`` per second if given); returns each
    request's latency in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()
    next_index = iter(range(count))

    def run() -> None:
        http = httpx.Client(base_url=api.http.base_url, timeout=60)
        try:
            for index in next_index:
                if rate:
                    delay = started + index / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                t0 = time.monotonic()
                response = http.post(f"/api/v1/tenants/{commune}/submissions",
                                     headers=portal.headers(),
                                     json={"form": KEY, "data": sample})
                if response.status_code != 201:
                    raise RuntimeError(f"submit: {response.status_code} {response.text[:500]}")
                with lock:
                    latencies.append(time.monotonic() - t0)
        finally:
            http.close()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies


def wait_for(receiver: Server, expected: int, timeout: float = 600) -> list[list[Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = arrivals(receiver)
        if len({r[1] for r in found}) >= expected:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)} of {expected} deliveries arrived")
        time.sleep(0.5)


def reset(receiver: Server) -> None:
    httpx.post(f"{receiver.base_url}/reset", timeout=30)


async def bare_send(url: str, bodies: list[bytes], concurrency: int = 16) -> float:
    """Seconds for one asyncio process to POST every body: ``concurrency`` senders, each
    taking the next body as soon as its last one is answered (no queueing machinery)."""
    pending = iter(bodies)
    async with httpx.AsyncClient(timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as http:
        async def sender() -> None:
            for body in pending:
                response = await http.post(url, content=body,
                                           headers={"content-type": "application/json"})
                response.raise_for_status()

        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return time.monotonic() - started


def drain(env: dict[str, str], api: Api, portal: Credentials, commune: str,
          sample: dict[str, Any], receiver: Server, backlog: int, count: int, poll: float,
          data_dir: Path) -> dict[str, Any]:
    reset(receiver)
    submit_many(api, portal, commune, sample, backlog)
    running = workers(env, count, poll, data_dir)
    try:
        found = wait_for(receiver, backlog)
    finally:
        stop(running)
    times = sorted(r[0] for r in found)
    seconds = times[-1] - times[0]
    rate = (len(times) - 1) / seconds if seconds > 0 else float("nan")
    return {"workers": count, "deliveries": len(times), "seconds": round(seconds, 2),
            "per_second": round(rate, 1), "per_second_per_worker": round(rate / count, 1),
            "repeats": len(found) - len({r[1] for r in found})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deliveries", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=15, help="applications per second")
    parser.add_argument("--seconds", type=float, default=40, help="length of the load")
    parser.add_argument("--workers", type=int, default=2, help="workers during the load")
    parser.add_argument("--poll", type=float, default=0.2, help="workers' idle poll, seconds")
    parser.add_argument("--backlog", type=int, default=2000, help="deliveries to drain")
    parser.add_argument("--report", type=Path, help="only print an earlier run's report")
    args = parser.parse_args(argv)
    if args.report:
        print_report(json.loads(args.report.read_text(encoding="utf-8")), args.report)
        return 0

    report: dict[str, Any] = {"revision": revision(), "machine": machine(),
                              "config": vars(args) | {"report": None}}
    form = json.loads(FORM_FILE.read_text(encoding="utf-8"))
    definition = json.loads(WORKFLOW_FILE.read_text(encoding="utf-8"))
    sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    db = Database.fresh()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        settings = stack.enter_context(db.created(data_dir))
        del settings
        env = {**db.env(data_dir), "NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS": "true"}
        nentang = start_nentang(env, data_dir, stack)
        receiver = Server("receiver", ["-m", "uvicorn", "benchmarks.receiver:app",
                                       "--no-access-log", "--log-level", "warning"],
                          env, data_dir)
        stack.callback(receiver.stop)
        nentang.wait_ready()
        receiver.wait_ready()
        boot = json.loads(nentang_cli(env, "bootstrap", "--code", ROOT_CODE, "--name", ROOT_NAME))
        api = Api(nentang.base_url)
        stack.callback(api.http.close)
        token = api.token(boot["client_id"], boot["client_secret"])
        tree = small_tree(json.loads(MANIFEST.read_text(encoding="utf-8"))["tenants"])
        for entry in tree:
            api.create("/api/v1/tenants", token, entry)
        commune = next(e["code"] for e in tree if e["kind"] == "commune")
        publish_form(api, token, form)
        publish_workflow(api, token, definition)
        portal = client(api, token, commune, ["api_client"], "benchmark portal")
        api.create(f"/api/v1/tenants/{ROOT_CODE}/subscriptions", token, {
            "name": "bench", "transport": "xroad", "events": ["case.opened"],
            "target": {"security_server": receiver.base_url,
                       "service": {"instance": "VN", "member_class": "GOV",
                                   "member_code": "BENCH", "subsystem": "LGSP",
                                   "service_code": "su-kien"},
                       "client": {"instance": "VN", "member_class": "GOV",
                                  "member_code": "NENTANG", "subsystem": "PLATFORM"}}})

        total = int(args.rate * args.seconds)
        log(f"Lag under load: {total} applications at {args.rate:g}/s, "
            f"{args.workers} workers ...")
        running = workers(env, args.workers, args.poll, data_dir)
        try:
            time.sleep(3)  # the workers' start-up
            latencies = submit_many(api, portal, commune, sample, total, rate=args.rate)
            found = wait_for(receiver, total)
        finally:
            stop(running)
        lags = [r[0] - datetime.fromisoformat(r[2].replace("Z", "+00:00")).timestamp()
                for r in found]
        report["lag"] = {
            "applications": total, "rate": args.rate, "workers": args.workers,
            "poll_s": args.poll, "lag_p50_ms": round(percentile(lags, 0.5) * 1000, 1),
            "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
            "lag_max_ms": round(max(lags) * 1000, 1),
            "submit_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "repeats": len(found) - len({r[1] for r in found})}
        log(f"  {report['lag']}")

        report["drain"] = []
        for count in (1, 2):
            log(f"Throughput: a backlog of {args.backlog}, {count} worker(s) ...")
            report["drain"].append(drain(env, api, portal, commune, sample, receiver,
                                         args.backlog, count, args.poll, data_dir))
            log(f"  {report['drain'][-1]}")

        reset(receiver)
        bodies = [json.dumps({"id": f"bare-{i}", "type": "case.opened", "data": sample}).encode()
                  for i in range(args.backlog)]
        wall = asyncio.run(bare_send(f"{receiver.base_url}/r1/VN/GOV/BENCH/LGSP/su-kien",
                                     bodies))
        times = sorted(r[0] for r in wait_for(receiver, args.backlog))
        seconds = times[-1] - times[0]  # first to last arrival, as for the workers
        report["bare"] = {"deliveries": args.backlog, "seconds": round(seconds, 2),
                          "per_second": round((len(times) - 1) / seconds, 1),
                          "wall_seconds": round(wall, 2), "body_bytes": len(bodies[0])}
        log(f"Bare sender: {report['bare']}")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"deliveries-{datetime.now().strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print_report(report, out)
    return 0


def print_report(report: dict[str, Any], out: Path) -> None:
    lag, bare = report["lag"], report["bare"]
    print("## Outbox delivery (issue 7)\n")
    print(f"Commit `{report['revision'].get('commit', '?')}`; machine: "
          f"{report['machine'].get('cpu', '?')}, {report['machine'].get('nproc', '?')} cores.\n")
    print(f"**Lag under load** ({lag['applications']} applications at {lag['rate']:g}/s "
          f"through the API, {lag['workers']} workers polling every {lag['poll_s']:g} s when "
          f"idle): p50 **{lag['lag_p50_ms']:.0f} ms**, p99 **{lag['lag_p99_ms']:.0f} ms**, "
          f"max {lag['lag_max_ms']:.0f} ms from the event's commit-time stamp to its arrival "
          f"(submission p50 {lag['submit_p50_ms']:.0f} ms; {lag['repeats']} repeats).\n")
    print("| workers | backlog | seconds (first→last arrival) | deliveries/s | per worker "
          "| ratio to the bare sender |")
    print("|---|---|---|---|---|---|")
    for row in report["drain"]:
        print(f"| {row['workers']} | {row['deliveries']} | {row['seconds']} | "
              f"{row['per_second']} | {row['per_second_per_worker']} | "
              f"{row['per_second'] / bare['per_second']:.3f} |")
    print(f"| bare sender (16 in flight) | {bare['deliveries']} | {bare['seconds']} | "
          f"{bare['per_second']} | | 1 |\n")
    print(f"Raw results: {out.resolve().relative_to(REPO) if out.is_absolute() else out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
