"""The one place that decides which tenants a unit of work may see.

A :class:`TenantScope` is a set of tenant-path prefixes: the subtrees the caller holds grants
on. :func:`apply_scope` attaches it to a session, and from then on two walls enforce it:

* **In the application.** A ``do_orm_execute`` hook finds every tenant-scoped model a
  statement touches (:class:`~app.tenancy.models.Tenant` and every
  :class:`~app.core.db.TenantOwned` model, anywhere in the statement: entities, joins,
  ``select_from``, subqueries, CTEs) and adds the scope's criteria for each to the ORM
  ``SELECT``, ``UPDATE`` or ``DELETE``; bulk ORM ``INSERT`` is refused, and a ``before_flush``
  hook refuses new rows for tenants outside the scope. A statement on those models in a
  session with no scope raises :class:`ScopeNotSet`: repositories cannot forget the
  ``WHERE``, and an unscoped session fails closed. Raw ``text()`` SQL and Core statements on
  ``Model.__table__`` are outside this wall (only RLS covers them), so ``app/`` uses neither
  on tenant tables (``tests/test_scope.py`` checks).
* **In PostgreSQL.** :func:`apply_scope` also sets ``nentang.scope`` for the current
  transaction only (``set_config(..., true)``), which the row-level-security policies read.
  An unset or ended scope reads as ``''`` and the policies match nothing.

Repositories must not query scoped models through ``aliased()``: the application-side
criteria apply to the mapped classes themselves (``tests/test_scope.py`` checks for this).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, event, or_, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria
from sqlalchemy.sql import visitors

from app.core.db import TenantOwned, on_postgresql
from app.tenancy.models import Tenant, path_upper

SCOPE_KEY = "tenant_scope"
OPTIONS_KEY = "tenant_scope_options"
PLATFORM_PREFIX = "/"


class ScopeNotSet(RuntimeError):
    """A tenant-scoped statement ran in a session that has no scope."""


class ScopeViolation(RuntimeError):
    """A write targeted a tenant outside the session's scope."""


@dataclass(frozen=True)
class TenantScope:
    prefixes: tuple[str, ...]
    reason: str = field(default="request", compare=False)

    @classmethod
    def platform(cls, reason: str) -> TenantScope:
        """Every tenant. For operator commands (bootstrap, apply, audit verify) and for
        authenticating a client, which must find the client before its tenant is known."""
        return cls((PLATFORM_PREFIX,), reason=reason)

    @classmethod
    def of_paths(cls, paths: Iterable[str], reason: str = "request") -> TenantScope:
        """The union of the subtrees at ``paths``, with nested ones folded into their parent."""
        unique = sorted(set(paths))
        kept: list[str] = []
        for path in unique:
            if not any(path.startswith(k) for k in kept):
                kept.append(path)
        return cls(tuple(kept), reason=reason)

    @property
    def is_platform(self) -> bool:
        return PLATFORM_PREFIX in self.prefixes

    def covers(self, path: str) -> bool:
        return any(path.startswith(p) for p in self.prefixes)

    def setting(self) -> str:
        return ",".join(self.prefixes)


def path_in_scope(column: Any, scope: TenantScope) -> ColumnElement[bool]:
    if scope.is_platform:
        return true()
    if not scope.prefixes:
        return and_(column.is_(None), column.is_not(None))
    return or_(*(and_(column >= p, column < path_upper(p)) for p in scope.prefixes))


def visible_tenant_ids(scope: TenantScope) -> Select[uuid.UUID]:
    return select(Tenant.id).where(path_in_scope(Tenant.path, scope))


async def apply_scope(session: AsyncSession, scope: TenantScope) -> None:
    """Scope the session's current transaction. Call once, at the start of a unit of work."""
    session.info[SCOPE_KEY] = scope
    if on_postgresql(session):
        await session.execute(
            text("SELECT set_config('nentang.scope', :scope, true)"), {"scope": scope.setting()}
        )


@asynccontextmanager
async def platform_read(session: AsyncSession, reason: str) -> AsyncIterator[None]:
    """Run the enclosed statements under the platform scope, then restore the caller's.

    For the few reads a request needs beyond what its caller may see and that reveal nothing
    to it (which ancestor is the province; the caller's own delegations). Never write inside.
    """
    previous = current_scope(session)
    await apply_scope(session, TenantScope.platform(reason))
    try:
        yield
    finally:
        if previous is not None:
            await apply_scope(session, previous)


def current_scope(session: Session | AsyncSession) -> TenantScope | None:
    scope: TenantScope | None = session.info.get(SCOPE_KEY)
    return scope


def ancestor_ids(scope: TenantScope) -> list[uuid.UUID]:
    """The tenants on the paths of the scope's roots: each root and its ancestors."""
    return sorted({uuid.UUID(part) for prefix in scope.prefixes
                   for part in prefix.strip("/").split("/") if part})


def is_inherited(cls: type) -> bool:
    """Definitions (roles, identity providers, forms) a tenant's descendants inherit."""
    return getattr(cls, "__tenant_visibility__", None) == "inherited"


def _scope_criteria(cls: type, scope: TenantScope, *, reading: bool) -> ColumnElement[bool]:
    if cls is Tenant:
        return path_in_scope(Tenant.path, scope)
    owned = cls.tenant_id.in_(visible_tenant_ids(scope))  # type: ignore[attr-defined]
    if reading and is_inherited(cls):
        return or_(owned, cls.tenant_id.in_(ancestor_ids(scope)))  # type: ignore[attr-defined]
    return owned  # type: ignore[no-any-return]


@cache
def _scoped_classes_by_table() -> dict[Table, type]:
    return {
        mapper.local_table: mapper.class_  # type: ignore[misc]
        for mapper in Tenant.registry.mappers
        if issubclass(mapper.class_, (Tenant, TenantOwned))
    }


# Statements built once and executed on every request (e.g. the tenant lookup by code) are
# walked once; statements built per call are not remembered past their last use.
_SCOPED_IN: weakref.WeakKeyDictionary[Any, frozenset[type]] = weakref.WeakKeyDictionary()


def _scoped_classes_in(statement: Any) -> frozenset[type]:
    """Every scoped model the statement reads or writes, wherever it appears: the top-level
    entities, ``select_from``, joins, subqueries, CTEs, unions and bare columns."""
    cached = _SCOPED_IN.get(statement)
    if cached is not None:
        return cached
    by_table = _scoped_classes_by_table()
    found: set[type] = set()
    for element in visitors.iterate(statement):
        table = element if isinstance(element, Table) else getattr(element, "table", None)
        if isinstance(table, Table) and table in by_table:
            found.add(by_table[table])
    result = _SCOPED_IN[statement] = frozenset(found)
    return result


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    scope = current_scope(state.session)
    if scope is not None and scope.is_platform:
        return  # sees everything: no need to walk the statement
    scoped = _scoped_classes_in(state.statement)
    if not scoped:
        return
    if scope is None:
        names = ", ".join(sorted(c.__name__ for c in scoped))
        raise ScopeNotSet(f"tenant-scoped statement on {names} in a session without a scope")
    if state.is_insert:
        raise ScopeViolation("bulk INSERT on a tenant-scoped model: add objects to the session "
                             "so each row's tenant is checked")
    reading = state.is_select
    state.statement = state.statement.options(
        *(_criteria_option(state.session, cls, scope, reading) for cls in scoped)
    )


def _criteria_option(session: Session, cls: type, scope: TenantScope, reading: bool) -> Any:
    """The loader-criteria option for ``cls``, built once per session, scope and mode.

    Reads of inherited definitions also see the ancestors' rows; writes never do."""
    options: dict[tuple[type, TenantScope, bool], Any] = session.info.setdefault(
        OPTIONS_KEY, {})
    option = options.get((cls, scope, reading))
    if option is None:
        option = options[(cls, scope, reading)] = with_loader_criteria(
            cls, _scope_criteria(cls, scope, reading=reading), include_aliases=True)
    return option


KNOWN_TENANTS_KEY = "scope_known_tenants"


def _remember(session: Session, tenant: Tenant) -> None:
    session.info.setdefault(KNOWN_TENANTS_KEY, {})[tenant.id] = tenant.path


@event.listens_for(Tenant, "load")
def _remember_loaded(tenant: Tenant, context: Any) -> None:
    """A tenant the session has read is one the scope let it see (the identity map is weak,
    so the ids are kept here for the insert check below)."""
    _remember(context.session, tenant)


@event.listens_for(Session, "before_flush")
def _check_new_rows(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    new_scoped = [o for o in session.new if isinstance(o, (Tenant, TenantOwned))]
    inherited = [o for o in (*session.dirty, *session.deleted) if is_inherited(type(o))]
    if not new_scoped and not inherited:
        return
    scope = current_scope(session)
    if scope is None:
        raise ScopeNotSet("inserting tenant-scoped rows in a session without a scope")
    if scope.is_platform:
        return
    for obj in new_scoped:
        if isinstance(obj, Tenant):
            _remember(session, obj)
    known: dict[uuid.UUID, str] = session.info.get(KNOWN_TENANTS_KEY, {})
    for obj in inherited:
        path = known.get(obj.tenant_id)
        if path is None or not scope.covers(path):
            raise ScopeViolation(f"{type(obj).__name__} row inherited from an ancestor is "
                                 "read-only here")
    for obj in new_scoped:
        referenced: list[str | None]
        if isinstance(obj, Tenant):
            referenced = [obj.path]
        else:
            ids = [obj.tenant_id, *(getattr(obj, c) for c in obj.__tenant_references__)]
            referenced = [known.get(i) for i in ids]
        if not all(path is not None and scope.covers(path) for path in referenced):
            raise ScopeViolation(f"{type(obj).__name__} row for a tenant outside the scope")
