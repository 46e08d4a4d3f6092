"""``nentang bootstrap``: create the platform's root tenant and its first administrator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import advisory_xact_lock
from app.identity import clients as identity
from app.identity.callers import Operator
from app.identity.models import ApiClient, RoleGrant
from app.tenancy import repository, service
from app.tenancy.models import Tenant

ADMIN_ROLE = "platform_admin"
ADMIN_CLIENT_NAME = "platform-admin"
_BOOTSTRAP_LOCK = 0x6E656E74616E67  # "nentang": one bootstrap at a time on PostgreSQL


class BootstrapConflict(Exception):
    pass


@dataclass
class BootstrapResult:
    root: Tenant
    created: bool
    client_id: str | None
    client_secret: str | None
    existing_admins: list[str]


async def bootstrap(session: AsyncSession, *, code: str, name: str,
                    operator: Operator) -> BootstrapResult:
    """Runs in the caller's transaction, which must have the platform scope."""
    await advisory_xact_lock(session, _BOOTSTRAP_LOCK)
    root = await repository.get_root(session)
    if root is not None:
        if root.code != code:
            raise BootstrapConflict(
                f"This platform is already bootstrapped with root '{root.code}' ({root.name})."
            )
        admins = (await session.execute(
            select(ApiClient.client_id)
            .join(RoleGrant, (RoleGrant.tenant_id == ApiClient.tenant_id)
                  & (RoleGrant.principal_id == ApiClient.principal_id))
            .where(RoleGrant.node_id == root.id, RoleGrant.role == ADMIN_ROLE)
            .order_by(ApiClient.client_id)
        )).scalars().all()
        return BootstrapResult(root, False, None, None, list(admins))
    root = await service.create_root(session, code=code, name=name, actor=operator.actor)
    view, secret = await identity.create_client(
        session, caller=operator, tenant=root, name=ADMIN_CLIENT_NAME, roles=[ADMIN_ROLE]
    )
    return BootstrapResult(root, True, view.client.client_id, secret, [])
