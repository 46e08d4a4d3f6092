"""Officials signing in through their unit's OpenID Connect provider: the flow.

What happens between the redirect to the provider and its callback is kept in a
:class:`~app.identity.models.LoginFlow` row, found again by the SHA-256 of ``state``, used
once and bound to the browser that started it by a cookie holding the same ``state``. The
provider's answer is checked in :mod:`app.identity.oidc`; the official is then matched by
``match_claim`` against ``users.external_id`` in the tenant they sign in to, and an unknown
official is created just in time when the configuration allows it.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.config import Settings
from app.core.db import utcnow
from app.core.problems import Problem, invalid
from app.core.validation import is_safe_text
from app.identity import roles, users
from app.identity.access_schemas import UserCreate
from app.identity.login import AuthorizeRequest, digest
from app.identity.models import IdentityProvider, LoginFlow, PrincipalStatus, User, of_principal
from app.identity.models import Principal as PrincipalRow
from app.identity.oidc import (
    FederationFailure,
    exchange_code,
    metadata,
    validate_id_token,
)
from app.identity.permissions import Permission
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant

CALLBACK_PATH = "/oauth/federated/callback"
FLOW_TTL = timedelta(minutes=10)


def callback_uri(settings: Settings) -> str:
    return f"{settings.issuer.rstrip('/')}{CALLBACK_PATH}"


# ---- the sign-in flow --------------------------------------------------------------------


async def start(session: AsyncSession, settings: Settings, *, tenant: Tenant,
                provider: IdentityProvider, request: AuthorizeRequest) -> tuple[str, str]:
    """Record a new sign-in and return the provider's authorization URL and the ``state``."""
    found = await metadata(provider.issuer)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)
    now = utcnow()
    await session.execute(delete(LoginFlow).where(LoginFlow.tenant_id == tenant.id,
                                                  LoginFlow.expires_at <= now))
    session.add(LoginFlow(tenant_id=tenant.id, state_hash=digest(state), provider_id=provider.id,
                          nonce=nonce, code_verifier=verifier, request=request.as_dict(),
                          expires_at=now + FLOW_TTL))
    query = urlencode({
        "response_type": "code", "client_id": provider.client_id,
        "redirect_uri": callback_uri(settings), "scope": provider.scopes, "state": state,
        "nonce": nonce, "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256"})
    endpoint = found.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state


async def _pop(session: AsyncSession, state: str) -> LoginFlow | None:
    """Find a sign-in by its state and delete it: whatever happens next, it is used."""
    flow = (await session.execute(
        select(LoginFlow).where(LoginFlow.state_hash == digest(state)).with_for_update()
    )).scalar_one_or_none()
    if flow is not None:
        await session.delete(flow)
        await session.flush()
    return flow


async def take_flow(session: AsyncSession, *, state: str, bound: str | None) -> LoginFlow:
    """The sign-in this callback finishes. ``bound`` is the state this browser's cookie holds:
    a callback carrying another state (a sign-in started elsewhere, or a forged state) is
    refused, and the sign-ins involved are spent."""
    mine = await _pop(session, bound) if bound else None
    if mine is not None and bound and secrets.compare_digest(bound.encode(), state.encode()):
        if mine.expires_at <= utcnow():
            raise FederationFailure("idp-flow-expired", "The sign-in took longer than "
                                    f"{int(FLOW_TTL.total_seconds() // 60)} minutes.", flow=mine)
        return mine
    if mine is not None:
        raise FederationFailure("idp-state-mismatch", "The provider returned a state that is "
                                "not the one this browser's sign-in sent.", flow=mine)
    other = await _pop(session, state) if state else None
    if other is not None:
        raise FederationFailure("idp-state-mismatch", "This sign-in was started in another "
                                "browser.", flow=other)
    raise FederationFailure("idp-state-unknown", "No sign-in is waiting for this state: it is "
                            "unknown, expired or already used.")


def authorize_request(flow: LoginFlow) -> AuthorizeRequest:
    """The platform authorization request the sign-in will answer."""
    saved = flow.request
    return AuthorizeRequest(str(saved["client_id"]), str(saved["redirect_uri"]),
                            str(saved["code_challenge"]), saved.get("state"), saved.get("scope"))


async def authenticate(settings: Settings, *, flow: LoginFlow, provider: IdentityProvider,
                       params: Mapping[str, str]) -> dict[str, Any]:
    """Turn the provider's answer into validated ID-token claims."""
    returned_issuer = params.get("iss")
    if returned_issuer is not None and returned_issuer != provider.issuer:
        # RFC 9207: the answer comes from another provider than the one this sign-in used.
        raise FederationFailure("idp-wrong-issuer", "The authorization response names the "
                                f"issuer '{returned_issuer[:200]}'.", flow=flow)
    error = params.get("error")
    if error == "access_denied":
        raise FederationFailure("idp-denied", "The provider did not let the official sign in.",
                                flow=flow)
    if error is not None:
        raise FederationFailure("idp-error", f"The provider answered error='{error[:64]}'.",
                                flow=flow)
    code = params.get("code")
    if not code:
        raise FederationFailure("idp-missing-code", "The provider's answer has no code.",
                                flow=flow)
    found = await metadata(provider.issuer)
    id_token = await exchange_code(provider, found, code, flow.code_verifier,
                                   callback_uri(settings))
    return await validate_id_token(id_token, issuer=provider.issuer,
                                   client_id=provider.client_id, nonce=flow.nonce,
                                   jwks_uri=found.jwks_uri)


# ---- the official ------------------------------------------------------------------------

_EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,255}$")
_NOT_USERNAME = re.compile(r"[^a-z0-9._@-]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME_BASE_MAX = 56  # leaves room for a "-N" suffix within the 64 allowed


@dataclass(frozen=True)
class ProviderCaller:
    """The provider creating an official just in time, as the caller of
    :func:`app.identity.users.create` at the sign-in tenant (the only place it is used): it
    holds what its configuration grants, creating users with the configured roles."""

    issuer: str
    permissions: frozenset[Permission]

    @property
    def actor(self) -> str:
        return f"idp:{self.issuer}"

    def permissions_at(self, path: str) -> frozenset[Permission]:
        return self.permissions

    def permissions_above(self, path: str) -> frozenset[Permission]:
        return frozenset()


def external_id(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _EXTERNAL_ID.match(value):
        raise FederationFailure("idp-claim-missing", f"The ID token has no usable '{claim}' "
                                "claim to recognise the official by.")
    return value


async def resolve_user(session: AsyncSession, *, tenant: Tenant, provider: IdentityProvider,
                       claims: Mapping[str, Any]) -> User:
    """The official the claims name in ``tenant``: matched, or created just in time."""
    value = external_id(claims, provider.match_claim)
    row = (await session.execute(
        select(User, PrincipalRow.status)
        .join(PrincipalRow, of_principal(User))
        .where(User.tenant_id == tenant.id, User.external_id == value)
    )).first()
    if row is not None:
        if row[1] != PrincipalStatus.ACTIVE:
            raise FederationFailure("idp-user-disabled", "This official's account is disabled.",
                                    subject=value)
        return row[0]
    if not provider.jit_enabled:
        raise FederationFailure("idp-user-unknown", f"No official of '{tenant.code}' has this "
                                f"{provider.match_claim}; ask the unit's administrator.",
                                subject=value)
    return await _create_just_in_time(session, tenant, provider, claims, value)


def _slug(value: str) -> str:
    ascii_only = unicodedata.normalize(
        "NFKD", value.replace("đ", "d").replace("Đ", "D")).encode("ascii", "ignore").decode()
    slug = re.sub(r"\.{2,}", ".", _NOT_USERNAME.sub(".", ascii_only.lower()))
    return slug.strip("._@-")[:_USERNAME_BASE_MAX].rstrip("._@-")


def username_base(claims: Mapping[str, Any]) -> str:
    """A username from ``preferred_username``, the e-mail's local part or ``name``: ASCII,
    lower case, unaccented (``Đặng Thị Hà`` → ``dang.thi.ha``)."""
    email = claims.get("email")
    for candidate in (claims.get("preferred_username"),
                      email.partition("@")[0] if isinstance(email, str) else None,
                      claims.get("name")):
        if isinstance(candidate, str) and len(slug := _slug(candidate)) >= 2:
            return slug
    return "user"


async def _free_username(session: AsyncSession, tenant: Tenant, base: str) -> str:
    taken = set((await session.execute(
        select(User.username).where(User.tenant_id == tenant.id,
                                    User.username.startswith(base, autoescape=True))
    )).scalars())
    suffix = 2
    name = base
    while name in taken:
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def _display_name(claims: Mapping[str, Any], fallback: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str):
        parts = [claims.get(k) for k in ("family_name", "middle_name", "given_name")]
        name = " ".join(p for p in parts if isinstance(p, str))
    name = " ".join(name.split())[:255]
    return name if name and is_safe_text(name) else fallback


def _email(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if (isinstance(email, str) and len(email) <= 255 and _EMAIL.match(email)
            and claims.get("email_verified") is not False):
        return email
    return None


async def _create_just_in_time(session: AsyncSession, tenant: Tenant,
                               provider: IdentityProvider, claims: Mapping[str, Any],
                               value: str) -> User:
    heads = audit.chain_heads(session)
    savepoint = await session.begin_nested()
    try:
        granted: set[Permission] = {Permission.USERS_WRITE}
        home = (await tenants.by_ids(session, [provider.tenant_id]))[provider.tenant_id]
        for index, key in enumerate(provider.jit_roles):
            here = await roles.resolve(session, tenant, key, f"/jit_roles/{index}")
            # The roles are those the provider's admin delegated: a same-named role defined
            # lower down must not change what officials get.
            there = await roles.resolve(session, home, key, f"/jit_roles/{index}")
            if here.tenant_id != there.tenant_id:
                raise invalid(f"/jit_roles/{index}", f"Role '{key}' is redefined below the "
                              "unit that configured the provider.", code="jit-role-shadowed")
            granted |= there.permissions
        username = await _free_username(session, tenant, username_base(claims))
        data = UserCreate(username=username, display_name=_display_name(claims, username),
                          email=_email(claims), external_id=value, roles=provider.jit_roles)
        created = await users.create(session, caller=ProviderCaller(provider.issuer,
                                                                    frozenset(granted)),
                                     tenant=tenant, data=data)
        created.user.password_hash = None  # signs in through the provider only
        await session.flush()
        await savepoint.commit()
    except (Problem, IntegrityError, ValidationError) as exc:
        await savepoint.rollback()
        audit.restore_chain_heads(session, heads)
        reason = exc.detail if isinstance(exc, Problem) and exc.detail else type(exc).__name__
        raise FederationFailure("idp-jit-failed", f"The official could not be created: "
                                f"{reason}", subject=value) from exc
    return created.user
