"""Submissions: data made with one pinned form version, validated on the server, listed and
searched within the caller's tenants, and masked where it is personal data.

A submission is created as a ``draft`` (kept as sent, checked only for shape) or
``submitted`` (validated in full; a 422 lists every error). Drafts can be changed, submitted
or deleted; a submitted submission never changes.

Personal data (fields a form marks ``basic`` or ``sensitive``) is masked for callers without
``personal_data:basic`` / ``personal_data:sensitive`` at the submission's tenant, and never
enters ``search_text``, the audit trail or a log line.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import on_postgresql, plan_for_each_execution, utcnow
from app.core.problems import Problem, not_found
from app.forms import definitions, validators
from app.forms.models import Attachment, FormVersion, Submission, SubmissionStatus
from app.forms.service import field_problem, resolve, usable_version, versions
from app.identity.callers import Caller
from app.identity.permissions import Permission
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

MAX_DEPTH = 32
MASK = "***"
LEVEL_PERMISSION = {"basic": Permission.PERSONAL_DATA_BASIC,
                    "sensitive": Permission.PERSONAL_DATA_SENSITIVE}
_SEARCH_LIMIT = 8000


def field_errors(version: FormVersion, data: Any) -> list[definitions.FieldError]:
    """Every problem with ``data`` for this version: the compiled hot-path validator decides,
    and only invalid data pays for the reference's full list of errors."""
    return definition_errors(version.definition, data, key=version.digest)


def definition_errors(definition: dict[str, Any], data: Any, *,
                      key: str | None = None) -> list[definitions.FieldError]:
    """:func:`field_errors` for a checked definition: a stored version's (``key``, its digest)
    from the cache of compiled forms, an unsaved one's (no ``key``) compiled for this call."""
    form = validators.compiled(definition, key=key) if key else validators.uncached(definition)
    return [] if form.is_valid(data) else form.errors(data)


def validation_errors(version: FormVersion, data: Any) -> list[definitions.FieldError]:
    """:func:`field_errors`, with pointers into the request body (``/data/...``)."""
    return [definitions.FieldError("/data" + e.pointer, e.vi, e.en, e.keyword)
            for e in field_errors(version, data)]


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def check_shape(data: Any) -> None:
    if not isinstance(data, dict):
        raise Problem(422, "invalid-submission", "Dữ liệu không hợp lệ", "Invalid submission",
                      detail="The data of a submission is a JSON object.",
                      errors=[{"pointer": "/data", "detail": "must be an object",
                               "detail_vi": "Dữ liệu phải là một đối tượng JSON."}])
    if too_deep(data):
        raise Problem(422, "too-deep", "Dữ liệu lồng nhau quá sâu", "Data nested too deeply",
                      detail=f"Submission data may nest at most {MAX_DEPTH} levels.",
                      errors=[{"pointer": "/data", "detail": f"nested deeper than {MAX_DEPTH}",
                               "detail_vi": f"Lồng nhau quá {MAX_DEPTH} cấp."}])


# ---- personal data -----------------------------------------------------------------------


def personal_fields(definition: dict[str, Any]) -> dict[str, str]:
    """Top-level field name → ``basic`` or ``sensitive``, for the fields marked as such."""
    return {name: field["personal_data"]
            for name, field in definition["ui_schema"]["fields"].items()
            if field.get("personal_data") in LEVEL_PERMISSION}


@dataclass(frozen=True)
class Masked:
    data: dict[str, Any]
    masked_fields: list[str]


def mask(definition: dict[str, Any], data: dict[str, Any],
         held: frozenset[Permission]) -> Masked:
    hidden = sorted(name for name, level in personal_fields(definition).items()
                    if name in data and LEVEL_PERMISSION[level] not in held)
    if not hidden:
        return Masked(data, [])
    return Masked({k: MASK if k in hidden else v for k, v in data.items()}, hidden)


# ---- search ------------------------------------------------------------------------------

_WORD = re.compile(r"[0-9a-z]+")


def normalise(text: str) -> str:
    """Lower case, without Vietnamese diacritics: 'Đồng Nai' → 'dong nai'."""
    stripped = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in stripped if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def search_text(definition: dict[str, Any], data: dict[str, Any]) -> str:
    """The distinct words of the values of every field that is not personal data."""
    personal = personal_fields(definition)
    seen: dict[str, None] = {}
    stack: list[Any] = [v for k, v in data.items() if k not in personal]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
            seen.update(dict.fromkeys(words(str(node))))
    return " ".join(seen)[:_SEARCH_LIMIT]


def _matches(session: AsyncSession, query: str) -> ColumnElement[bool] | None:
    terms = words(query)[:8]
    if not terms:
        return None
    if on_postgresql(session):
        tsquery = " & ".join(f"{t}:*" for t in terms)
        return func.to_tsvector("simple", Submission.search_text).op("@@")(
            func.to_tsquery("simple", tsquery))
    padded = " " + Submission.search_text
    return and_(*(padded.like(f"% {t}%") for t in terms))


# ---- creating and changing ---------------------------------------------------------------


async def create(session: AsyncSession, *, caller: Caller, tenant: Tenant, form_key: str,
                 version_number: int | None, data: Any,
                 status: SubmissionStatus) -> tuple[Submission, FormVersion]:
    await lock_active_lineage(session, tenant)
    version = await usable_version(session, tenant, form_key, version_number)
    check_shape(data)
    now = utcnow()
    if status is SubmissionStatus.SUBMITTED:
        _validate(version, data)
    submission = Submission(
        tenant_id=tenant.id, id=uuid.uuid4(), form_key=form_key,
        form_tenant_id=version.tenant_id, form_id=version.form_id,
        form_version=version.number, status=status.value, data=data,
        search_text=search_text(version.definition, data), created_by=caller.actor,
        created_at=now, updated_at=now,
        submitted_at=now if status is SubmissionStatus.SUBMITTED else None)
    session.add(submission)
    await session.flush()
    await _record(session, caller, submission, "submission.create")
    return submission, version


def _validate(version: FormVersion, data: Any) -> None:
    errors = validation_errors(version, data)
    if errors:
        raise field_problem(422, "invalid-submission", "Dữ liệu biểu mẫu không hợp lệ",
                            "Invalid submission",
                            f"{len(errors)} problem(s) with the data for form "
                            f"'{version.definition['key']}' version {version.number}.",
                            errors)


async def _record(session: AsyncSession, caller: Caller, submission: Submission,
                  action: str) -> None:
    """Audit who did what to which submission, never the data itself."""
    await audit.record(session, tenant_id=submission.tenant_id, actor=caller.actor,
                       action=action, resource_type="submission",
                       resource_id=str(submission.id),
                       after={"form": submission.form_key, "version": submission.form_version,
                              "status": submission.status})


def _with_version() -> Any:
    """Submissions with the form version they pin and the tenant they belong to."""
    return (select(Submission, FormVersion, Tenant)
            .join(FormVersion, and_(FormVersion.tenant_id == Submission.form_tenant_id,
                                    FormVersion.form_id == Submission.form_id,
                                    FormVersion.number == Submission.form_version))
            .join(Tenant, Tenant.id == Submission.tenant_id))


def in_subtree(tenant: Tenant) -> ColumnElement[bool]:
    return Submission.tenant_id.in_(select(Tenant.id).where(Tenant.path.startswith(tenant.path)))


async def get(session: AsyncSession, tenant: Tenant, submission_id: uuid.UUID,
              *, lock: bool = False) -> tuple[Submission, FormVersion, Tenant]:
    """A submission at ``tenant`` or below it, with its form version and its tenant."""
    statement = _with_version().where(Submission.id == submission_id, in_subtree(tenant))
    if lock:
        statement = statement.with_for_update(of=Submission)
    row = (await session.execute(statement)).first()
    if row is None:
        raise not_found("submission", str(submission_id))
    return row[0], row[1], row[2]


def _not_draft(submission: Submission) -> Problem:
    return Problem(409, "submission-final", "Hồ sơ đã nộp không thể sửa",
                   "Submitted data cannot change",
                   detail=f"Submission {submission.id} was submitted at "
                   f"{submission.submitted_at}; only drafts can change or be deleted.")


async def update_draft(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                       submission_id: uuid.UUID, data: Any | None,
                       status: SubmissionStatus | None
                       ) -> tuple[Submission, FormVersion, Tenant]:
    """Change a draft's data and/or submit it (validated in full against its pinned version)."""
    submission, version, owner = await get(session, tenant, submission_id, lock=True)
    if submission.status != SubmissionStatus.DRAFT.value:
        raise _not_draft(submission)
    await lock_active_lineage(session, owner)
    new_data = submission.data if data is None else data
    check_shape(new_data)
    now = utcnow()
    if status is SubmissionStatus.SUBMITTED:
        if version.status != "published":
            raise Problem(409, "form-version-unusable", "Phiên bản biểu mẫu không dùng được",
                          "Form version not usable",
                          detail=f"Version {version.number} of form '{submission.form_key}' "
                          f"is {version.status}; start a new submission.")
        _validate(version, new_data)
        submission.status, submission.submitted_at = status.value, now
    submission.data = new_data
    submission.search_text = search_text(version.definition, new_data)
    submission.updated_at = now
    await session.flush()
    await _record(session, caller, submission, "submission.update")
    return submission, version, owner


async def delete_draft(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                       submission_id: uuid.UUID) -> list[str]:
    """Delete a draft and its attachment rows; returns the storage keys of its files, for the
    caller to delete once the transaction has committed."""
    submission, _version, owner = await get(session, tenant, submission_id, lock=True)
    if submission.status != SubmissionStatus.DRAFT.value:
        raise _not_draft(submission)
    await lock_active_lineage(session, owner)
    keys = list((await session.execute(select(Attachment.storage_key).where(
        Attachment.tenant_id == submission.tenant_id,
        Attachment.submission_id == submission.id))).scalars())
    await session.execute(delete(Attachment).where(
        Attachment.tenant_id == submission.tenant_id, Attachment.submission_id == submission.id))
    await _record(session, caller, submission, "submission.delete")
    await session.delete(submission)
    await session.flush()
    return keys


# ---- listing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    form: str | None = None
    status: SubmissionStatus | None = None
    query: str | None = None
    fields: tuple[tuple[str, str], ...] = ()
    # Only at the tenant itself rather than its whole subtree.
    here_only: bool = False


async def check_field_filters(session: AsyncSession, caller: Caller, tenant: Tenant,
                              form_key: str | None, paths: list[str]) -> None:
    """Field filters name fields of one form. Filtering by a personal-data field would tell
    a caller who may not see it which submissions hold a value, so it needs both personal-
    data permissions."""
    if form_key is None:
        raise Problem(422, "invalid-filter", "Bộ lọc không hợp lệ", "Invalid filter",
                      detail="Filtering by field values needs the form: add form=<key>.",
                      errors=[{"parameter": "form", "in": "query", "detail": "required "
                               "with data.* filters"}])
    form = await resolve(session, tenant, form_key)
    declared: set[str] = set()
    personal: set[str] = set()
    for version in await versions(session, form, tenant):
        declared |= set(version.definition["schema"].get("properties", {}))
        personal |= set(personal_fields(version.definition))
    held = caller.permissions_at(tenant.path)
    for path in paths:
        name = path.split(".")[0]
        if name not in declared:
            raise Problem(422, "invalid-filter", "Bộ lọc không hợp lệ", "Invalid filter",
                          detail=f"Form '{form_key}' has no field '{name}'.",
                          errors=[{"parameter": f"data.{path}", "in": "query",
                                   "detail": "no such field"}])
        if name in personal and not set(LEVEL_PERMISSION.values()) <= held:
            raise Problem(403, "personal-data-filter", "Không được lọc theo dữ liệu cá nhân",
                          "Filtering by personal data is not allowed",
                          detail=f"'{name}' is personal data; filtering by it needs "
                          "personal_data:basic and personal_data:sensitive.")


def _field_condition(path: str, value: str) -> ColumnElement[bool]:
    """``data.<a>.<b>=value``: a string equal to ``value``, or a number/boolean that reads
    as ``value``."""
    parts = tuple(path.split("."))
    element = Submission.data[parts]
    conditions = [element.as_string() == value]
    if value in ("true", "false"):
        conditions.append(element.as_boolean() == (value == "true"))
    else:
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            conditions.append(element.as_float().cast(Float) == number)
    return or_(*conditions)


def _filtered(statement: Any, session: AsyncSession, tenant: Tenant, filters: Filters) -> Any:
    statement = statement.where(Submission.tenant_id == tenant.id if filters.here_only
                                else in_subtree(tenant))
    if filters.form is not None:
        statement = statement.where(Submission.form_key == filters.form)
    if filters.status is not None:
        statement = statement.where(Submission.status == filters.status.value)
    for path, value in filters.fields:
        statement = statement.where(_field_condition(path, value))
    if filters.query:
        matches = _matches(session, filters.query)
        if matches is not None:
            statement = statement.where(matches)
    return statement


async def list_page(session: AsyncSession, tenant: Tenant, filters: Filters, *,
                    after: tuple[datetime, uuid.UUID] | None,
                    limit: int) -> list[tuple[Submission, FormVersion, Tenant]]:
    """Newest first, keyset-paginated on (created_at, id). The statement reads the same at
    every tenant, so it is planned for its own subtree each time."""
    await plan_for_each_execution(session)
    statement = _filtered(_with_version(), session, tenant, filters)
    if after is not None:
        created, last_id = after
        statement = statement.where(or_(Submission.created_at < created,
                                        and_(Submission.created_at == created,
                                             Submission.id < last_id)))
    statement = statement.order_by(Submission.created_at.desc(), Submission.id.desc())
    return [(r[0], r[1], r[2]) for r in (await session.execute(statement.limit(limit)))]


async def count(session: AsyncSession, tenant: Tenant, filters: Filters) -> int:
    statement = _filtered(select(func.count()).select_from(Submission), session, tenant,
                          filters)
    return int((await session.execute(statement)).scalar_one())
