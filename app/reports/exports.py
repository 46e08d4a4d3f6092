"""A report result as CSV or XLSX, written by the submission exports' streaming writers
(:mod:`app.forms.exports`).

CSV cells go through :func:`app.forms.exports.cell`, so text that a spreadsheet would run as
a formula is prefixed with an apostrophe. XLSX cells keep their types: numbers stay numbers
that a spreadsheet can add up, and text is written as text, never as a formula.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from app.forms import exports
from app.reports.service import Result


async def _records(rows: list[list[Any]]) -> AsyncIterator[list[Any]]:
    for row in rows:
        yield row


def csv_chunks(result: Result) -> AsyncIterator[bytes]:
    return exports.csv_chunks(result.columns, _records(
        [[exports.cell(value) for value in row] for row in result.rows]))


async def xlsx_chunks(result: Result) -> tuple[AsyncIterator[bytes], int]:
    """The workbook's bytes, streamed from a temporary file, and its size."""
    path, size = await exports.xlsx_file(result.columns, _records(result.rows),
                                         sheet_name="report")
    return exports.file_chunks(path), size
