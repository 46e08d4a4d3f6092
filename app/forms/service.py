"""The form lifecycle: drafts, numbered immutable versions, publication and deprecation, and
the inheritance of forms down the tenant tree.

A tenant *uses* the nearest form with a given key on its lineage (itself, then its parent,
and so on up). Defining a key that an ancestor already defines makes a *variant*: when it is
published it must extend the ancestor's current version without removing or loosening
anything (:mod:`app.forms.variants`); when the ancestor publishes again, its variants are
flagged for review. Every read goes to the database, so a publication is in effect on every
replica at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jsonpatch
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, conflict, not_found
from app.forms import definitions
from app.forms.models import Form, FormVersion, VersionStatus
from app.forms.validators import digest
from app.forms.variants import check_variant
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage


def field_problem(status: int, code: str, title_vi: str, title_en: str, detail: str,
                  errors: list[definitions.FieldError]) -> Problem:
    return Problem(status, code, title_vi, title_en, detail=detail,
                   errors=[e.as_dict() for e in errors])


def checked(definition: Any) -> dict[str, Any]:
    try:
        return definitions.check(definition)
    except definitions.DefinitionError as exc:
        raise field_problem(422, "invalid-form", "Định nghĩa biểu mẫu không hợp lệ",
                            "Invalid form definition",
                            "The form definition has problems; see errors.",
                            exc.errors) from None


def version_immutable(version: FormVersion) -> Problem:
    return Problem(409, "version-immutable", "Phiên bản đã ban hành không thể sửa",
                   "Published versions cannot change",
                   detail=f"Version {version.number} is {version.status}; published versions "
                   "never change. Create a new draft with POST .../versions and publish it.")


# ---- finding forms -----------------------------------------------------------------------


async def lineage_forms(session: AsyncSession, tenant: Tenant, key: str) -> list[Form]:
    """The forms with ``key`` on the tenant's lineage, nearest first."""
    lineage = path_ids(tenant.path)
    rows = (await session.execute(
        select(Form).where(Form.key == key, Form.tenant_id.in_(lineage))
    )).scalars().all()
    return sorted(rows, key=lambda f: -lineage.index(f.tenant_id))


async def resolve(session: AsyncSession, tenant: Tenant, key: str) -> Form:
    """The form ``key`` means at ``tenant``: its own, else the nearest ancestor's."""
    forms = await lineage_forms(session, tenant, key)
    if not forms:
        raise not_found("form", key)
    return forms[0]


async def own(session: AsyncSession, tenant: Tenant, key: str, *, lock: bool = False) -> Form:
    """The form ``key`` defined at ``tenant`` itself, for changing it."""
    statement = select(Form).where(Form.tenant_id == tenant.id, Form.key == key)
    if lock:
        statement = statement.with_for_update()
    form = (await session.execute(statement)).scalar_one_or_none()
    if form is not None:
        return form
    if await lineage_forms(session, tenant, key):
        raise Problem(403, "inherited-read-only", "Định nghĩa kế thừa", "Inherited definition",
                      detail=f"The form '{key}' is defined above '{tenant.code}'. Create a "
                      "variant here with POST .../forms and the same key.")
    raise not_found("form", key)


async def versions(session: AsyncSession, form: Form, tenant: Tenant) -> list[FormVersion]:
    """A form's versions, newest first. An ancestor's drafts are its own business."""
    statement = select(FormVersion).where(FormVersion.tenant_id == form.tenant_id,
                                          FormVersion.form_id == form.id)
    if form.tenant_id != tenant.id:
        statement = statement.where(FormVersion.status != VersionStatus.DRAFT.value)
    rows = (await session.execute(statement.order_by(FormVersion.number.desc()))).scalars()
    return list(rows)


async def version(session: AsyncSession, form: Form, tenant: Tenant, number: int,
                  *, lock: bool = False) -> FormVersion:
    statement = select(FormVersion).where(FormVersion.tenant_id == form.tenant_id,
                                          FormVersion.form_id == form.id,
                                          FormVersion.number == number)
    if lock:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).scalar_one_or_none()
    if found is None or (found.status == VersionStatus.DRAFT.value
                         and form.tenant_id != tenant.id):
        raise not_found("form-version", f"{form.key}/{number}")
    return found


async def draft_of(session: AsyncSession, form: Form) -> FormVersion | None:
    return (await session.execute(select(FormVersion).where(
        FormVersion.tenant_id == form.tenant_id, FormVersion.form_id == form.id,
        FormVersion.status == VersionStatus.DRAFT.value))).scalar_one_or_none()


async def current(session: AsyncSession, form: Form) -> FormVersion | None:
    """The form's latest published or deprecated version (None while only a draft)."""
    if not form.latest_version:
        return None
    return (await session.execute(select(FormVersion).where(
        FormVersion.tenant_id == form.tenant_id, FormVersion.form_id == form.id,
        FormVersion.number == form.latest_version))).scalar_one()


async def version_to_check(session: AsyncSession, form: Form, tenant: Tenant,
                           number: int | None) -> FormVersion:
    """What a dry run checks against: ``number``, else the tenant's own draft of the form,
    else its current version."""
    if number is not None:
        return await version(session, form, tenant, number)
    own_draft = await draft_of(session, form) if form.tenant_id == tenant.id else None
    chosen = own_draft or await current(session, form)
    if chosen is None:
        raise Problem(409, "form-not-published", "Biểu mẫu chưa ban hành", "Form not published",
                      detail=f"Form '{form.key}' has no version to use.")
    return chosen


async def usable_version(session: AsyncSession, tenant: Tenant, key: str,
                         number: int | None, pointer: str = "/version") -> FormVersion:
    """The version a new submission at ``tenant`` is made with: ``number`` if given (it must
    be published), else the current version of the nearest form that has been published."""
    forms = [f for f in await lineage_forms(session, tenant, key) if f.latest_version]
    if not forms:
        raise not_found("form", key)
    form = forms[0]
    if number is None:
        chosen = await current(session, form)
        assert chosen is not None
    else:
        chosen = await version(session, form, tenant, number)
    if chosen.status != VersionStatus.PUBLISHED.value:
        raise Problem(422, "form-version-unusable", "Phiên bản biểu mẫu không dùng được",
                      "Form version not usable",
                      detail=f"Version {chosen.number} of form '{key}' is {chosen.status}; "
                      "only published versions take submissions.",
                      errors=[{"pointer": pointer, "detail": f"version {chosen.number} is "
                               f"{chosen.status}"}])
    return chosen


# ---- changing forms ----------------------------------------------------------------------


def _check_key(definition: dict[str, Any], key: str) -> None:
    if definition["key"] != key:
        raise Problem(422, "key-mismatch", "Mã biểu mẫu không khớp", "Form key mismatch",
                      detail=f"The definition's key must stay '{key}'.",
                      errors=[{"pointer": "/key", "detail": f"must be '{key}'"}])


def _new_version(form: Form, number: int, definition: dict[str, Any],
                 caller: Caller) -> FormVersion:
    now = utcnow()
    return FormVersion(tenant_id=form.tenant_id, form_id=form.id, number=number,
                       status=VersionStatus.DRAFT.value, definition=definition,
                       digest=digest(definition), created_by=caller.actor, created_at=now,
                       updated_at=now)


async def _record(session: AsyncSession, caller: Caller, form: Form, action: str,
                  version: FormVersion, **extra: Any) -> None:
    await audit.record(session, tenant_id=form.tenant_id, actor=caller.actor, action=action,
                       resource_type="form", resource_id=f"{form.key}/{version.number}",
                       after={"key": form.key, "version": version.number,
                              "status": version.status, "digest": version.digest, **extra})


async def create(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 definition: Any) -> tuple[Form, FormVersion]:
    """A new form at ``tenant`` with version 1 as its draft. Reusing an ancestor's key makes
    a variant of the ancestor's form."""
    document = checked(definition)
    await lock_active_lineage(session, tenant)
    key = document["key"]
    if (await session.execute(select(Form.id).where(Form.tenant_id == tenant.id,
                                                    Form.key == key))).first():
        raise conflict("form-exists", f"'{tenant.code}' already defines a form '{key}'; "
                       "change it with a new draft (POST .../forms/{key}/versions).")
    now = utcnow()
    form = Form(tenant_id=tenant.id, id=uuid.uuid4(), key=key, latest_version=0,
                needs_review=False, created_at=now, updated_at=now)
    draft = _new_version(form, 1, document, caller)
    session.add_all([form, draft])
    await session.flush()
    await _record(session, caller, form, "form.create", draft)
    return form, draft


async def new_draft(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                    definition: Any | None) -> FormVersion:
    """The next version number as a draft: ``definition``, or a copy of the current one."""
    await lock_active_lineage(session, tenant)
    form = await own(session, tenant, key, lock=True)
    existing = await draft_of(session, form)
    if existing is not None:
        raise conflict("draft-exists", f"Form '{key}' already has a draft (version "
                       f"{existing.number}); change it with PUT or discard it with DELETE.")
    if definition is None:
        latest = await current(session, form)
        assert latest is not None  # a form without a draft has been published
        document = latest.definition
    else:
        document = checked(definition)
        _check_key(document, key)
    number = (await session.execute(select(func.max(FormVersion.number)).where(
        FormVersion.tenant_id == form.tenant_id, FormVersion.form_id == form.id))).scalar_one()
    draft = _new_version(form, (number or 0) + 1, document, caller)
    session.add(draft)
    await session.flush()
    await _record(session, caller, form, "form.draft", draft)
    return draft


async def _own_draft(session: AsyncSession, tenant: Tenant, key: str,
                     number: int) -> tuple[Form, FormVersion]:
    await lock_active_lineage(session, tenant)
    form = await own(session, tenant, key, lock=True)
    found = await version(session, form, tenant, number, lock=True)
    if found.status != VersionStatus.DRAFT.value:
        raise version_immutable(found)
    return form, found


async def update_draft(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                       number: int, definition: Any) -> FormVersion:
    form, draft = await _own_draft(session, tenant, key, number)
    document = checked(definition)
    _check_key(document, key)
    draft.definition, draft.digest, draft.updated_at = document, digest(document), utcnow()
    await session.flush()
    await _record(session, caller, form, "form.draft", draft)
    return draft


async def discard_draft(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                        number: int) -> None:
    form, draft = await _own_draft(session, tenant, key, number)
    await _record(session, caller, form, "form.discard", draft)
    await session.delete(draft)
    if not form.latest_version:
        await session.flush()
        await session.delete(form)
    await session.flush()


@dataclass(frozen=True)
class ParentForm:
    form: Form
    version: FormVersion
    tenant_code: str


async def base_of(session: AsyncSession, tenant: Tenant, key: str) -> ParentForm | None:
    """The ancestor form a variant at ``tenant`` must extend: the nearest one above it that
    has a current published version."""
    for form in (await lineage_forms(session, tenant, key)):
        if form.tenant_id == tenant.id or not form.latest_version:
            continue
        latest = await current(session, form)
        if latest is not None and latest.status == VersionStatus.PUBLISHED.value:
            codes = await tenant_codes(session, {form.tenant_id})
            return ParentForm(form, latest, codes.get(form.tenant_id, "an ancestor"))
    return None


async def publish(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                  number: int) -> tuple[FormVersion, int]:
    """Publish a draft. Returns the version and how many variants below were flagged."""
    form, draft = await _own_draft(session, tenant, key, number)
    document = checked(draft.definition)
    base = await base_of(session, tenant, key)
    if base is not None:
        violations = check_variant(base.version.definition, document)
        if violations:
            raise field_problem(
                422, "variant-not-narrowing", "Biến thể nới lỏng biểu mẫu gốc",
                "Variant loosens its parent form",
                f"This form is a variant of '{key}' version {base.version.number} defined at "
                f"'{base.tenant_code}'. A variant may add fields, narrow options and change "
                "labels, but may not remove or loosen what the parent requires; see errors.",
                violations)
    now = utcnow()
    draft.status, draft.published_at, draft.published_by = (
        VersionStatus.PUBLISHED.value, now, caller.actor)
    form.latest_version, form.updated_at = number, now
    form.base_tenant_id = base.form.tenant_id if base else None
    form.base_version = base.version.number if base else None
    form.needs_review, form.review_reason = False, None
    await session.flush()
    flagged = await _flag_variants(session, tenant, form, number)
    await _record(session, caller, form, "form.publish", draft, variants_flagged=flagged,
                  base_version=form.base_version)
    return draft, flagged


async def _flag_variants(session: AsyncSession, tenant: Tenant, form: Form, number: int) -> int:
    """Flag the published variants below whose parent this form is (or would be, for a
    descendant that defined the key before this tenant did)."""
    below = select(Tenant.id).where(Tenant.path.startswith(tenant.path),
                                    Tenant.id != tenant.id)
    result = await session.execute(
        update(Form)
        .where(Form.key == form.key, Form.tenant_id.in_(below), Form.latest_version > 0,
               (Form.base_tenant_id == tenant.id) | Form.base_tenant_id.is_(None))
        .values(needs_review=True, updated_at=utcnow(),
                review_reason=f"The parent form published version {number}; check this "
                "variant against it and publish a new version.")
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def deprecate(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                    number: int) -> FormVersion:
    await lock_active_lineage(session, tenant)
    form = await own(session, tenant, key, lock=True)
    found = await version(session, form, tenant, number, lock=True)
    if found.status != VersionStatus.PUBLISHED.value:
        raise conflict("not-published", f"Version {number} is {found.status}; only a "
                       "published version can be deprecated.")
    found.status, found.deprecated_at = VersionStatus.DEPRECATED.value, utcnow()
    form.updated_at = utcnow()
    await session.flush()
    await _record(session, caller, form, "form.deprecate", found)
    return found


# ---- listing and comparing ---------------------------------------------------------------


async def usable_at(session: AsyncSession, tenant: Tenant, *, after: str | None,
                    limit: int) -> list[Form]:
    """Forms usable at ``tenant`` (its own and its ancestors', nearest per key), by key."""
    lineage = path_ids(tenant.path)
    statement = select(Form).where(Form.tenant_id.in_(lineage))
    if after is not None:
        statement = statement.where(Form.key > after)
    rows = (await session.execute(statement)).scalars().all()
    nearest: dict[str, Form] = {}
    for form in sorted(rows, key=lambda f: lineage.index(f.tenant_id)):
        if form.tenant_id == tenant.id or form.latest_version:
            nearest[form.key] = form
    return [nearest[k] for k in sorted(nearest)][:limit]


async def tenant_codes(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Codes of the tenants among ``ids`` that the caller can see (not those above it)."""
    rows = await session.execute(select(Tenant.id, Tenant.code).where(Tenant.id.in_(ids)))
    return {row.id: row.code for row in rows}


def _fields(definition: dict[str, Any]) -> dict[str, Any]:
    properties = definition["schema"].get("properties", {})
    return properties if isinstance(properties, dict) else {}


def diff(a: FormVersion, b: FormVersion) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: an RFC 6902 JSON Patch, and a summary by field."""
    before, after = _fields(a.definition), _fields(b.definition)
    required_a = set(a.definition["schema"].get("required", []))
    required_b = set(b.definition["schema"].get("required", []))
    ui_a = a.definition["ui_schema"]["fields"]
    ui_b = b.definition["ui_schema"]["fields"]
    return {
        "from": a.number,
        "to": b.number,
        "same": a.digest == b.digest,
        "fields": {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(n for n in set(before) & set(after)
                              if before[n] != after[n] or ui_a.get(n) != ui_b.get(n)),
            "now_required": sorted(required_b - required_a),
            "no_longer_required": sorted(required_a - required_b),
        },
        "patch": jsonpatch.make_patch(a.definition, b.definition).patch,
    }

