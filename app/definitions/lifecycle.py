"""The lifecycle every versioned definition shares: drafts, numbered immutable versions,
publication and deprecation, and inheritance down the tenant tree.

A tenant *uses* the nearest definition with a given key on its lineage (itself, then its
parent, and so on up). Defining a key that an ancestor already defines makes a *variant*:
publishing it runs the kind's own variant check against the ancestor's current version, and
when the ancestor publishes again its variants are flagged for review. Every read goes to the
database, so a publication is in effect on every replica at once.

One :class:`Lifecycle` per kind (``form``, ``workflow``) binds these rules to its tables, its
definition check and its words; the kind's service adds what only it knows (for forms, the
variant rules over JSON Schema; for workflows, the checks against roles and forms).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, conflict, not_found
from app.definitions.models import DefinitionHead, DefinitionVersion, VersionStatus
from app.forms.definitions import DefinitionError, FieldError
from app.forms.validators import digest
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

H = TypeVar("H", bound=DefinitionHead)
V = TypeVar("V", bound=DefinitionVersion)


def field_problem(status: int, code: str, title_vi: str, title_en: str, detail: str,
                  errors: list[FieldError]) -> Problem:
    return Problem(status, code, title_vi, title_en, detail=detail,
                   errors=[e.as_dict() for e in errors])


def variant_problem(kind_vi: str, kind_en: str, key: str, parent: Parent[Any, Any],
                    allowed: str, violations: list[FieldError]) -> Problem:
    """422 for a variant that loosens its parent; ``allowed`` says what a variant may do."""
    return field_problem(
        422, "variant-not-narrowing", f"Biến thể nới lỏng {kind_vi} gốc",
        f"Variant loosens its parent {kind_en}",
        f"This {kind_en} is a variant of '{key}' version {parent.version.number} defined at "
        f"'{parent.tenant_code}'. {allowed} See errors.", violations)


@dataclass(frozen=True)
class Words:
    """How a kind is named in problems and audit records."""

    kind: str  # "form": codes (form-exists), audit actions (form.publish), resource types
    en: str  # "form"
    vi: str  # "biểu mẫu"


@dataclass(frozen=True)
class Parent(Generic[H, V]):
    """The ancestor definition a variant must extend."""

    head: H
    version: V
    tenant_code: str


# Checks a draft's document before publication; ``base`` is the parent a variant extends.
PublishCheck = Callable[[AsyncSession, Tenant, dict[str, Any], "Parent[Any, Any] | None"],
                        Awaitable[None]]


async def tenant_codes(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Codes of the tenants among ``ids`` that the caller can see (not those above it)."""
    rows = await session.execute(select(Tenant.id, Tenant.code).where(Tenant.id.in_(ids)))
    return {row.id: row.code for row in rows}


class Lifecycle(Generic[H, V]):
    def __init__(self, *, head: type[H], version: type[V],
                 head_column: InstrumentedAttribute[uuid.UUID], words: Words,
                 check: Callable[[Any], dict[str, Any]]) -> None:
        self.head, self.version_model, self.head_column = head, version, head_column
        self.words, self._check = words, check

    # ---- problems ----------------------------------------------------------------------

    def checked(self, definition: Any) -> dict[str, Any]:
        try:
            return self._check(definition)
        except DefinitionError as exc:
            w = self.words
            raise field_problem(422, f"invalid-{w.kind}", f"Định nghĩa {w.vi} không hợp lệ",
                                f"Invalid {w.en} definition",
                                f"The {w.en} definition has problems; see errors.",
                                exc.errors) from None

    def immutable(self, version: V) -> Problem:
        return Problem(409, "version-immutable", "Phiên bản đã ban hành không thể sửa",
                       "Published versions cannot change",
                       detail=f"Version {version.number} is {version.status}; published "
                       "versions never change. Create a new draft with POST .../versions and "
                       "publish it.")

    # ---- finding -------------------------------------------------------------------------

    def _of(self, head: H) -> Any:
        """The WHERE clause selecting ``head``'s versions."""
        return (self.version_model.tenant_id == head.tenant_id) & (self.head_column == head.id)

    async def lineage(self, session: AsyncSession, tenant: Tenant, key: str) -> list[H]:
        """The definitions with ``key`` on the tenant's lineage, nearest first."""
        lineage = path_ids(tenant.path)
        rows = (await session.execute(
            select(self.head).where(self.head.key == key, self.head.tenant_id.in_(lineage))
        )).scalars().all()
        return sorted(rows, key=lambda h: -lineage.index(h.tenant_id))

    async def resolve(self, session: AsyncSession, tenant: Tenant, key: str) -> H:
        """The definition ``key`` means at ``tenant``: its own, else the nearest ancestor's."""
        found = await self.lineage(session, tenant, key)
        if not found:
            raise not_found(self.words.kind, key)
        return found[0]

    async def own(self, session: AsyncSession, tenant: Tenant, key: str, *,
                  lock: bool = False) -> H:
        """The definition ``key`` at ``tenant`` itself, for changing it."""
        statement = select(self.head).where(self.head.tenant_id == tenant.id,
                                            self.head.key == key)
        if lock:
            statement = statement.with_for_update()
        head = (await session.execute(statement)).scalar_one_or_none()
        if head is not None:
            return head
        if await self.lineage(session, tenant, key):
            raise Problem(403, "inherited-read-only", "Định nghĩa kế thừa",
                          "Inherited definition",
                          detail=f"The {self.words.en} '{key}' is defined above "
                          f"'{tenant.code}'. Create a variant here with POST "
                          f".../{self.words.kind}s and the same key.")
        raise not_found(self.words.kind, key)

    async def versions(self, session: AsyncSession, head: H, tenant: Tenant) -> list[V]:
        """The versions, newest first. An ancestor's drafts are its own business."""
        statement = select(self.version_model).where(self._of(head))
        if head.tenant_id != tenant.id:
            statement = statement.where(
                self.version_model.status != VersionStatus.DRAFT.value)
        return list((await session.execute(
            statement.order_by(self.version_model.number.desc()))).scalars())

    async def version(self, session: AsyncSession, head: H, tenant: Tenant, number: int, *,
                      lock: bool = False) -> V:
        statement = select(self.version_model).where(self._of(head),
                                                     self.version_model.number == number)
        if lock:
            statement = statement.with_for_update()
        found = (await session.execute(statement)).scalar_one_or_none()
        if found is None or (found.status == VersionStatus.DRAFT.value
                             and head.tenant_id != tenant.id):
            raise not_found(f"{self.words.kind}-version", f"{head.key}/{number}")
        return found

    async def draft_of(self, session: AsyncSession, head: H) -> V | None:
        return (await session.execute(select(self.version_model).where(
            self._of(head), self.version_model.status == VersionStatus.DRAFT.value)
        )).scalar_one_or_none()

    async def current(self, session: AsyncSession, head: H) -> V | None:
        """The latest published or deprecated version (None while only a draft)."""
        if not head.latest_version:
            return None
        return (await session.execute(select(self.version_model).where(
            self._of(head), self.version_model.number == head.latest_version))).scalar_one()

    async def version_to_check(self, session: AsyncSession, head: H, tenant: Tenant,
                               number: int | None) -> V:
        """What a dry run uses: ``number``, else the tenant's own draft, else the current
        version."""
        if number is not None:
            return await self.version(session, head, tenant, number)
        own_draft = await self.draft_of(session, head) if head.tenant_id == tenant.id else None
        chosen = own_draft or await self.current(session, head)
        if chosen is None:
            w = self.words
            raise Problem(409, f"{w.kind}-not-published", f"{w.vi.capitalize()} chưa ban hành",
                          f"{w.en.capitalize()} not published",
                          detail=f"{w.en.capitalize()} '{head.key}' has no version to use.")
        return chosen

    async def usable_version(self, session: AsyncSession, tenant: Tenant, key: str,
                             number: int | None, pointer: str = "/version") -> V:
        """The version new work at ``tenant`` uses: ``number`` if given (it must be
        published), else the current version of the nearest definition ever published."""
        heads = [h for h in await self.lineage(session, tenant, key) if h.latest_version]
        if not heads:
            raise not_found(self.words.kind, key)
        head = heads[0]
        if number is None:
            chosen = await self.current(session, head)
            assert chosen is not None
        else:
            chosen = await self.version(session, head, tenant, number)
        if chosen.status != VersionStatus.PUBLISHED.value:
            w = self.words
            raise Problem(422, f"{w.kind}-version-unusable",
                          f"Phiên bản {w.vi} không dùng được", f"{w.en.capitalize()} version "
                          "not usable", detail=f"Version {chosen.number} of {w.en} '{key}' is "
                          f"{chosen.status}; only published versions can be used.",
                          errors=[{"pointer": pointer, "detail": f"version {chosen.number} is "
                                   f"{chosen.status}"}])
        return chosen

    async def usable_at(self, session: AsyncSession, tenant: Tenant, *, after: str | None,
                        limit: int) -> list[H]:
        """Definitions usable at ``tenant`` (its own and its ancestors', nearest per key)."""
        lineage = path_ids(tenant.path)
        statement = select(self.head).where(self.head.tenant_id.in_(lineage))
        if after is not None:
            statement = statement.where(self.head.key > after)
        rows = (await session.execute(statement)).scalars().all()
        nearest: dict[str, H] = {}
        for head in sorted(rows, key=lambda h: lineage.index(h.tenant_id)):
            if head.tenant_id == tenant.id or head.latest_version:
                nearest[head.key] = head
        return [nearest[k] for k in sorted(nearest)][:limit]

    async def parent_of(self, session: AsyncSession, tenant: Tenant,
                        key: str) -> Parent[H, V] | None:
        """The ancestor definition a variant at ``tenant`` must extend: the nearest one above
        it with a current published version."""
        for head in await self.lineage(session, tenant, key):
            if head.tenant_id == tenant.id or not head.latest_version:
                continue
            latest = await self.current(session, head)
            if latest is not None and latest.status == VersionStatus.PUBLISHED.value:
                codes = await tenant_codes(session, {head.tenant_id})
                return Parent(head, latest, codes.get(head.tenant_id, "an ancestor"))
        return None

    # ---- changing --------------------------------------------------------------------------

    def _check_key(self, document: dict[str, Any], key: str) -> None:
        if document["key"] != key:
            w = self.words
            raise Problem(422, "key-mismatch", f"Mã {w.vi} không khớp",
                          f"{w.en.capitalize()} key mismatch",
                          detail=f"The definition's key must stay '{key}'.",
                          errors=[{"pointer": "/key", "detail": f"must be '{key}'"}])

    def _new_version(self, head: H, number: int, document: dict[str, Any],
                     caller: Caller) -> V:
        now = utcnow()
        return self.version_model(**{
            "tenant_id": head.tenant_id, self.head_column.key: head.id, "number": number,
            "status": VersionStatus.DRAFT.value, "definition": document,
            "digest": digest(document), "created_by": caller.actor, "created_at": now,
            "updated_at": now})

    async def _record(self, session: AsyncSession, caller: Caller, head: H, action: str,
                      version: V, **extra: Any) -> None:
        await audit.record(session, tenant_id=head.tenant_id, actor=caller.actor,
                           action=f"{self.words.kind}.{action}", resource_type=self.words.kind,
                           resource_id=f"{head.key}/{version.number}",
                           after={"key": head.key, "version": version.number,
                                  "status": version.status, "digest": version.digest, **extra})

    async def create(self, session: AsyncSession, *, caller: Caller, tenant: Tenant,
                     definition: Any) -> tuple[H, V]:
        """A new definition at ``tenant`` with version 1 as its draft. Reusing an ancestor's
        key makes a variant of the ancestor's definition."""
        document = self.checked(definition)
        await lock_active_lineage(session, tenant)
        key = document["key"]
        if (await session.execute(select(self.head.id).where(
                self.head.tenant_id == tenant.id, self.head.key == key))).first():
            raise conflict(f"{self.words.kind}-exists", f"'{tenant.code}' already defines a "
                           f"{self.words.en} '{key}'; change it with a new draft (POST "
                           f".../{self.words.kind}s/{{key}}/versions).")
        now = utcnow()
        head = self.head(**{"tenant_id": tenant.id, "id": uuid.uuid4(), "key": key,
                            "latest_version": 0, "needs_review": False, "created_at": now,
                            "updated_at": now})
        draft = self._new_version(head, 1, document, caller)
        session.add_all([head, draft])
        await session.flush()
        await self._record(session, caller, head, "create", draft)
        return head, draft

    async def new_draft(self, session: AsyncSession, *, caller: Caller, tenant: Tenant,
                        key: str, definition: Any | None) -> V:
        """The next version number as a draft: ``definition``, or a copy of the current."""
        await lock_active_lineage(session, tenant)
        head = await self.own(session, tenant, key, lock=True)
        existing = await self.draft_of(session, head)
        if existing is not None:
            raise conflict("draft-exists", f"{self.words.en.capitalize()} '{key}' already has "
                           f"a draft (version {existing.number}); change it with PUT or "
                           "discard it with DELETE.")
        if definition is None:
            latest = await self.current(session, head)
            assert latest is not None  # a definition without a draft has been published
            document = latest.definition
        else:
            document = self.checked(definition)
            self._check_key(document, key)
        number = (await session.execute(select(func.max(self.version_model.number)).where(
            self._of(head)))).scalar_one()
        draft = self._new_version(head, (number or 0) + 1, document, caller)
        session.add(draft)
        await session.flush()
        await self._record(session, caller, head, "draft", draft)
        return draft

    async def own_draft(self, session: AsyncSession, tenant: Tenant, key: str,
                        number: int) -> tuple[H, V]:
        await lock_active_lineage(session, tenant)
        head = await self.own(session, tenant, key, lock=True)
        found = await self.version(session, head, tenant, number, lock=True)
        if found.status != VersionStatus.DRAFT.value:
            raise self.immutable(found)
        return head, found

    async def update_draft(self, session: AsyncSession, *, caller: Caller, tenant: Tenant,
                           key: str, number: int, definition: Any) -> V:
        head, draft = await self.own_draft(session, tenant, key, number)
        document = self.checked(definition)
        self._check_key(document, key)
        draft.definition, draft.digest, draft.updated_at = document, digest(document), utcnow()
        await session.flush()
        await self._record(session, caller, head, "draft", draft)
        return draft

    async def discard_draft(self, session: AsyncSession, *, caller: Caller, tenant: Tenant,
                            key: str, number: int) -> None:
        head, draft = await self.own_draft(session, tenant, key, number)
        await self._record(session, caller, head, "discard", draft)
        await session.delete(draft)
        if not head.latest_version:
            await session.flush()
            await session.delete(head)
        await session.flush()

    async def publish(self, session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                      number: int, check: PublishCheck) -> tuple[V, int]:
        """Publish a draft once ``check`` passes. Returns the version and how many variants
        below were flagged for review."""
        head, draft = await self.own_draft(session, tenant, key, number)
        document = self.checked(draft.definition)
        parent = await self.parent_of(session, tenant, key)
        await check(session, tenant, document, parent)
        now = utcnow()
        draft.status, draft.published_at, draft.published_by = (
            VersionStatus.PUBLISHED.value, now, caller.actor)
        head.latest_version, head.updated_at = number, now
        head.base_tenant_id = parent.head.tenant_id if parent else None
        head.base_version = parent.version.number if parent else None
        head.needs_review, head.review_reason = False, None
        await session.flush()
        flagged = await self._flag_variants(session, tenant, head, number)
        await self._record(session, caller, head, "publish", draft, variants_flagged=flagged,
                           base_version=head.base_version)
        return draft, flagged

    async def _flag_variants(self, session: AsyncSession, tenant: Tenant, head: H,
                             number: int) -> int:
        """Flag the published variants below whose parent this definition is (or would be,
        for a descendant that defined the key before this tenant did)."""
        below = select(Tenant.id).where(Tenant.path.startswith(tenant.path),
                                        Tenant.id != tenant.id)
        model = self.head
        result = await session.execute(
            update(model)
            .where(model.key == head.key, model.tenant_id.in_(below), model.latest_version > 0,
                   (model.base_tenant_id == tenant.id) | model.base_tenant_id.is_(None))
            .values(needs_review=True, updated_at=utcnow(),
                    review_reason=f"The parent {self.words.en} published version {number}; "
                    "check this variant against it and publish a new version.")
            .execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def deprecate(self, session: AsyncSession, *, caller: Caller, tenant: Tenant,
                        key: str, number: int) -> V:
        await lock_active_lineage(session, tenant)
        head = await self.own(session, tenant, key, lock=True)
        found = await self.version(session, head, tenant, number, lock=True)
        if found.status != VersionStatus.PUBLISHED.value:
            raise conflict("not-published", f"Version {number} is {found.status}; only a "
                           "published version can be deprecated.")
        found.status, found.deprecated_at = VersionStatus.DEPRECATED.value, utcnow()
        head.updated_at = utcnow()
        await session.flush()
        await self._record(session, caller, head, "deprecate", found)
        return found

