"""All SQL about tenants. Every statement here is scoped by :mod:`app.tenancy.scope`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tenancy.models import Tenant, parent_path, path_upper
from app.tenancy.scope import current_scope, platform_read

_BY_CODE = select(Tenant).where(Tenant.code == bindparam("code"))


async def get_by_code(session: AsyncSession, code: str) -> Tenant | None:
    """One tenant by code; the statement is built once, as it runs on every request."""
    result = await session.execute(_BY_CODE, {"code": code})
    return result.scalar_one_or_none()


async def with_parent_codes(
    session: AsyncSession, tenants: Sequence[Tenant]
) -> list[tuple[Tenant, str | None]]:
    """Pair each tenant with its parent's code, or None where the parent is not visible.

    A second scoped query rather than a self-join, and only for parents the scope covers (the
    others would come back empty anyway).
    """
    scope = current_scope(session)
    codes = {t.id: t.code for t in tenants}
    missing = {
        t.parent_id for t in tenants
        if t.parent_id is not None and t.parent_id not in codes
        and (scope is None or scope.covers(parent_path(t.path)))
    }
    if missing:
        rows = await session.execute(
            select(Tenant.id, Tenant.code).where(Tenant.id.in_(list(missing))))
        codes.update({row[0]: row[1] for row in rows})
    return [(t, codes.get(t.parent_id) if t.parent_id else None) for t in tenants]


async def get_root(session: AsyncSession) -> Tenant | None:
    result = await session.execute(select(Tenant).where(Tenant.parent_id.is_(None)))
    return result.scalars().first()


async def ancestors(session: AsyncSession, tenant: Tenant) -> Sequence[Tenant]:
    """The visible ancestors of ``tenant``, root first: one primary-key lookup."""
    ids = tenant.ancestor_ids
    if not ids:
        return []
    result = await session.execute(
        select(Tenant).where(Tenant.id.in_(ids)).order_by(Tenant.depth)
    )
    return result.scalars().all()


async def lock_lineage(
    session: AsyncSession, tenant: Tenant, *, exclusive: bool = False
) -> Sequence[Tenant]:
    """Lock ``tenant`` and its visible ancestors until commit, root first, refreshing them.

    Ancestors are share-locked; the tenant itself too, or exclusively when it is about to
    change (so concurrent changes queue instead of one failing on a stale version). Locks are
    taken in depth order, so two writers in one branch cannot deadlock. SQLite ignores the
    locking clause: its write transactions are already serialised.
    """
    ids = tenant.ancestor_ids if exclusive else [*tenant.ancestor_ids, tenant.id]
    rows: list[Tenant] = []
    if ids:
        rows = list((await session.execute(
            select(Tenant).where(Tenant.id.in_(ids)).order_by(Tenant.depth)
            .with_for_update(read=True).execution_options(populate_existing=True)
        )).scalars().all())
    if exclusive:
        rows += (await session.execute(
            select(Tenant).where(Tenant.id == tenant.id)
            .with_for_update().execution_options(populate_existing=True)
        )).scalars().all()
    return rows


async def children(
    session: AsyncSession, parent: Tenant, *, after_code: str | None, limit: int
) -> Sequence[tuple[Tenant, str | None]]:
    stmt = select(Tenant).where(Tenant.parent_id == parent.id).order_by(Tenant.code).limit(limit)
    if after_code is not None:
        stmt = stmt.where(Tenant.code > after_code)
    return [(t, parent.code) for t in (await session.execute(stmt)).scalars().all()]


async def subtree(
    session: AsyncSession, root: Tenant, *, after_path: str | None, limit: int,
    include_root: bool = False,
) -> Sequence[tuple[Tenant, str | None]]:
    """Descendants of ``root`` in path order: one range scan on the path index."""
    lower = Tenant.path >= root.path if include_root else Tenant.path > root.path
    stmt = (
        select(Tenant)
        .where(lower, Tenant.path < path_upper(root.path))
        .order_by(Tenant.path)
        .limit(limit)
    )
    if after_path is not None:
        stmt = stmt.where(Tenant.path > after_path)
    return await with_parent_codes(session, (await session.execute(stmt)).scalars().all())


async def visible(
    session: AsyncSession, *, after_path: str | None, limit: int
) -> Sequence[tuple[Tenant, str | None]]:
    stmt = select(Tenant).order_by(Tenant.path).limit(limit)
    if after_path is not None:
        stmt = stmt.where(Tenant.path > after_path)
    return await with_parent_codes(session, (await session.execute(stmt)).scalars().all())


async def by_codes(session: AsyncSession, codes: Sequence[str]) -> dict[str, Tenant]:
    if not codes:
        return {}
    result = await session.execute(select(Tenant).where(Tenant.code.in_(list(codes))))
    return {t.code: t for t in result.scalars().all()}


async def by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Tenant]:
    if not ids:
        return {}
    result = await session.execute(select(Tenant).where(Tenant.id.in_(list(ids))))
    return {t.id: t for t in result.scalars().all()}


async def lineage_kinds(session: AsyncSession, tenant: Tenant) -> list[tuple[str, str]]:
    """``(path, kind)`` of ``tenant`` and every ancestor, root first, whether or not the caller
    may see them.

    Routing a case to "its province" needs to know which ancestor is the province, even for a
    commune official who cannot see it. Only paths (made of ids, already in the tenant's own
    path) and kinds are read, under the platform scope for this one statement; the caller's
    scope is restored before anything else runs.
    """
    async with platform_read(session, "lineage kinds"):
        rows = (await session.execute(
            select(Tenant.path, Tenant.kind).where(Tenant.id.in_([*tenant.ancestor_ids,
                                                                  tenant.id]))
            .order_by(Tenant.depth))).all()
    return [(row.path, row.kind) for row in rows]
