"""API clients: creation with delegated roles, and authentication for the token endpoint."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.problems import Problem, forbidden, invalid
from app.identity.auth import Caller, GrantClaim, Principal
from app.identity.models import ApiClient, PrincipalKind, PrincipalStatus, RoleGrant
from app.identity.models import Principal as PrincipalRow
from app.identity.roles import Permission, is_known_role, role_permissions
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant, TenantStatus
from app.tenancy.service import lock_active_lineage

CLIENT_ID_PREFIX = "ntc_"
_DUMMY_HASH = hashlib.sha256(b"timing-equaliser").hexdigest()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class ClientView:
    client: ApiClient
    status: str
    roles: list[str]
    tenant_code: str


def check_delegable_roles(caller: Caller, tenant: Tenant, roles: Sequence[str]) -> None:
    """A caller may hand out only roles whose permissions it holds itself at ``tenant``."""
    held = caller.permissions_at(tenant.path)
    for index, role in enumerate(roles):
        if not is_known_role(role):
            raise invalid(f"/roles/{index}", f"Unknown role '{role}'.", code="unknown-role")
        stronger = role_permissions(role) - held
        if stronger:
            raise forbidden(f"Role '{role}' needs {', '.join(sorted(stronger))}, which you do "
                            f"not hold on '{tenant.code}'.")


async def create_client(
    session: AsyncSession, *, caller: Caller, tenant: Tenant, name: str, roles: Sequence[str]
) -> tuple[ClientView, str]:
    caller.require(Permission.CLIENTS_WRITE, tenant)
    roles = list(dict.fromkeys(roles))
    check_delegable_roles(caller, tenant, roles)
    await lock_active_lineage(session, tenant)
    principal = PrincipalRow(tenant_id=tenant.id, kind=PrincipalKind.CLIENT.value,
                             status=PrincipalStatus.ACTIVE.value)
    session.add(principal)
    await session.flush()
    secret = secrets.token_urlsafe(32)
    client = ApiClient(tenant_id=tenant.id, principal_id=principal.id,
                       client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16), name=name,
                       secret_hash=hash_secret(secret))
    session.add(client)
    session.add_all(RoleGrant(tenant_id=tenant.id, principal_id=principal.id, role=role,
                              node_id=tenant.id) for role in roles)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="client.create",
                       resource_type="client", resource_id=client.client_id,
                       after={"client_id": client.client_id, "name": name, "roles": roles})
    return ClientView(client, principal.status, roles, tenant.code), secret


async def list_clients(
    session: AsyncSession, *, tenant: Tenant, after_client_id: str | None, limit: int
) -> list[ClientView]:
    stmt = (
        select(ApiClient, PrincipalRow.status)
        .join(PrincipalRow, (PrincipalRow.tenant_id == ApiClient.tenant_id)
              & (PrincipalRow.id == ApiClient.principal_id))
        .where(ApiClient.tenant_id == tenant.id)
        .order_by(ApiClient.client_id)
        .limit(limit)
    )
    if after_client_id is not None:
        stmt = stmt.where(ApiClient.client_id > after_client_id)
    rows = (await session.execute(stmt)).all()
    ids = [row[0].principal_id for row in rows]
    grants = (await session.execute(
        select(RoleGrant.principal_id, RoleGrant.role)
        .where(RoleGrant.tenant_id == tenant.id, RoleGrant.principal_id.in_(ids))
        .order_by(RoleGrant.role)
    )).all() if ids else []
    roles: dict[uuid.UUID, list[str]] = {}
    for principal_id, role in grants:
        roles.setdefault(principal_id, []).append(role)
    return [ClientView(c, status, roles.get(c.principal_id, []), tenant.code) for c, status in rows]


BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="nentang"'}


class OAuthError(Problem):
    """An RFC 6749 §5.2 error: a problem document that also carries ``error``."""

    def __init__(self, status: int, error: str, description: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, error.replace("_", "-"), "Lỗi cấp mã truy cập",
                         "Token request failed", detail=description, headers=headers or {},
                         extra={"error": error, "error_description": description})


async def authenticate(session: AsyncSession, client_id: str, secret: str) -> Principal:
    """Check a client's credentials and collect its grants. Runs under the platform scope,
    because the client's tenant is not known until its row is found."""
    row = (await session.execute(
        select(ApiClient, PrincipalRow.status)
        .join(PrincipalRow, (PrincipalRow.tenant_id == ApiClient.tenant_id)
              & (PrincipalRow.id == ApiClient.principal_id))
        .where(ApiClient.client_id == client_id)
    )).first()
    stored = row[0].secret_hash if row else _DUMMY_HASH
    if not hmac.compare_digest(stored, hash_secret(secret)) or row is None:
        raise OAuthError(401, "invalid_client", "Unknown client or wrong secret.",
                         BASIC_CHALLENGE)
    client, status = row
    if status != PrincipalStatus.ACTIVE:
        raise OAuthError(401, "invalid_client", "The client is disabled.", BASIC_CHALLENGE)
    home = (await tenants.by_ids(session, [client.tenant_id]))[client.tenant_id]
    blocked = [t for t in (await tenants.by_ids(session, [*home.ancestor_ids, home.id])).values()
               if t.status != TenantStatus.ACTIVE]
    if blocked:
        raise OAuthError(400, "unauthorized_client",
                         "The client's tenant, or one of its ancestors, is suspended.")
    grant_rows = (await session.execute(
        select(RoleGrant.role, RoleGrant.node_id).where(
            RoleGrant.tenant_id == client.tenant_id,
            RoleGrant.principal_id == client.principal_id)
    )).all()
    nodes = await tenants.by_ids(session, [node for _, node in grant_rows])
    grants = tuple(GrantClaim(role, node, nodes[node].path) for role, node in grant_rows
                   if node in nodes)
    return Principal(client.principal_id, client.client_id, client.tenant_id, grants)
