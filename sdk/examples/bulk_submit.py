"""Submit applications in bulk from a CSV file, then track what became of them.

A local system (a one-stop-shop counter's software, a partner's register) exports the
applications it received as CSV: one row per application, a column per form field, and a
``ma_ho_so`` column with its own reference. ::

    export NENTANG_URL=https://nentang.example.gov.vn
    export NENTANG_CLIENT_ID=... NENTANG_CLIENT_SECRET=...
    python bulk_submit.py submit --tenant HN --form xac-nhan-cu-tru ho_so.csv trang_thai.csv
    python bulk_submit.py track --tenant HN trang_thai.csv

``submit`` sends every row (a few at a time) and writes a status file: the reference, the
submission and case IDs, or the reasons a row was refused, each with the field at fault.
Each row's idempotency key is derived from the file's batch name and the row's reference, so
running ``submit`` again after a crash or a lost connection never files an application twice:
the platform answers the repeat with the application it already has (for 24 hours).

``track`` reads each case and updates the status file with its current state and outcome.
The exit status is 1 when some row was refused, so a scheduler can alert someone.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from pathlib import Path
from typing import Any

from nentang_sdk import APIError, AsyncClient, ValidationError

REFERENCE = "ma_ho_so"
STATUS_COLUMNS = [REFERENCE, "submission_id", "case_id", "state", "outcome", "error"]


def client() -> AsyncClient:
    return AsyncClient(os.environ["NENTANG_URL"], client_id=os.environ["NENTANG_CLIENT_ID"],
                       client_secret=os.environ["NENTANG_CLIENT_SECRET"])


def _data(row: dict[str, str]) -> dict[str, Any]:
    """The form data of a row: every column but the reference, empty cells left out."""
    return {k: v for k, v in row.items() if k != REFERENCE and v not in ("", None)}


def _reasons(error: APIError) -> str:
    if isinstance(error, ValidationError) and error.errors:
        return "; ".join(f"{e.pointer or e.parameter}: {e.detail}" for e in error.errors)
    return str(error)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


async def submit(args: argparse.Namespace, rows: list[dict[str, str]]) -> int:
    batch = args.batch or Path(args.csv).stem
    results: dict[int, dict[str, str]] = {}
    gate = asyncio.Semaphore(args.concurrency)

    async def one(index: int, row: dict[str, str], nentang: AsyncClient) -> None:
        reference = row[REFERENCE]
        result = {REFERENCE: reference}
        async with gate:
            try:
                submission = await nentang.submissions.create(
                    args.tenant, form=args.form, data=_data(row),
                    idempotency_key=f"{batch}:{reference}")
            except APIError as error:
                result["error"] = _reasons(error)
            else:
                result["submission_id"] = str(submission.id)
                result["case_id"] = str(submission.case or "")
        results[index] = result
        print(f"[{len(results)}/{len(rows)}] {reference}: "
              f"{'refused: ' + result['error'] if 'error' in result else 'submitted'}",
              file=sys.stderr)

    async with client() as nentang:
        await asyncio.gather(*(one(i, row, nentang) for i, row in enumerate(rows)))
    _write(Path(args.status), [results[i] for i in range(len(rows))])
    refused = sum(1 for r in results.values() if r.get("error"))
    print(f"{len(rows) - refused} submitted, {refused} refused; status in {args.status}",
          file=sys.stderr)
    return 1 if refused else 0


async def track(args: argparse.Namespace, rows: list[dict[str, str]]) -> int:
    async with client() as nentang:
        for row in rows:
            if row.get("case_id"):
                case = await nentang.cases.get(args.tenant, row["case_id"])
                row["state"], row["outcome"] = case.state.name, case.outcome or ""
    _write(Path(args.status), rows)
    states: dict[str, int] = {}
    for row in rows:
        key = row.get("state") or ("refused" if row.get("error") else "no case")
        states[key] = states.get(key, 0) + 1
    print(", ".join(f"{state}: {count}" for state, count in sorted(states.items())),
          file=sys.stderr)
    return 1 if any(r.get("error") for r in rows) else 0


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the status file whole, through a temporary file, so it is never half-written."""
    partial = path.with_suffix(path.suffix + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=STATUS_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in STATUS_COLUMNS})
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("submit", help="submit every row of a CSV file")
    sub.add_argument("--tenant", required=True, help="the unit that receives them, e.g. HN")
    sub.add_argument("--form", required=True, help="the form's key")
    sub.add_argument("--batch", help="batch name in idempotency keys (default: file name)")
    sub.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    sub.add_argument("csv", help="applications, one per row")
    sub.add_argument("status", help="status file to write")
    follow = commands.add_parser("track", help="refresh the states in a status file")
    follow.add_argument("--tenant", required=True)
    follow.add_argument("status")
    args = parser.parse_args(argv)
    if args.command == "track":
        return asyncio.run(track(args, _read(Path(args.status))))
    rows = _read(Path(args.csv))
    if not rows or REFERENCE not in rows[0]:
        print(f"{args.csv}: needs a header row with a '{REFERENCE}' column", file=sys.stderr)
        return 2
    return asyncio.run(submit(args, rows))


if __name__ == "__main__":
    raise SystemExit(main())
