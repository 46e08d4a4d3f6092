"""Break-glass administration from the server's command line (``nentang admin``).

When the identity provider is down or every administrator is locked out, an operator with
access to the server creates a local administrator, or resets one's password, without any
token. Both are audited with the operator's name; a reset also lifts the lockout and ends the
account's sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import Problem
from app.identity import users
from app.identity.access_schemas import UserCreate
from app.identity.callers import Operator
from app.identity.models import User
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant


class BreakGlassError(Exception):
    """Refused, with a message for the operator."""


@dataclass
class Credentials:
    tenant: str
    username: str
    password: str | None
    totp_uri: str | None


async def _tenant(session: AsyncSession, code: str) -> Tenant:
    tenant = await tenants.get_by_code(session, code)
    if tenant is None:
        raise BreakGlassError(f"No tenant '{code}'.")
    return tenant


def _explain(exc: Problem) -> BreakGlassError:
    where = "; ".join(f"{e.get('pointer', '')}: {e.get('detail', '')}" for e in exc.errors)
    return BreakGlassError(f"{exc.detail or exc.title_en}{f' ({where})' if where else ''}")


async def create_admin(session: AsyncSession, *, operator: Operator, tenant_code: str,
                       username: str, display_name: str, role: str,
                       totp: bool) -> Credentials:
    tenant = await _tenant(session, tenant_code)
    try:
        data = UserCreate(username=username, display_name=display_name, totp_required=totp,
                          roles=[role])
    except ValueError as exc:
        raise BreakGlassError(f"Invalid username or name: {exc}") from exc
    try:
        new = await users.create(session, caller=operator, tenant=tenant, data=data)
    except Problem as exc:
        raise _explain(exc) from exc
    return Credentials(tenant.code, username, new.initial_password, new.totp_uri)


async def reset_admin(session: AsyncSession, *, operator: Operator, tenant_code: str,
                      username: str) -> Credentials:
    tenant = await _tenant(session, tenant_code)
    user = (await session.execute(
        select(User).where(User.tenant_id == tenant.id, User.username == username)
    )).scalar_one_or_none()
    if user is None:
        raise BreakGlassError(f"No user '{username}' in '{tenant.code}'.")
    try:
        password = await users.reset_password(session, caller=operator, tenant=tenant,
                                              user_id=user.principal_id, password=None)
    except Problem as exc:
        raise _explain(exc) from exc
    return Credentials(tenant.code, username, password, None)
