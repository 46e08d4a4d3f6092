"""Users: officials of a tenant, created by its admins (one by one or in bulk) or just in time
at their first federated sign-in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import conflict, invalid, not_found
from app.identity import grants, login, passwords, roles
from app.identity.access_schemas import UserCreate, UserOut, UserUpdate
from app.identity.callers import Caller
from app.identity.models import Principal as PrincipalRow
from app.identity.models import PrincipalKind, PrincipalStatus, RoleGrant, User, of_principal
from app.identity.permissions import Permission
from app.identity.policy import authorize, check_delegable
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage


@dataclass
class NewUser:
    user: User
    status: str
    initial_password: str | None
    totp_uri: str | None


def to_out(user: User, status: str, tenant_code: str) -> UserOut:
    return UserOut(id=user.principal_id, tenant=tenant_code, username=user.username,
                   display_name=user.display_name, email=user.email,
                   external_id=user.external_id, status=status,
                   totp_required=user.totp_required, totp_enrolled=user.totp_secret is not None,
                   locked_until=user.locked_until, last_login_at=user.last_login_at,
                   created_at=user.created_at)


def snapshot(user: User, status: str) -> dict[str, object]:
    """What the audit trail keeps: never a hash or a secret."""
    return {"username": user.username, "display_name": user.display_name, "email": user.email,
            "external_id": user.external_id, "status": status,
            "totp_required": user.totp_required}


async def _check_unique(session: AsyncSession, tenant: Tenant, username: str,
                        external_id: str | None) -> None:
    taken = (await session.execute(
        select(User.username).where(User.tenant_id == tenant.id, User.username == username)
    )).first()
    if taken is not None:
        raise conflict("username-taken", f"'{username}' is already a user of '{tenant.code}'.")
    if external_id is not None:
        await _check_external_id_free(session, tenant, external_id)


async def _check_external_id_free(session: AsyncSession, tenant: Tenant,
                                  external_id: str) -> None:
    linked = (await session.execute(
        select(User.username).where(User.tenant_id == tenant.id,
                                    User.external_id == external_id))).first()
    if linked is not None:
        raise conflict("external-id-taken",
                       f"Another user of '{tenant.code}' already has this external id.")


async def create(session: AsyncSession, *, caller: Caller, tenant: Tenant, data: UserCreate,
                 pointer: str = "", lock: bool = True) -> NewUser:
    """Create a user with its roles at ``tenant``, all or nothing. ``pointer`` prefixes the
    JSON Pointers of errors (bulk rows)."""
    authorize(caller, Permission.USERS_WRITE, tenant)
    resolved = [await roles.resolve(session, tenant, key, f"{pointer}/roles/{i}")
                for i, key in enumerate(dict.fromkeys(data.roles))]
    for role in resolved:
        check_delegable(caller, tenant, role.permissions, f"Role '{role.key}'")
    password = data.password
    generated = password is None
    if password is None:
        password = passwords.generate_password()
    problem = passwords.password_problems(password, data.username)
    if problem:
        raise invalid(f"{pointer}/password", problem, code="weak-password")
    if lock:
        await lock_active_lineage(session, tenant)
    await _check_unique(session, tenant, data.username, data.external_id)
    principal = PrincipalRow(tenant_id=tenant.id, kind=PrincipalKind.USER.value,
                             status=PrincipalStatus.ACTIVE.value)
    session.add(principal)
    await session.flush()
    totp_secret = passwords.new_totp_secret() if data.totp_required else None
    user = User(tenant_id=tenant.id, principal_id=principal.id, username=data.username,
                display_name=data.display_name, email=data.email, external_id=data.external_id,
                password_hash=await passwords.hash_password(password),
                totp_required=data.totp_required, totp_secret=totp_secret, failed_logins=0)
    session.add(user)
    for role in resolved:
        session.add(RoleGrant(tenant_id=tenant.id, principal_id=principal.id, role=role.key,
                              role_tenant_id=role.tenant_id, node_id=tenant.id,
                              granted_by=caller.actor))
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action="user.create",
                       resource_type="user", resource_id=str(principal.id),
                       after={**snapshot(user, principal.status),
                              "roles": [r.key for r in resolved]})
    return NewUser(user, principal.status, password if generated else None,
                   passwords.totp_uri(totp_secret, f"{data.username}@{tenant.code}")
                   if totp_secret else None)


async def _with_principal(session: AsyncSession, tenant: Tenant,
                          user_id: uuid.UUID) -> tuple[User, PrincipalRow]:
    row = (await session.execute(
        select(User, PrincipalRow)
        .join(PrincipalRow, of_principal(User))
        .where(User.tenant_id == tenant.id, User.principal_id == user_id)
    )).first()
    if row is None:
        raise not_found("user", str(user_id))
    return row[0], row[1]


async def get(session: AsyncSession, tenant: Tenant, user_id: uuid.UUID) -> tuple[User, str]:
    user, principal = await _with_principal(session, tenant, user_id)
    return user, principal.status


async def list_users(session: AsyncSession, tenant: Tenant, *, after_username: str | None,
                     limit: int) -> Sequence[tuple[User, str]]:
    stmt = (
        select(User, PrincipalRow.status)
        .join(PrincipalRow, of_principal(User))
        .where(User.tenant_id == tenant.id)
        .order_by(User.username)
        .limit(limit)
    )
    if after_username is not None:
        stmt = stmt.where(User.username > after_username)
    return [(u, s) for u, s in (await session.execute(stmt)).all()]


async def update(session: AsyncSession, *, caller: Caller, tenant: Tenant, user_id: uuid.UUID,
                 data: UserUpdate) -> tuple[User, str]:
    authorize(caller, Permission.USERS_WRITE, tenant)
    user, principal = await _with_principal(session, tenant, user_id)
    status = principal.status
    await grants.check_may_manage(session, caller, tenant, user.tenant_id, user.principal_id)
    await lock_active_lineage(session, tenant)
    before = snapshot(user, status)
    changes = data.model_dump(exclude_unset=True)
    if "external_id" in changes and changes["external_id"] not in (None, user.external_id):
        await _check_external_id_free(session, tenant, changes["external_id"])
    for field in ("display_name", "email", "external_id", "totp_required"):
        if field in changes and (changes[field] is not None or field in ("email", "external_id")):
            setattr(user, field, changes[field])
    if changes.get("status") is not None:
        principal.status = changes["status"]
        if principal.status == PrincipalStatus.ACTIVE:
            user.failed_logins, user.locked_until = 0, None
        else:
            await login.end_sessions(session, user.tenant_id, user.principal_id)
    after = snapshot(user, principal.status)
    if after == before:
        return user, principal.status
    user.updated_at = utcnow()
    await session.flush()
    action = "user.update"
    if before["status"] != after["status"]:
        action = "user.disable" if principal.status == PrincipalStatus.DISABLED else "user.enable"
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor, action=action,
                       resource_type="user", resource_id=str(user.principal_id), before=before,
                       after=after)
    return user, principal.status


async def reset_password(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                         user_id: uuid.UUID, password: str | None) -> str | None:
    """Set a new password and lift any lockout. Returns the password when generated."""
    authorize(caller, Permission.USERS_WRITE, tenant)
    user, _status = await get(session, tenant, user_id)
    await grants.check_may_manage(session, caller, tenant, user.tenant_id, user.principal_id)
    generated = password is None
    if password is None:
        password = passwords.generate_password()
    problem = passwords.password_problems(password, user.username)
    if problem:
        raise invalid("/password", problem, code="weak-password")
    await lock_active_lineage(session, tenant)
    user.password_hash = await passwords.hash_password(password)
    user.failed_logins, user.locked_until, user.updated_at = 0, None, utcnow()
    await login.end_sessions(session, user.tenant_id, user.principal_id)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="user.password_reset", resource_type="user",
                       resource_id=str(user.principal_id))
    return password if generated else None


async def enrol_totp(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                     user_id: uuid.UUID) -> tuple[str, str]:
    """Issue a new TOTP secret (replacing any old one) and require it at sign-in."""
    authorize(caller, Permission.USERS_WRITE, tenant)
    user, _status = await get(session, tenant, user_id)
    await grants.check_may_manage(session, caller, tenant, user.tenant_id, user.principal_id)
    await lock_active_lineage(session, tenant)
    secret = passwords.new_totp_secret()
    user.totp_secret, user.totp_last_step, user.totp_required = secret, None, True
    user.updated_at = utcnow()
    await login.end_sessions(session, user.tenant_id, user.principal_id)
    await session.flush()
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="user.totp_enrol", resource_type="user",
                       resource_id=str(user.principal_id))
    return secret, passwords.totp_uri(secret, f"{user.username}@{tenant.code}")
