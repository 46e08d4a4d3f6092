"""What the SDK costs a caller: per-call latency through ``nentang_sdk.Client`` and
``AsyncClient`` against bare httpx making the same requests in the same run.

    .venv/bin/python -m benchmarks.sdk                  # about a minute
    .venv/bin/python -m benchmarks.sdk --calls 2000 --rounds 5

What one run does: starts Nentang on a fresh SQLite file (``nentang serve``, as the SDK's
contract tests do), bootstraps it and creates one province with 120 communes. Then, in
``--rounds`` alternating rounds, it times ``--calls`` sequential calls of each kind:

* **read**: ``GET /api/v1/tenants/{code}`` — bare ``httpx.Client`` with a bearer token and
  ``response.json()``, against ``Client.tenants.get`` (builds the call, attaches the cached
  token, parses the answer into a typed model);
* **list**: the 120 communes in pages of 50 (3 requests) — bare httpx following
  ``next_cursor`` by hand, against iterating ``Client.tenants.children``;
* **async read**: the read through ``httpx.AsyncClient`` against ``AsyncClient``.

Reported: the median per call of each side and the ratio SDK / bare (1.00 = free). Both
sides talk to the same server over loopback, so the server's time is in both; the
difference is what the SDK adds on the caller's side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk" / "tests"))
from live_service import running_service
from nentang_sdk import AsyncClient, Client

from benchmarks import ratios

COMMUNES = 120


def _timed(run: Callable[[], Any], calls: int) -> float:
    """Seconds per call over ``calls`` sequential calls."""
    started = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - started) / calls


async def _atimed(run: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await run()
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--report", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, running_service("sqlite", Path(tmp)) as svc:
        sdk = Client(svc.base_url, client_id=svc.admin_client_id,
                     client_secret=svc.admin_client_secret)
        sdk.tenants.create(code="HN", name="Hà Nội", kind="province", parent=svc.root)
        for i in range(COMMUNES):
            sdk.tenants.create(code=f"X{i:05d}", name=f"Xã {i}", kind="commune", parent="HN")
        token = sdk.oauth.token(client_id=svc.admin_client_id,
                                client_secret=svc.admin_client_secret).access_token
        headers = {"Authorization": f"Bearer {token}"}
        bare = httpx.Client(base_url=svc.base_url, headers=headers, trust_env=False)

        def bare_list() -> int:
            count, cursor = 0, None
            while True:
                page = bare.get("/api/v1/tenants/HN/children",
                                params={"limit": 50, **({"cursor": cursor} if cursor else {})}
                                ).json()
                count += len(page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    return count

        async def async_rounds(rounds: int, calls: int) -> list[tuple[float, float]]:
            async with httpx.AsyncClient(base_url=svc.base_url, headers=headers,
                                         trust_env=False) as abare, AsyncClient(
                    svc.base_url, client_id=svc.admin_client_id,
                    client_secret=svc.admin_client_secret) as asdk:

                async def bare_read() -> Any:
                    return (await abare.get("/api/v1/tenants/HN")).json()

                return [(await _atimed(bare_read, calls),
                         await _atimed(lambda: asdk.tenants.get("HN"), calls))
                        for _ in range(rounds)]

        assert bare_list() == COMMUNES == len(sdk.tenants.children("HN", limit=50).to_list())
        figures: dict[str, list[tuple[float, float]]] = {"read": [], "list": [],
                                                          "async read": []}
        for _ in range(args.rounds):
            figures["read"].append((_timed(lambda: bare.get("/api/v1/tenants/HN").json(),
                                           args.calls),
                                    _timed(lambda: sdk.tenants.get("HN"), args.calls)))
            figures["list"].append((_timed(bare_list, args.calls // 10),
                                    _timed(lambda: sdk.tenants.children("HN", limit=50)
                                           .to_list(), args.calls // 10)))
        figures["async read"] = asyncio.run(async_rounds(args.rounds, args.calls))
        bare.close()
        sdk.close()

    report: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(),
                              "calls": args.calls, "rounds": args.rounds, "results": {}}
    report["results"] = ratios.report(figures, label="kind", baseline="bare", measured="sdk")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
