"""Each tenant's OpenID Connect provider: set, removed and read as *inherited* (a commune
without one of its own signs in through its province's).

Whoever chooses a unit's provider decides who signs in as every user linked to it
(``external_id``), so setting or removing it needs all their permissions, and the roles given
to officials created just in time must be delegable by the caller.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, invalid, not_found
from app.identity import grants, roles
from app.identity.callers import Caller
from app.identity.idp_schemas import IdentityProviderIn
from app.identity.models import IdentityProvider
from app.identity.permissions import BUILTIN_ROLES, Permission
from app.identity.policy import authorize, check_delegable
from app.identity.principals import path_ids
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

# ---- configuration -----------------------------------------------------------------------


async def own(session: AsyncSession, tenant: Tenant) -> IdentityProvider | None:
    return (await session.execute(
        select(IdentityProvider).where(IdentityProvider.tenant_id == tenant.id)
    )).scalar_one_or_none()


async def effective(session: AsyncSession, tenant: Tenant) -> IdentityProvider | None:
    """The tenant's own provider, else the nearest ancestor's."""
    lineage = path_ids(tenant.path)
    rows = (await session.execute(
        select(IdentityProvider).where(IdentityProvider.tenant_id.in_(lineage))
    )).scalars().all()
    return max(rows, key=lambda r: lineage.index(r.tenant_id), default=None)


async def by_id(session: AsyncSession, provider_id: uuid.UUID) -> IdentityProvider | None:
    return (await session.execute(
        select(IdentityProvider).where(IdentityProvider.id == provider_id)
    )).scalar_one_or_none()


def snapshot(row: IdentityProvider) -> dict[str, Any]:
    """What the audit trail keeps: never the client secret."""
    return {"display_name": row.display_name, "issuer": row.issuer, "client_id": row.client_id,
            "scopes": row.scopes, "match_claim": row.match_claim, "jit_enabled": row.jit_enabled,
            "jit_roles": list(row.jit_roles), "has_client_secret": bool(row.client_secret)}


def _check_controls_the_unit(caller: Caller, tenant: Tenant) -> None:
    """The provider decides who signs in as anyone linked there, including users granted
    more later: only someone holding everything a unit's administrator holds may choose it."""
    check_delegable(caller, tenant, BUILTIN_ROLES["tenant_admin"],
                    "Choosing the unit's identity provider")


async def put(session: AsyncSession, *, caller: Caller, tenant: Tenant,
              data: IdentityProviderIn, allow_http_loopback: bool = False) -> IdentityProvider:
    """Set the tenant's own provider. Whoever controls the provider signs in as every linked
    user below, so the caller must hold all their permissions; and officials created just in
    time get ``jit_roles``, so setting them is delegating them."""
    authorize(caller, Permission.IDP_WRITE, tenant)
    _check_controls_the_unit(caller, tenant)
    await grants.check_may_manage_linked_users(session, caller, tenant)
    if urlsplit(data.issuer).scheme == "http" and not allow_http_loopback:
        raise invalid("/issuer", "This platform accepts only https identity providers "
                      "(NENTANG_IDP_ALLOW_HTTP_LOOPBACK is off).", code="issuer-not-https")
    for index, key in enumerate(data.jit_roles):
        role = await roles.resolve(session, tenant, key, f"/jit_roles/{index}")
        check_delegable(caller, tenant, role.permissions, f"Role '{key}'")
    await lock_active_lineage(session, tenant)
    row = await own(session, tenant)
    secret = data.client_secret.get_secret_value() if data.client_secret is not None else None
    if row is None and secret is None:
        raise invalid("/client_secret", "The client secret is required when the tenant has no "
                      "identity provider of its own yet.", code="client-secret-required")
    before = snapshot(row) if row is not None else None
    secret_changed = secret is not None and (row is None or secret != row.client_secret)
    if row is None:
        row = IdentityProvider(tenant_id=tenant.id)
        session.add(row)
    row.display_name, row.issuer, row.client_id = data.display_name, data.issuer, data.client_id
    row.scopes, row.match_claim = data.scopes, data.match_claim
    row.jit_enabled, row.jit_roles = data.jit_enabled, list(data.jit_roles)
    if secret is not None:
        row.client_secret = secret
    after = snapshot(row)
    if after == before and not secret_changed:
        return row
    row.updated_at = utcnow()
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="idp.set",
                       resource_type="identity_provider", resource_id=str(row.id),
                       before=before, after={**after, "client_secret_changed": secret_changed})
    return row


async def remove(session: AsyncSession, *, caller: Caller, tenant: Tenant) -> None:
    """Delete the tenant's own provider; an inherited one can be changed only where defined.
    Linked users below then sign in through the next provider up, so this too needs every
    permission they hold."""
    authorize(caller, Permission.IDP_WRITE, tenant)
    _check_controls_the_unit(caller, tenant)
    await grants.check_may_manage_linked_users(session, caller, tenant)
    row = await own(session, tenant)
    if row is None:
        if await effective(session, tenant) is not None:
            raise Problem(403, "inherited-read-only", "Định nghĩa kế thừa", "Inherited definition",
                          detail=f"'{tenant.code}' uses an ancestor's identity provider, which "
                                 "can be changed only there.")
        raise not_found("identity-provider", tenant.code)
    await lock_active_lineage(session, tenant)
    before = snapshot(row)
    await session.delete(row)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="idp.delete",
                       resource_type="identity_provider", resource_id=str(row.id), before=before)
