"""API clients (the local systems of a tenant): creation with delegated roles, reading,
changing, revoking and rotating their secrets, and authentication for the token endpoint.

* **Secrets** are 256 random bits kept only as SHA-256 digests. Rotation issues a new secret
  and keeps the old one working for an overlap window (``previous_secret_expires_at``), so a
  local system can switch without downtime. Only one old secret is kept: rotating again
  during a window ends the earlier old secret at once.
* **Revocation** is ``status = disabled``: the token endpoint refuses the client, and tokens
  it already holds stop working on their next request, because every request reads the
  principal's live state (:mod:`app.identity.principals`).
* **Scopes** limit what the client's tokens may do below what its roles allow. A token
  request may ask for a narrower set (the OAuth ``scope`` parameter), never a wider one.
  The limit is written into each token, so a changed limit applies to tokens issued after
  the change; to cut off tokens already issued, disable the client.
* **Rate limit**: ``rate_limit_per_minute`` overrides the platform default for this client
  (:mod:`app.identity.ratelimit`); only a platform administrator may set it above the default.
* **Last use**: ``last_used_at`` is the time of the client's last token request. Its last
  API call is at most one access-token lifetime after that.

Managing a client (changing, rotating) is taking over what it holds, so the caller must hold
every permission of the client's roles, as for users.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, conflict, invalid, not_found
from app.identity import grants, principals
from app.identity import roles as role_catalogue
from app.identity.callers import Caller, Principal
from app.identity.models import ApiClient, PrincipalKind, PrincipalStatus, RoleGrant, of_principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission, known_permissions
from app.identity.policy import authorize, check_delegable
from app.tenancy.models import Tenant
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


def snapshot(client: ApiClient, status: str) -> dict[str, Any]:
    """What the audit trail keeps of a client: never a secret or its digest."""
    return {"name": client.name, "status": status,
            "scopes": sorted(client.scopes) if client.scopes is not None else None,
            "rate_limit_per_minute": client.rate_limit_per_minute}


def _check_scopes(caller: Caller, tenant: Tenant, scopes: Iterable[Permission] | None) -> None:
    """A scope limit may name only permissions the caller holds itself at ``tenant``."""
    if scopes is not None:
        check_delegable(caller, tenant, scopes, "The scope limit")


def _check_rate_limit(caller: Caller, tenant: Tenant, limit: int | None,
                      default_limit: int | None) -> None:
    """A limit above the platform default is the platform's to give: the default protects
    every tenant sharing the replicas. With no default (0) any limit only tightens. When
    ``default_limit`` is not known (None), every limit needs ``platform:admin``."""
    if limit is None:
        return
    if default_limit is None or (default_limit > 0 and limit > default_limit):
        shown = "unknown" if default_limit is None else str(default_limit)
        check_delegable(caller, tenant, [Permission.PLATFORM_ADMIN],
                        f"A rate limit above the platform default ({shown} a minute)")


def _scope_values(scopes: Iterable[Permission] | None) -> list[str] | None:
    return None if scopes is None else sorted({Permission(s).value for s in scopes})


async def create_client(
    session: AsyncSession, *, caller: Caller, tenant: Tenant, name: str, roles: Sequence[str],
    scopes: Iterable[Permission] | None = None, rate_limit_per_minute: int | None = None,
    default_rate_limit: int | None = None,
) -> tuple[ClientView, str]:
    """Create a client with ``roles`` (built-in, or custom ones usable at ``tenant``) at
    ``tenant``. ``default_rate_limit`` is the platform's default per-client limit, needed only
    when ``rate_limit_per_minute`` is given."""
    authorize(caller, Permission.CLIENTS_WRITE, tenant)
    resolved = [await role_catalogue.resolve(session, tenant, key, f"/roles/{index}")
                for index, key in enumerate(dict.fromkeys(roles))]
    for role in resolved:
        check_delegable(caller, tenant, role.permissions, f"Role '{role.key}'")
    roles = [role.key for role in resolved]
    scope_values = _scope_values(scopes)
    _check_scopes(caller, tenant, None if scope_values is None else map(Permission, scope_values))
    _check_rate_limit(caller, tenant, rate_limit_per_minute, default_rate_limit)
    await lock_active_lineage(session, tenant)
    principal = PrincipalRow(tenant_id=tenant.id, kind=PrincipalKind.CLIENT.value,
                             status=PrincipalStatus.ACTIVE.value)
    session.add(principal)
    await session.flush()
    secret = secrets.token_urlsafe(32)
    client = ApiClient(tenant_id=tenant.id, principal_id=principal.id,
                       client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16), name=name,
                       secret_hash=hash_secret(secret), scopes=scope_values,
                       rate_limit_per_minute=rate_limit_per_minute)
    session.add(client)
    session.add_all(RoleGrant(tenant_id=tenant.id, principal_id=principal.id, role=role.key,
                              role_tenant_id=role.tenant_id, node_id=tenant.id,
                              granted_by=caller.actor) for role in resolved)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="client.create",
                       resource_type="client", resource_id=client.client_id,
                       after={"client_id": client.client_id, **snapshot(client, principal.status),
                              "roles": roles})
    return ClientView(client, principal.status, roles, tenant.code), secret


async def _roles_of(session: AsyncSession, tenant: Tenant,
                    principal_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    grants = (await session.execute(
        select(RoleGrant.principal_id, RoleGrant.role)
        .where(RoleGrant.tenant_id == tenant.id, RoleGrant.principal_id.in_(principal_ids))
        .order_by(RoleGrant.role)
    )).all() if principal_ids else []
    found: dict[uuid.UUID, list[str]] = {}
    for principal_id, role in grants:
        found.setdefault(principal_id, []).append(role)
    return found


async def list_clients(
    session: AsyncSession, *, tenant: Tenant, after_client_id: str | None, limit: int
) -> list[ClientView]:
    stmt = (
        select(ApiClient, PrincipalRow.status)
        .join(PrincipalRow, of_principal(ApiClient))
        .where(ApiClient.tenant_id == tenant.id)
        .order_by(ApiClient.client_id)
        .limit(limit)
    )
    if after_client_id is not None:
        stmt = stmt.where(ApiClient.client_id > after_client_id)
    rows = (await session.execute(stmt)).all()
    held = await _roles_of(session, tenant, [row[0].principal_id for row in rows])
    return [ClientView(c, status, held.get(c.principal_id, []), tenant.code)
            for c, status in rows]


async def _find(session: AsyncSession, tenant: Tenant,
                client_id: str) -> tuple[ApiClient, PrincipalRow]:
    row = (await session.execute(
        select(ApiClient, PrincipalRow)
        .join(PrincipalRow, of_principal(ApiClient))
        .where(ApiClient.tenant_id == tenant.id, ApiClient.client_id == client_id)
    )).first()
    if row is None:
        raise not_found("client", client_id)
    return row[0], row[1]


async def _view(session: AsyncSession, tenant: Tenant, client: ApiClient,
                status: str) -> ClientView:
    held = await _roles_of(session, tenant, [client.principal_id])
    return ClientView(client, status, held.get(client.principal_id, []), tenant.code)


async def get_client(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                     client_id: str) -> ClientView:
    authorize(caller, Permission.CLIENTS_READ, tenant)
    client, principal = await _find(session, tenant, client_id)
    return await _view(session, tenant, client, principal.status)


def _refuse_null(changes: dict[str, Any], field: str) -> None:
    if field in changes and changes[field] is None:
        raise invalid(f"/{field}", f"'{field}' cannot be null; leave it out to keep it.")


async def update_client(
    session: AsyncSession, *, caller: Caller, tenant: Tenant, client_id: str,
    changes: dict[str, Any], default_rate_limit: int | None,
) -> ClientView:
    """Apply a partial update: ``changes`` holds only the fields sent (``name``, ``scopes``,
    ``rate_limit_per_minute``, ``status``). ``scopes`` or ``rate_limit_per_minute`` None
    removes the limit (the platform default applies)."""
    authorize(caller, Permission.CLIENTS_WRITE, tenant)
    unknown = sorted(set(changes) - {"name", "scopes", "rate_limit_per_minute", "status"})
    if unknown:
        raise invalid(f"/{unknown[0]}", f"'{unknown[0]}' cannot be changed.")
    _refuse_null(changes, "name")
    _refuse_null(changes, "status")
    client, principal = await _find(session, tenant, client_id)
    await grants.check_may_manage(session, caller, tenant, client.tenant_id, client.principal_id)
    if "scopes" in changes:
        scope_values = _scope_values(changes["scopes"])
        _check_scopes(caller, tenant,
                      None if scope_values is None else map(Permission, scope_values))
    if changes.get("rate_limit_per_minute") not in (None, client.rate_limit_per_minute):
        _check_rate_limit(caller, tenant, changes["rate_limit_per_minute"], default_rate_limit)
    status = changes.get("status")
    if (status == PrincipalStatus.DISABLED and principal.status != status
            and getattr(caller, "client_id", None) == client.client_id):
        raise conflict("cannot-disable-self",
                       "A client cannot disable itself: ask another administrator.")
    await lock_active_lineage(session, tenant)
    before = snapshot(client, principal.status)
    if "name" in changes:
        client.name = changes["name"]
    if "scopes" in changes:
        client.scopes = _scope_values(changes["scopes"])
    if "rate_limit_per_minute" in changes:
        client.rate_limit_per_minute = changes["rate_limit_per_minute"]
    if status is not None:
        principal.status = status
    after = snapshot(client, principal.status)
    if after != before:
        await session.flush()
        action = "client.update"
        if before["status"] != after["status"]:
            action = ("client.disable" if principal.status == PrincipalStatus.DISABLED
                      else "client.enable")
        await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action=action,
                           resource_type="client", resource_id=client.client_id,
                           before=before, after=after)
    return await _view(session, tenant, client, principal.status)


async def rotate_secret(
    session: AsyncSession, *, caller: Caller, tenant: Tenant, client_id: str,
    overlap_seconds: int,
) -> tuple[ClientView, str]:
    """Issue a new secret (returned once). The old one keeps working for ``overlap_seconds``
    (0: it stops now); an older secret still in its window stops now."""
    authorize(caller, Permission.CLIENTS_WRITE, tenant)
    if overlap_seconds < 0:
        raise invalid("/overlap_seconds", "The overlap cannot be negative.")
    client, principal = await _find(session, tenant, client_id)
    await grants.check_may_manage(session, caller, tenant, client.tenant_id, client.principal_id)
    await lock_active_lineage(session, tenant)
    secret = secrets.token_urlsafe(32)
    if overlap_seconds > 0:
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_seconds)
    else:
        client.previous_secret_hash = client.previous_secret_expires_at = None
    client.secret_hash = hash_secret(secret)
    await session.flush()
    expires = client.previous_secret_expires_at
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="client.rotate_secret", resource_type="client",
                       resource_id=client.client_id,
                       after={"overlap_seconds": overlap_seconds,
                              "previous_secret_expires_at":
                                  expires.isoformat() if expires else None})
    return await _view(session, tenant, client, principal.status), secret


# ---- the token endpoint ------------------------------------------------------------------

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="nentang"'}


class OAuthError(Problem):
    """An RFC 6749 §5.2 error: a problem document that also carries ``error``."""

    def __init__(self, status: int, error: str, description: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, error.replace("_", "-"), "Lỗi cấp mã truy cập",
                         "Token request failed", detail=description, headers=headers or {},
                         extra={"error": error, "error_description": description})


def _secret_matches(client: ApiClient | None, secret: str, now: datetime) -> bool:
    """Compare against the current and the previous digest, always both and in constant
    time, with a dummy digest standing in for whatever is missing, so the time taken does
    not tell whether the client exists or has an old secret."""
    digest = hash_secret(secret)
    current = client.secret_hash if client is not None else _DUMMY_HASH
    previous = (client.previous_secret_hash if client is not None else None) or _DUMMY_HASH
    expires = client.previous_secret_expires_at if client is not None else None
    previous_live = (client is not None and client.previous_secret_hash is not None
                     and expires is not None and expires > now)
    matches_current = hmac.compare_digest(current, digest)
    matches_previous = hmac.compare_digest(previous, digest)
    return client is not None and (matches_current or (matches_previous and previous_live))


def effective_scopes(allowed: Sequence[str] | None,
                     requested: frozenset[Permission] | None) -> frozenset[Permission] | None:
    """The scope limit of a token: what was asked for, within what the client is allowed.
    None is no limit. Asking for more than allowed is ``invalid_scope``."""
    if allowed is None:
        return requested
    limit = known_permissions(allowed)
    if requested is None:
        return limit
    beyond = sorted(requested - limit)
    if beyond:
        raise OAuthError(400, "invalid_scope",
                         f"This client may not request {' '.join(beyond)}.")
    return requested & limit


async def authenticate(session: AsyncSession, client_id: str, secret: str,
                       requested: frozenset[Permission] | None = None) -> Principal:
    """Check a client's credentials (its current secret, or the previous one within its
    overlap window), settle the token's scopes and collect its grants.

    Runs under the platform scope, because the client's tenant is not known until its row
    is found. Records the request as the client's last use (``last_used_at``), committed with
    the token request."""
    now = utcnow()
    row = (await session.execute(
        select(ApiClient, PrincipalRow.status)
        .join(PrincipalRow, of_principal(ApiClient))
        .where(ApiClient.client_id == client_id)
    )).first()
    if not _secret_matches(row[0] if row else None, secret, now) or row is None:
        raise OAuthError(401, "invalid_client", "Unknown client or wrong secret.",
                         BASIC_CHALLENGE)
    client, status = row
    if status != PrincipalStatus.ACTIVE:
        raise OAuthError(401, "invalid_client", "The client is disabled.", BASIC_CHALLENGE)
    scopes = effective_scopes(client.scopes, requested)
    try:
        principal = await principals.load(session, client.principal_id, client.tenant_id,
                                          client_id=client.client_id, scopes=scopes)
    except Problem as exc:
        if exc.code == "unit-suspended":
            raise OAuthError(400, "unauthorized_client",
                             "The client's tenant, or one of its ancestors, is suspended.") from exc
        raise
    client.last_used_at = now
    return principal
