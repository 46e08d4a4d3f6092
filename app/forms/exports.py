"""Exports of submissions as CSV or XLSX, in constant memory, masked row by row.

Rows are read in keyset-paginated batches, so an export of a million submissions never holds
a million rows in memory. A CSV streams as it is read, each batch in a short transaction of
its own under the caller's tenant scope (the request's transaction has ended by then). An
XLSX (a ZIP container, which can only be finished at the end) is written row by row, in the
request's transaction, to a temporary file by xlsxwriter's constant-memory mode, and then
streamed with its length known.

Personal-data fields are masked exactly as in the API (:func:`app.forms.submissions.mask`),
with the caller's permissions at each row's tenant. Cells that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``) are prefixed with an apostrophe.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.forms import submissions
from app.forms.models import FormVersion, Submission
from app.identity.callers import Caller
from app.tenancy.models import Tenant
from app.tenancy.scope import TenantScope, apply_scope

BATCH = 500
FIXED_COLUMNS = ["id", "tenant", "form_version", "status", "created_at", "submitted_at"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def field_columns(versions: list[FormVersion]) -> list[str]:
    """The form's fields, newest version's order first (its ``ui_schema.order``, then schema
    order), then fields only older versions had."""
    names: dict[str, None] = {}
    for version in sorted(versions, key=lambda v: -v.number):
        definition = version.definition
        names.update(dict.fromkeys(definition["ui_schema"].get("order", [])))
        names.update(dict.fromkeys(definition["schema"].get("properties", {})))
    return list(names)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


Batch = list[tuple[Submission, FormVersion, Tenant]]
ReadBatch = Callable[[tuple[datetime, uuid.UUID] | None], Awaitable[Batch]]


def in_session(session: AsyncSession, tenant: Tenant,
               filters: submissions.Filters) -> ReadBatch:
    """Batches read in the request's own transaction (while the request is being handled)."""
    async def read(after: tuple[datetime, uuid.UUID] | None) -> Batch:
        return await submissions.list_page(session, tenant, filters, after=after, limit=BATCH)

    return read


def detached(sessions: async_sessionmaker[Any], scope: TenantScope, tenant: Tenant,
             filters: submissions.Filters) -> ReadBatch:
    """Batches read each in a short transaction of its own, under the caller's scope: for a
    response that streams after the request's transaction has ended."""
    async def read(after: tuple[datetime, uuid.UUID] | None) -> Batch:
        async with sessions() as session, session.begin():
            await apply_scope(session, scope)
            return await submissions.list_page(session, tenant, filters, after=after,
                                                limit=BATCH)

    return read


async def rows(read: ReadBatch, caller: Caller, columns: list[str]) -> AsyncIterator[list[str]]:
    after = None
    while True:
        batch = await read(after)
        for submission, version, owner in batch:
            masked = submissions.mask(version.definition, submission.data,
                                      caller.permissions_at(owner.path))
            yield [str(submission.id), owner.code, str(version.number), submission.status,
                   submission.created_at.isoformat(),
                   submission.submitted_at.isoformat() if submission.submitted_at else "",
                   *(cell(masked.data.get(name)) for name in columns)]
        if len(batch) < BATCH:
            return
        last = batch[-1][0]
        after = (last.created_at, last.id)


async def csv_chunks(header: list[str], records: AsyncIterator[list[str]]) -> AsyncIterator[bytes]:
    """UTF-8 with a byte-order mark, so spreadsheet programs read Vietnamese correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    pending = 1
    first = True
    async for record in records:
        writer.writerow(record)
        pending += 1
        if pending >= BATCH:
            yield (("\ufeff" if first else "") + buffer.getvalue()).encode()
            first, pending = False, 0
            buffer.seek(0)
            buffer.truncate()
    yield (("\ufeff" if first else "") + buffer.getvalue()).encode()


async def xlsx_file(header: list[str], records: AsyncIterator[list[Any]], *,
                    sheet_name: str = "submissions") -> tuple[str, int]:
    """Write the workbook to a temporary file; its path (the caller removes it) and size."""
    handle, path = tempfile.mkstemp(prefix="nentang-export-", suffix=".xlsx")
    os.close(handle)
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                          "strings_to_urls": False})
    try:
        sheet = workbook.add_worksheet(sheet_name)
        sheet.write_row(0, 0, header)
        row = 1
        batch: list[list[Any]] = []
        async for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                await asyncio.to_thread(_write_rows, sheet, row, batch)
                row += len(batch)
                batch = []
        await asyncio.to_thread(_write_rows, sheet, row, batch)
        await asyncio.to_thread(workbook.close)
    except BaseException:
        os.unlink(path)
        raise
    return path, os.stat(path).st_size


def _write_rows(sheet: Any, first_row: int, batch: list[list[Any]]) -> None:
    for offset, record in enumerate(batch):
        sheet.write_row(first_row + offset, 0, record)


async def file_chunks(path: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Stream a temporary file, removing it afterwards (also when the client goes away)."""
    try:
        with open(path, "rb") as source:  # noqa: ASYNC230 (small reads of a local file)
            while chunk := source.read(chunk_size):
                yield chunk
    finally:
        os.unlink(path)
