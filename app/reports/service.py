"""Saved reports, and running a report as one aggregate SQL statement.

A run compiles the checked definition (:class:`~app.reports.definitions.Plan`) into a single
``SELECT`` over the mapped :class:`~app.forms.models.Submission` class, so the tenant scope
of :mod:`app.tenancy.scope` applies to it like to any other query, and the database does the
grouping and counting: no submission is loaded into Python. The inner query picks the
submissions (the running tenant's subtree, the form, the status and the filters) and extracts
the values the report needs; the outer query groups and aggregates them.

Values are read from the JSON ``data`` with SQLAlchemy's JSON index operators, which compile
to ``json_extract`` on SQLite and ``#>>`` on PostgreSQL. Each is guarded by its JSON type
(``json_type`` / ``jsonb_typeof``), so a draft holding text where the form wants a number
counts as missing instead of failing the cast.

Personal data: a report that filters, groups or aggregates by a field the form marks as
personal data needs both personal-data permissions at the running tenant. Counts over small
groups can still single people out (one household business of an ethnic minority in a
commune); ``min_group_size`` leaves such rows out, but comparing reports with different
filters can still reveal them, so it is a mitigation, not anonymisation.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    case,
    cast,
    distinct,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from app.audit import service as audit
from app.core.db import on_postgresql, plan_for_each_execution, utcnow
from app.core.problems import Problem, conflict, not_found
from app.forms.models import Submission
from app.forms.service import lineage_forms, versions
from app.forms.submissions import LEVEL_PERMISSION, in_subtree
from app.forms.validators import digest
from app.identity.callers import Caller
from app.reports import definitions
from app.reports.definitions import MONTH, NUMERIC_FUNCTIONS, TENANT, Field, Filter, Kind, Plan
from app.reports.models import Report
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

# Months are Vietnam's: UTC+7 all year, as Vietnam keeps no daylight saving time.
REPORT_TIMEZONE = "Asia/Ho_Chi_Minh"
_SQLITE_OFFSET = "+7 hours"
# A tenant path is "/<id>/<id>/.../" and an id is a UUID in its 36-character text form.
_ID_LENGTH = 36
# What SQLite's json_type and PostgreSQL's jsonb_typeof call each kind of value.
_JSON_TYPES = {
    Kind.NUMBER: (("integer", "real"), ("number",)),
    Kind.STRING: (("text",), ("string",)),
    Kind.BOOLEAN: (("true", "false"), ("boolean",)),
}


# ---- saved reports -----------------------------------------------------------------------


async def form_fields(session: AsyncSession, tenant: Tenant,
                      key: str) -> definitions.FormFields | None:
    """The fields of the form ``key`` as ``tenant`` uses it (None if it has none)."""
    forms = await lineage_forms(session, tenant, key)
    if not forms:
        return None
    found = await versions(session, forms[0], tenant)
    return definitions.FormFields(v.definition for v in found) if found else None


async def checked(session: AsyncSession, tenant: Tenant, definition: Any) -> Plan:
    """The plan of a definition at ``tenant``, or a 422 with every problem."""
    document = definitions.check_shape(definition)
    return definitions.plan(document, await form_fields(session, tenant, document["form"]))


async def _record(session: AsyncSession, caller: Caller, report: Report, action: str,
                  **extra: Any) -> None:
    """Audit the definition by digest: its filter values may name people."""
    await audit.record(session, tenant_id=report.tenant_id, actor=caller.actor, action=action,
                       resource_type="report", resource_id=report.key,
                       after={"key": report.key, "form": report.form_key,
                              "digest": digest(report.definition), **extra})


async def get(session: AsyncSession, tenant: Tenant, key: str, *,
              lock: bool = False) -> Report:
    """A report saved at ``tenant`` itself (reports are not inherited)."""
    statement = select(Report).where(Report.tenant_id == tenant.id, Report.key == key)
    if lock:
        statement = statement.with_for_update()
    report = (await session.execute(statement)).scalar_one_or_none()
    if report is None:
        raise not_found("report", key)
    return report


async def list_page(session: AsyncSession, tenant: Tenant, *, after: str | None,
                    limit: int) -> list[Report]:
    statement = select(Report).where(Report.tenant_id == tenant.id)
    if after is not None:
        statement = statement.where(Report.key > after)
    rows = await session.execute(statement.order_by(Report.key).limit(limit))
    return list(rows.scalars())


async def create(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 definition: Any) -> Report:
    await lock_active_lineage(session, tenant)
    plan = await checked(session, tenant, definition)
    key = definition["key"]
    if (await session.execute(select(Report.id).where(Report.tenant_id == tenant.id,
                                                      Report.key == key))).first():
        raise conflict("report-exists", f"'{tenant.code}' already has a report '{key}'; "
                       "replace it with PUT .../reports/{key}.")
    now = utcnow()
    report = Report(tenant_id=tenant.id, id=uuid.uuid4(), key=key, form_key=plan.form,
                    definition=dict(definition), created_by=caller.actor, created_at=now,
                    updated_at=now)
    session.add(report)
    await session.flush()
    await _record(session, caller, report, "report.create")
    return report


async def replace(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                  definition: Any) -> Report:
    await lock_active_lineage(session, tenant)
    report = await get(session, tenant, key, lock=True)
    plan = await checked(session, tenant, definition)
    if definition["key"] != key:
        raise Problem(422, "key-mismatch", "Mã báo cáo không khớp", "Report key mismatch",
                      detail=f"The definition's key must stay '{key}'.",
                      errors=[{"pointer": "/key", "detail": f"must be '{key}'"}])
    report.definition, report.form_key, report.updated_at = dict(definition), plan.form, utcnow()
    await session.flush()
    await _record(session, caller, report, "report.update")
    return report


async def delete(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str) -> None:
    await lock_active_lineage(session, tenant)
    report = await get(session, tenant, key, lock=True)
    await _record(session, caller, report, "report.delete")
    await session.delete(report)
    await session.flush()


async def record_export(session: AsyncSession, *, caller: Caller, report: Report,
                        file_format: str) -> None:
    """Exported data leaves the platform: say who took which report, in which format."""
    await _record(session, caller, report, "report.export", format=file_format)


# ---- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]
    generated_at: datetime
    tenant: str
    report: str | None
    rollup: str
    min_group_size: int
    truncated: bool


def _check_personal(caller: Caller, tenant: Tenant, plan: Plan) -> None:
    personal = plan.personal
    if personal and not set(LEVEL_PERMISSION.values()) <= caller.permissions_at(tenant.path):
        raise Problem(403, "personal-data-report", "Báo cáo dùng dữ liệu cá nhân",
                      "The report uses personal data",
                      detail=f"The report filters, groups or counts by personal data "
                      f"({', '.join(personal)}); running it needs personal_data:basic and "
                      "personal_data:sensitive.")


async def run(session: AsyncSession, *, caller: Caller, tenant: Tenant, definition: Any,
              rollup: str | None = None, report: str | None = None) -> Result:
    """Run a definition (saved or not) over ``tenant`` and every unit below it."""
    if rollup is not None and isinstance(definition, dict):
        definition = {**definition, "rollup": rollup}
    plan = await checked(session, tenant, definition)
    _check_personal(caller, tenant, plan)
    await plan_for_each_execution(session)
    rows = (await session.execute(_statement(plan, tenant, on_postgresql(session)))).all()
    return Result(columns=plan.columns,
                  rows=[_row(plan, row) for row in rows[:plan.limit]],
                  generated_at=utcnow(), tenant=tenant.code, report=report, rollup=plan.rollup,
                  min_group_size=plan.min_group_size, truncated=len(rows) > plan.limit)


def _row(plan: Plan, row: Any) -> list[Any]:
    """Plain JSON values: PostgreSQL's NUMERIC arrives as Decimal, SQLite's as int or float."""
    values = list(row)
    start = len(plan.groups)
    for index, aggregate in enumerate(plan.aggregates, start):
        if aggregate.fn == "avg" and values[index] is not None:
            values[index] = float(values[index])
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# ---- compiling ---------------------------------------------------------------------------

_COMPARISONS = {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
                "lte": operator.le}


def _json_type(path: tuple[str, ...], pg: bool) -> ColumnElement[Any]:
    """The JSON type of the value at ``path`` (NULL when absent), in the backend's names."""
    if pg:
        return func.jsonb_typeof(Submission.data[path])
    # SQLite's JSON path syntax; the names were checked against the field pattern.
    return func.json_type(Submission.data, literal("$" + "".join(f'."{p}"' for p in path)))


def _typed(path: tuple[str, ...], kind: Kind, pg: bool) -> ColumnElement[Any]:
    """The value at ``path`` as a SQL value of ``kind``, NULL when it is absent or of another
    JSON type. Numbers are exact NUMERIC, handed back as the driver gives them."""
    element = Submission.data[path]
    text: ColumnElement[Any] = element.as_string()
    if kind is Kind.ANY or kind is Kind.STRUCTURE:
        return text
    value: ColumnElement[Any] = text
    if kind is Kind.NUMBER:
        value = type_coerce(cast(text, Numeric()), NullType())
    elif kind is Kind.BOOLEAN:
        value = element.as_boolean()
    sqlite_names, pg_names = _JSON_TYPES[kind]
    return case((_json_type(path, pg).in_(pg_names if pg else sqlite_names), value))


def _month(pg: bool) -> ColumnElement[str]:
    if pg:
        return func.to_char(func.timezone(REPORT_TIMEZONE, Submission.created_at), "YYYY-MM")
    return func.strftime("%Y-%m", Submission.created_at, _SQLITE_OFFSET)


def _number(value: Any) -> Any:
    return literal(value, Numeric()) if definitions.value_kind(value) is Kind.NUMBER else value


def _condition(item: Filter, pg: bool) -> ColumnElement[bool]:
    path = item.field.path
    if item.op == "exists":
        present = _json_type(path, pg).is_not(None)
        return present if item.value else not_(present)
    values = item.value if item.op == "in" else [item.value]
    by_kind: dict[Kind, list[Any]] = {}
    for value in values:
        by_kind.setdefault(definitions.value_kind(value), []).append(value)
    if item.op == "in":
        return or_(*(_typed(path, kind, pg).in_([_number(v) for v in group])
                     for kind, group in by_kind.items()))
    kind, (value,) = next(iter(by_kind.items()))
    typed, bound = _typed(path, kind, pg), _number(value)
    if item.op == "ne":
        return typed.is_distinct_from(bound)
    condition: ColumnElement[bool] = _COMPARISONS[item.op](typed, bound)
    return condition


def _group_value(group: Field | str, plan: Plan, tenant: Tenant,
                 pg: bool) -> ColumnElement[Any]:
    if group == TENANT:
        if plan.rollup == "children":
            # The running tenant's own path for its own rows, else its child's on the path.
            return func.substr(Tenant.path, 1, len(tenant.path) + _ID_LENGTH + 1)
        return Tenant.code.expression
    if group == MONTH:
        return _month(pg)
    assert isinstance(group, Field)
    return _typed(group.path, group.kind, pg)


def _aggregate(fn: str, value: Any) -> ColumnElement[Any]:
    if fn == "count":
        return func.count() if value is None else func.count(value)
    if fn == "distinct":
        return func.count(distinct(value))
    aggregated: ColumnElement[Any] = getattr(func, fn)(value)  # sum, avg, min or max
    return aggregated


def _statement(plan: Plan, tenant: Tenant, pg: bool) -> Select[Any]:
    """One SELECT: the inner query extracts the values of the matching submissions, the
    outer one groups and aggregates them (grouping by the inner query's columns keeps the
    JSON paths' bound parameters out of GROUP BY, which PostgreSQL could not match)."""
    columns = [_group_value(g, plan, tenant, pg).label(f"g{i}")
               for i, g in enumerate(plan.groups)]
    for j, aggregate in enumerate(plan.aggregates):
        if aggregate.field is not None:
            kind = Kind.NUMBER if aggregate.fn in NUMERIC_FUNCTIONS else aggregate.field.kind
            columns.append(_typed(aggregate.field.path, kind, pg).label(f"v{j}"))
    inner = select(*columns, Submission.id).select_from(Submission)
    if TENANT in plan.groups:
        inner = inner.join(Tenant, Tenant.id == Submission.tenant_id)
    inner = inner.where(in_subtree(tenant), Submission.form_key == plan.form,
                        *(_condition(f, pg) for f in plan.filters))
    if plan.status != "any":
        inner = inner.where(Submission.status == plan.status)
    counted = inner.subquery("counted")

    groups: list[ColumnElement[Any]] = [counted.c[f"g{i}"] for i in range(len(plan.groups))]
    aggregates = [_aggregate(a.fn, counted.c[f"v{j}"] if a.field is not None else None)
                  for j, a in enumerate(plan.aggregates)]
    statement = select(*(g.label(f"g{i}") for i, g in enumerate(groups)),
                       *(a.label(f"a{j}") for j, a in enumerate(aggregates))
                       ).select_from(counted)
    if groups:
        statement = statement.group_by(*groups)
    if plan.min_group_size > 1:
        statement = statement.having(func.count() >= plan.min_group_size)
    if plan.rollup == "children":
        # Name each unit only once its rows are counted: one lookup per group, not per row.
        grouped = statement.subquery("grouped")
        unit = plan.groups.index(TENANT)
        named: list[ColumnElement[Any]] = [
            Tenant.code.expression if i == unit else grouped.c[f"g{i}"]
            for i in range(len(plan.groups))]
        statement = select(*(g.label(f"g{i}") for i, g in enumerate(named)),
                           *(grouped.c[f"a{j}"] for j in range(len(plan.aggregates)))
                           ).select_from(grouped.outerjoin(
                               Tenant, Tenant.path == grouped.c[f"g{unit}"]))
        groups = named
    if groups:
        statement = statement.order_by(*(g.asc().nulls_last() for g in groups))
    return statement.limit(plan.limit + 1)
