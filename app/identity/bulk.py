"""Creating users in bulk from CSV or JSON, with a result per row.

Every row is validated on its own and created in its own savepoint: valid rows are created,
invalid rows come back with JSON Pointers and reasons, and no row is ever half-created (a
user without its roles, say).

CSV columns: ``username`` and ``display_name`` (required), ``email``, ``external_id``,
``roles`` (separated by ``;``), ``totp_required`` (``true``/``false``) and ``password``
(omit to generate one). JSON: ``{"users": [<UserCreate>, ...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.problems import Problem, invalid
from app.identity import users
from app.identity.access_schemas import BulkResult, BulkRowResult, UserCreate, UserCreated
from app.identity.callers import Caller
from app.identity.permissions import Permission
from app.identity.policy import authorize
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

MAX_ROWS = 1000
CSV_COLUMNS = frozenset({"username", "display_name", "email", "external_id", "roles",
                         "totp_required", "password"})
_user = TypeAdapter(UserCreate)


def parse(content_type: str, body: bytes) -> list[Any]:
    """The rows as JSON-like objects, or a 422 naming what is wrong with the document."""
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("", "The body is not UTF-8.", code="bad-encoding") from None
    if media == "text/csv":
        try:
            rows = _csv_rows(text)
        except csv.Error as exc:
            raise invalid("", f"Malformed CSV: {exc}.", code="malformed-csv") from None
    elif media == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid("", f"Malformed JSON: {exc.msg}.", code="malformed-json") from None
        if not isinstance(document, dict) or not isinstance(document.get("users"), list):
            raise invalid("/users", "Send {\"users\": [...]}.")
        rows = document["users"]
    else:
        raise Problem(415, "unsupported-media-type", "Định dạng không hỗ trợ",
                      "Unsupported media type", detail="Send text/csv or application/json.")
    if not rows:
        raise invalid("/users", "There are no rows.")
    if len(rows) > MAX_ROWS:
        raise invalid("/users", f"At most {MAX_ROWS} rows per request.")
    return rows


def _csv_rows(text: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = set(reader.fieldnames or [])
    unknown = sorted(header - CSV_COLUMNS)
    if unknown or not {"username", "display_name"} <= header:
        raise invalid("/header", "The CSV header must name username and display_name, and "
                      f"only known columns ({', '.join(sorted(CSV_COLUMNS))}).",
                      code="bad-csv-header")
    rows: list[Any] = []
    for record in reader:
        if None in record:
            rows.append({"__error__": "The row has more cells than the header."})
            continue
        row: dict[str, Any] = {k: v for k, v in record.items() if v not in (None, "")}
        if "roles" in row:
            row["roles"] = [r.strip() for r in row["roles"].split(";") if r.strip()]
        rows.append(row)
    return rows


def _row_errors(problem: Problem, pointer: str) -> list[dict[str, str]]:
    if problem.errors:
        return [{"pointer": e.get("pointer", pointer), "detail": e.get("detail", "")}
                for e in problem.errors]
    return [{"pointer": pointer, "detail": problem.detail or problem.title_en}]


async def create_users(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                       rows: list[Any]) -> BulkResult:
    authorize(caller, Permission.USERS_WRITE, tenant)
    await lock_active_lineage(session, tenant)
    results: list[BulkRowResult] = []
    for index, raw in enumerate(rows):
        pointer = f"/users/{index}"
        if isinstance(raw, dict) and "__error__" in raw:
            results.append(BulkRowResult(row=index + 1, status="invalid",
                                         errors=[{"pointer": pointer, "detail": raw["__error__"]}]))
            continue
        try:
            data = _user.validate_python(raw)
        except ValidationError as exc:
            results.append(BulkRowResult(row=index + 1, status="invalid", errors=[
                {"pointer": pointer + "".join(f"/{p}" for p in error["loc"]),
                 "detail": error["msg"]} for error in exc.errors()]))
            continue
        heads = audit.chain_heads(session)
        savepoint = await session.begin_nested()
        try:
            new = await users.create(session, caller=caller, tenant=tenant, data=data,
                                     pointer=pointer, lock=False)
            await savepoint.commit()
        except (Problem, DBAPIError) as exc:
            await savepoint.rollback()
            audit.restore_chain_heads(session, heads)
            if isinstance(exc, IntegrityError):
                exc = Problem(409, "conflict", "Xung đột dữ liệu", "Conflict",
                              detail="The row conflicts with an existing user.")
            elif isinstance(exc, DBAPIError):
                exc = invalid(pointer, "The database refused the row.")
            status = {409: "conflict", 403: "forbidden"}.get(exc.status, "invalid")
            results.append(BulkRowResult(row=index + 1, status=status,
                                         errors=_row_errors(exc, pointer)))
            continue
        out = users.to_out(new.user, new.status, tenant.code)
        results.append(BulkRowResult(row=index + 1, status="created", user=UserCreated(
            **out.model_dump(), initial_password=new.initial_password, totp_uri=new.totp_uri)))
    created = sum(1 for r in results if r.status == "created")
    return BulkResult(created=created, failed=len(results) - created, results=results)
