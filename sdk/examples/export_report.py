"""Export a report: a saved one as a CSV or Excel file, or a quick count defined on the
command line. For the monthly figures a province sends upwards, or a dashboard's nightly feed.

    export NENTANG_URL=... NENTANG_CLIENT_ID=... NENTANG_CLIENT_SECRET=...
    # a saved report, as the platform formats it
    python export_report.py --tenant HN --report cu-tru-theo-xa --format xlsx bao_cao.xlsx
    # a count of a form's submissions per unit below HN and per month, without saving it
    python export_report.py --tenant HN --form xac-nhan-cu-tru --group-by '$tenant' \\
        --group-by '$month' theo_thang.csv

A definition that does not hold is refused before anything is written, with the part at
fault named (for example ``/group_by/0: unknown field``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from nentang_sdk import APIError, Client, ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", required=True, help="where the report runs (and below)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--report", help="a saved report's key")
    which.add_argument("--form", help="count this form's submissions instead")
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--group-by", action="append", default=[],
                        help="a field, $tenant or $month (repeatable; with --form)")
    parser.add_argument("--rollup", choices=["none", "children"], default="none")
    parser.add_argument("out", help="file to write")
    args = parser.parse_args(argv)

    with Client(os.environ["NENTANG_URL"], client_id=os.environ["NENTANG_CLIENT_ID"],
                client_secret=os.environ["NENTANG_CLIENT_SECRET"]) as nentang:
        try:
            if args.report:
                exported = nentang.reports.export(args.tenant, args.report, format=args.format)
                Path(args.out).write_bytes(exported.content)
                print(f"{args.report}: {len(exported.content)} bytes to {args.out}",
                      file=sys.stderr)
                return 0
            if args.format != "csv":
                parser.error("--form exports CSV only; save the report to get Excel files")
            result = nentang.reports.preview(args.tenant, definition={
                "key": "xuat-nhanh", "title": {"vi": "Xuất nhanh", "en": "Quick export"},
                "form": args.form, "group_by": args.group_by, "rollup": args.rollup,
                "aggregates": [{"fn": "count"}]})
        except ValidationError as error:
            for problem in error.errors:
                print(f"{problem.pointer or problem.parameter}: {problem.detail}",
                      file=sys.stderr)
            return 2
        except APIError as error:
            print(error, file=sys.stderr)
            return 1
    with Path(args.out).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    print(f"{len(result.rows)} rows to {args.out}"
          + (" (truncated by the platform)" if result.truncated else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
