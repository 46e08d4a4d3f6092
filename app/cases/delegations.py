"""Delegation while absent: an official hands their case work to a colleague for a period.

During the period the delegate may take every action the delegator's roles allow and act on
the cases the delegator claimed, recorded in the history as done on the delegator's behalf.
It widens nothing else: the delegate still reaches only the units its own grants cover, so
a delegation never opens another unit's data.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.cases.models import Delegation
from app.core.db import utcnow
from app.core.problems import Problem, not_found
from app.identity import principals
from app.identity.callers import Principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission
from app.tenancy.models import Tenant
from app.tenancy.scope import platform_read

LONGEST = timedelta(days=366)


def _invalid(pointer: str, detail: str) -> Problem:
    return Problem(422, "invalid-delegation", "Ủy quyền không hợp lệ", "Invalid delegation",
                   detail=detail, errors=[{"pointer": pointer, "detail": detail}])


async def create(session: AsyncSession, *, principal: Principal, delegate: uuid.UUID,
                 starts_at: datetime, ends_at: datetime, reason: str | None) -> Delegation:
    now = utcnow()
    if ends_at <= starts_at:
        raise _invalid("/ends_at", "The period must end after it starts.")
    if ends_at <= now:
        raise _invalid("/ends_at", "The period is over already.")
    if ends_at - starts_at > LONGEST:
        raise _invalid("/ends_at", "A delegation lasts at most a year.")
    if delegate == principal.id:
        raise _invalid("/delegate", "You cannot delegate to yourself.")
    if not any(Permission.CASES_ACT in g.permissions for g in principal.grants):
        raise Problem(403, "nothing-to-delegate", "Không có việc để ủy quyền",
                      "Nothing to delegate", detail="You hold no role that acts on cases.")
    visible = (await session.execute(select(PrincipalRow.id).where(
        PrincipalRow.id == delegate, PrincipalRow.status == "active"))).scalar_one_or_none()
    if visible is None:
        raise _invalid("/delegate", "No such active user or client is visible to you.")
    home = (await session.execute(select(Tenant).where(
        Tenant.id == principal.home_tenant_id))).scalar_one_or_none()
    if home is None:
        raise Problem(403, "forbidden", "Không có quyền", "Forbidden",
                      detail="Your home unit lies outside your grants; ask its administrator.")
    row = Delegation(tenant_id=principal.home_tenant_id, id=uuid.uuid4(),
                     delegator=principal.id, delegate=delegate, starts_at=starts_at,
                     ends_at=ends_at, reason=reason, created_at=now)
    session.add(row)
    await session.flush()
    await audit.record(session, tenant_id=row.tenant_id, actor=principal.actor,
                       action="delegation.create", resource_type="delegation",
                       resource_id=str(row.id),
                       after={"delegate": str(delegate), "starts_at": starts_at.isoformat(),
                              "ends_at": ends_at.isoformat()})
    return row


async def mine(session: AsyncSession, principal: Principal) -> list[Delegation]:
    """Delegations the principal gave or received, newest first (received ones may live in
    a unit it cannot see, so they are read past its scope: they are its own)."""
    async with platform_read(session, "own delegations"):
        return list((await session.execute(select(Delegation).where(or_(
            Delegation.delegator == principal.id, Delegation.delegate == principal.id))
            .order_by(Delegation.created_at.desc()))).scalars())


async def end(session: AsyncSession, *, principal: Principal,
              delegation_id: uuid.UUID) -> Delegation:
    """The delegator ends a delegation early."""
    found = (await session.execute(select(Delegation).where(
        Delegation.id == delegation_id, Delegation.delegator == principal.id)
    )).scalar_one_or_none()
    if found is None or (await session.execute(select(Tenant).where(
            Tenant.id == found.tenant_id))).scalar_one_or_none() is None:
        raise not_found("delegation", str(delegation_id))
    if found.revoked_at is None:
        found.revoked_at = utcnow()
        await session.flush()
        await audit.record(session, tenant_id=found.tenant_id, actor=principal.actor,
                           action="delegation.end", resource_type="delegation",
                           resource_id=str(found.id), after={"ended": True})
    return found


async def delegators(session: AsyncSession, principal: Principal,
                     now: datetime | None = None) -> list[Principal]:
    """Who the principal stands in for right now, each as they are now (a disabled or
    suspended delegator delegates nothing). Read once per session, i.e. per request."""
    cache_key = ("delegators", principal.id)
    if now is None and cache_key in session.info:  # once per request (one transaction)
        cached: list[Principal] = session.info[cache_key]
        return cached
    moment = now or utcnow()
    found: list[Principal] = []
    async with platform_read(session, "own delegations"):
        rows = (await session.execute(select(Delegation.delegator, Delegation.tenant_id).where(
            Delegation.delegate == principal.id, Delegation.revoked_at.is_(None),
            Delegation.starts_at <= moment, Delegation.ends_at > moment))).all()
        for delegator, home in rows:
            try:
                found.append(await principals.load(session, delegator, home, client_id=""))
            except Problem:
                continue
    if now is None:
        session.info[cache_key] = found
    return found
