"""Signing officials in: the platform's own authorization server for its web UI and for
officials' command-line tools (authorization code + PKCE, RFC 6749 §4.1 and RFC 7636), with
rotating refresh tokens (RFC 9700 §4.14) and revocation (RFC 7009).

The first-party public clients are fixed: ``nentang-ui`` (redirect URIs from
``NENTANG_UI_REDIRECT_URIS``) and ``nentang-cli`` (any port on the loopback interface,
RFC 8252 §7.3). Neither has a secret, so PKCE with S256 is mandatory.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.config import Settings
from app.core.db import utcnow
from app.identity import passwords, principals
from app.identity.access_schemas import USERNAME_PATTERN
from app.identity.callers import Principal
from app.identity.clients import OAuthError
from app.identity.models import AuthorizationCode, PrincipalStatus, RefreshToken, User, of_principal
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import KNOWN_PERMISSIONS, Permission
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant
from app.tenancy.schemas import TENANT_CODE_PATTERN

UI_CLIENT = "nentang-ui"
CLI_CLIENT = "nentang-cli"
PUBLIC_CLIENTS = (UI_CLIENT, CLI_CLIENT)
CODE_TTL = timedelta(seconds=120)
_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ui_callback(settings: Settings) -> str:
    """Where the web UI served by this service at ``/admin`` receives its code."""
    return f"{settings.issuer.rstrip('/')}/admin/callback"


class BadClient(Exception):
    """The client or redirect URI is wrong: never redirect back (RFC 6749 §4.1.2.1)."""


def check_redirect(settings: Settings, client_id: str, redirect_uri: str) -> None:
    if client_id == UI_CLIENT:
        if redirect_uri in settings.ui_redirect_uris or redirect_uri == ui_callback(settings):
            return
        raise BadClient("This redirect_uri is not registered for the web UI.")
    if client_id == CLI_CLIENT:
        parts = urlsplit(redirect_uri)
        if (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
                and not parts.username and not parts.fragment):
            return
        raise BadClient("Command-line clients must redirect to http://127.0.0.1:<port>/.")
    raise BadClient("Unknown client_id.")


def parse_scope(value: str | None) -> frozenset[Permission] | None:
    """An OAuth ``scope`` of permission names narrows a token; absent means no narrowing."""
    if value is None or not value.strip():
        return None
    names = value.split()
    unknown = [n for n in names if n not in KNOWN_PERMISSIONS]
    if unknown:
        raise OAuthError(400, "invalid_scope", f"Unknown scope: {', '.join(unknown)}.")
    return frozenset(Permission(n) for n in names)


@dataclass(frozen=True)
class AuthorizeRequest:
    """The parameters of an authorization request, validated."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str | None
    scope: str | None

    def error_redirect(self, error: str, description: str, issuer: str) -> str:
        params = {"error": error, "error_description": description, "iss": issuer}
        if self.state is not None:
            params["state"] = self.state
        return f"{self.redirect_uri}{'&' if '?' in self.redirect_uri else '?'}{urlencode(params)}"

    def as_dict(self) -> dict[str, str | None]:
        return {"client_id": self.client_id, "redirect_uri": self.redirect_uri,
                "code_challenge": self.code_challenge, "state": self.state,
                "scope": self.scope}


class AuthorizeError(Exception):
    """Reported to the client by redirect (the client and redirect URI were fine)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def parse_authorize(settings: Settings, params: dict[str, str]) -> AuthorizeRequest:
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    check_redirect(settings, client_id, redirect_uri)
    request = AuthorizeRequest(client_id, redirect_uri, params.get("code_challenge", ""),
                               params.get("state"), params.get("scope") or None)
    if params.get("response_type") != "code":
        raise AuthorizeError("unsupported_response_type", "Only response_type=code.")
    if params.get("code_challenge_method") != "S256":
        raise AuthorizeError("invalid_request", "PKCE with code_challenge_method=S256 is "
                             "required.")
    if not 43 <= len(request.code_challenge) <= 128:
        raise AuthorizeError("invalid_request", "code_challenge must be 43 to 128 characters.")
    try:
        parse_scope(request.scope)
    except OAuthError as exc:
        raise AuthorizeError("invalid_scope", exc.detail or "Unknown scope.") from exc
    return request


@dataclass
class LoginFailure(Exception):
    """A sign-in the form reports back to the person (status and a code for the page)."""

    status: int
    code: str
    message: str


def _bad_credentials() -> LoginFailure:
    return LoginFailure(401, "bad-credentials", "Sai đơn vị, tên đăng nhập hoặc mật khẩu, hoặc "
                        "tài khoản đang tạm khoá do đăng nhập sai nhiều lần.")
TENANT_CODE = re.compile(TENANT_CODE_PATTERN)
USERNAME = re.compile(USERNAME_PATTERN)


async def password_login(session: AsyncSession, settings: Settings, *, tenant_code: str,
                         username: str, password: str, totp: str) -> tuple[Tenant, User]:
    """Check a local sign-in. Failures are counted on the account and audited; the caller
    must commit even when this raises :class:`LoginFailure`, so the count sticks."""
    username = username.lower()
    if len(password) > passwords.MAX_PASSWORD_LENGTH:
        raise _bad_credentials()  # no account has one this long: do not spend Argon2 on it
    tenant = (await tenants.get_by_code(session, tenant_code)
              if TENANT_CODE.match(tenant_code) else None)
    user, status = None, None
    if tenant is not None and USERNAME.match(username):
        # The row lock makes concurrent attempts on one account take turns, so every failure
        # is counted and a TOTP step is accepted once (PostgreSQL; SQLite serialises writes).
        found = (await session.execute(
            select(User, PrincipalRow.status)
            .join(PrincipalRow, of_principal(User))
            .where(User.tenant_id == tenant.id, User.username == username)
            .with_for_update(of=User)
        )).first()
        if found is not None:
            user, status = found
    if tenant is not None and user is not None and (
            passwords.is_locked(user) or status != PrincipalStatus.ACTIVE):
        # A locked or disabled account looks like a wrong password, after the same work.
        await passwords.check_password(None, password)
        reason = "locked" if passwords.is_locked(user) else "disabled"
        await _audit_failure(session, tenant, username, reason)
        raise _bad_credentials()
    ok = await passwords.check_password(user, password)
    if not ok or user is None or tenant is None:
        if user is not None and tenant is not None:
            passwords.record_failure(user, max_failures=settings.login_max_failures,
                                     base_seconds=settings.login_lockout_seconds)
            await _audit_failure(session, tenant, username, "bad-password")
        raise _bad_credentials()
    if user.totp_required:
        if user.totp_secret is None:
            await _audit_failure(session, tenant, username, "totp-not-enrolled")
            raise LoginFailure(403, "totp-not-enrolled", "Tài khoản cần mã TOTP nhưng chưa "
                               "đăng ký; hãy liên hệ quản trị viên.")
        if not totp:
            raise LoginFailure(401, "totp-required", "Nhập mã xác thực 6 số từ ứng dụng.")
        if not passwords.check_totp(user, totp.strip()):
            passwords.record_failure(user, max_failures=settings.login_max_failures,
                                     base_seconds=settings.login_lockout_seconds)
            await _audit_failure(session, tenant, username, "bad-totp")
            raise LoginFailure(401, "bad-totp", "Mã xác thực không đúng hoặc đã dùng.")
    passwords.record_success(user)
    return tenant, user


async def _audit_failure(session: AsyncSession, tenant: Tenant, username: str,
                         reason: str) -> None:
    await audit.record(session, tenant_id=tenant.id, actor=f"user:{username}",
                       action="login.failed", resource_type="user", resource_id=username,
                       after={"reason": reason})


async def issue_code(session: AsyncSession, settings: Settings, *, tenant: Tenant,
                     principal_id: uuid.UUID, actor: str, request: AuthorizeRequest,
                     method: str) -> str:
    """Make a one-time code for ``request`` and return the redirect that carries it."""
    await principals.load(session, principal_id, tenant.id, client_id=request.client_id)
    code = secrets.token_urlsafe(32)
    session.add(AuthorizationCode(
        tenant_id=tenant.id, code_hash=digest(code), principal_id=principal_id,
        client_id=request.client_id, redirect_uri=request.redirect_uri,
        code_challenge=request.code_challenge, scope=request.scope,
        expires_at=utcnow() + CODE_TTL))
    await audit.record(session, tenant_id=tenant.id, actor=actor, action="login.succeeded",
                       resource_type="principal", resource_id=str(principal_id),
                       after={"method": method, "client_id": request.client_id})
    params = {"code": code, "iss": settings.issuer}
    if request.state is not None:
        params["state"] = request.state
    sep = "&" if "?" in request.redirect_uri else "?"
    return f"{request.redirect_uri}{sep}{urlencode(params)}"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


@dataclass
class IssuedSession:
    principal: Principal
    refresh_token: str
    scope: str | None


async def redeem_code(session: AsyncSession, settings: Settings, *, client_id: str, code: str,
                      redirect_uri: str, verifier: str) -> IssuedSession:
    if client_id not in PUBLIC_CLIENTS:
        raise OAuthError(401, "invalid_client", "Unknown client.")
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= _VERIFIER_CHARS:
        raise OAuthError(400, "invalid_grant", "code_verifier is malformed.")
    row = (await session.execute(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code))
        .with_for_update()
    )).scalar_one_or_none()
    invalid = OAuthError(400, "invalid_grant", "The code is invalid, expired or already used.")
    if row is not None and row.used_at is not None and row.client_id == client_id:
        # A code presented twice was intercepted: end the session it started (RFC 6749
        # §4.1.2). The session's family id is the code's id.
        await revoke_family(session, row.tenant_id, row.id)
        await audit.record(session, tenant_id=row.tenant_id, actor=f"client:{client_id}",
                           action="session.code_reuse", resource_type="principal",
                           resource_id=str(row.principal_id), after={"family": str(row.id)})
        raise CodeReuse()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise invalid
    row.used_at = utcnow()
    if row.client_id != client_id or row.redirect_uri != redirect_uri:
        raise invalid
    if not secrets.compare_digest(_s256(verifier), row.code_challenge):
        raise OAuthError(400, "invalid_grant", "PKCE verification failed.")
    scopes = parse_scope(row.scope)
    principal = await principals.load(session, row.principal_id, row.tenant_id,
                                      client_id=client_id, scopes=scopes)
    token = await _new_refresh(
        session, principal, row.id, row.scope,
        utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds))
    return IssuedSession(principal, token, row.scope)


async def _new_refresh(session: AsyncSession, principal: Principal, family: uuid.UUID,
                       scope: str | None, expires_at: datetime) -> str:
    """A refresh token of session ``family``. Rotation hands on the session's expiry
    unchanged: a session lasts ``refresh_token_ttl_seconds`` from sign-in, however often it
    is refreshed."""
    token = secrets.token_urlsafe(32)
    session.add(RefreshToken(
        tenant_id=principal.home_tenant_id, token_hash=digest(token), family_id=family,
        principal_id=principal.id, client_id=principal.client_id, scope=scope,
        expires_at=expires_at))
    return token


class RefreshReuse(Exception):
    """A rotated refresh token came back: its family has been revoked (commit, then 400)."""


class CodeReuse(Exception):
    """A used authorization code came back: its session has been revoked (commit, then 400)."""


async def refresh(session: AsyncSession, *, client_id: str, token: str) -> IssuedSession:
    row = (await session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == digest(token)).with_for_update()
    )).scalar_one_or_none()
    invalid = OAuthError(400, "invalid_grant", "The refresh token is invalid, expired or revoked.")
    if row is None or row.client_id != client_id:
        raise invalid
    if row.revoked_at is not None or row.expires_at <= utcnow():
        raise invalid
    if row.rotated_at is not None:
        await revoke_family(session, row.tenant_id, row.family_id)
        await audit.record(session, tenant_id=row.tenant_id, actor=f"client:{client_id}",
                           action="session.refresh_reuse", resource_type="principal",
                           resource_id=str(row.principal_id),
                           after={"family": str(row.family_id)})
        raise RefreshReuse()
    row.rotated_at = utcnow()
    principal = await principals.load(session, row.principal_id, row.tenant_id,
                                      client_id=client_id, scopes=parse_scope(row.scope))
    new = await _new_refresh(session, principal, row.family_id, row.scope, row.expires_at)
    return IssuedSession(principal, new, row.scope)


async def revoke_family(session: AsyncSession, tenant_id: uuid.UUID, family: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.tenant_id == tenant_id, RefreshToken.family_id == family,
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()))


async def end_sessions(session: AsyncSession, tenant_id: uuid.UUID,
                       principal_id: uuid.UUID) -> None:
    """Revoke every refresh token of a principal: after a password reset, a new TOTP secret
    or disabling, no session started before it can be renewed."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.tenant_id == tenant_id, RefreshToken.principal_id == principal_id,
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()))


async def revoke(session: AsyncSession, *, client_id: str, token: str) -> None:
    """RFC 7009: revoke the refresh token's whole session; unknown tokens are not an error."""
    row = (await session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == digest(token))
    )).scalar_one_or_none()
    if row is None or row.client_id != client_id:
        return
    await revoke_family(session, row.tenant_id, row.family_id)
    await audit.record(session, tenant_id=row.tenant_id, actor=f"client:{client_id}",
                       action="session.revoke", resource_type="principal",
                       resource_id=str(row.principal_id), after={"family": str(row.family_id)})
