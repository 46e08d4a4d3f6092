"""Officials signing in through their unit's OpenID Connect provider.

The platform is the relying party: authorization code with PKCE (S256), the provider's
client authenticated with ``client_secret_basic``, and the ID token validated here (signature
against the provider's published keys, RS256 or ES256 only; ``iss``, ``aud``/``azp``,
``exp``/``iat``/``nbf`` with a small leeway, ``nonce``). What happens in between is kept in a
:class:`~app.identity.models.LoginFlow` row, found again by the SHA-256 of ``state``, used
once and bound to the browser that started it by a cookie holding the same ``state``.

A tenant's provider is *inherited*: a commune without one of its own signs in through its
province's. Its officials are matched by ``match_claim`` against ``users.external_id`` in the
tenant they sign in to; an unknown official is created just in time when the configuration
allows it, with the configured roles at that tenant.

Every failure is a :class:`FederationFailure` with a distinct ``code``; the endpoints audit
it in the sign-in tenant and answer with a problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client.errors import (  # type: ignore[import-untyped]
    OAuthError,
)
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.config import Settings
from app.core.db import utcnow
from app.core.problems import Problem, invalid, not_found
from app.core.validation import is_safe_text
from app.identity import grants, roles, users
from app.identity.access_schemas import UserCreate
from app.identity.callers import Caller
from app.identity.idp_schemas import IdentityProviderIn, url_problem
from app.identity.login import AuthorizeRequest, digest
from app.identity.models import IdentityProvider, LoginFlow, PrincipalStatus, User
from app.identity.models import Principal as PrincipalRow
from app.identity.permissions import Permission
from app.identity.policy import authorize, check_delegable
from app.identity.principals import path_ids
from app.tenancy import repository as tenants
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

CALLBACK_PATH = "/oauth/federated/callback"
FLOW_TTL = timedelta(minutes=10)
LEEWAY_SECONDS = 60
HTTP_TIMEOUT = httpx.Timeout(10.0)
CACHE_SECONDS = 300.0
"""Discovery documents and key sets are reused this long; an unknown ``kid`` refetches keys."""
ALGORITHMS = ("RS256", "ES256")

_FAILURES: dict[str, tuple[int, str, str]] = {
    "idp-not-configured": (404, "Đơn vị chưa có nhà cung cấp định danh",
                           "No identity provider for this unit"),
    "idp-unavailable": (502, "Không liên lạc được với nhà cung cấp định danh",
                        "Identity provider unavailable"),
    "idp-bad-discovery": (502, "Thông tin cấu hình của nhà cung cấp định danh không hợp lệ",
                          "Invalid identity provider metadata"),
    "idp-wrong-issuer": (401, "Sai định danh nhà cung cấp (issuer)", "Wrong issuer"),
    "idp-state-unknown": (400, "Phiên đăng nhập không tồn tại hoặc đã được dùng",
                          "Unknown or used sign-in"),
    "idp-state-mismatch": (400, "Phiên đăng nhập không khớp với trình duyệt",
                           "Sign-in state mismatch"),
    "idp-flow-expired": (400, "Phiên đăng nhập đã hết hạn", "Sign-in expired"),
    "idp-denied": (403, "Nhà cung cấp định danh từ chối đăng nhập",
                   "Sign-in denied by the identity provider"),
    "idp-error": (400, "Nhà cung cấp định danh báo lỗi", "Identity provider error"),
    "idp-missing-code": (400, "Thiếu mã ủy quyền", "Missing authorization code"),
    "idp-code-rejected": (400, "Nhà cung cấp định danh không chấp nhận mã ủy quyền",
                          "Authorization code rejected"),
    "idp-client-rejected": (502, "Nhà cung cấp định danh từ chối ứng dụng của đơn vị",
                            "Client rejected by the identity provider"),
    "idp-no-id-token": (502, "Không nhận được ID token", "No ID token"),
    "idp-malformed-token": (401, "ID token không hợp lệ", "Malformed ID token"),
    "idp-alg-none": (401, "ID token không được ký", "Unsigned ID token"),
    "idp-bad-algorithm": (401, "Thuật toán ký ID token không được chấp nhận",
                          "ID token algorithm not accepted"),
    "idp-bad-signature": (401, "Chữ ký ID token không hợp lệ", "Invalid ID token signature"),
    "idp-wrong-audience": (401, "ID token không dành cho đơn vị này", "Wrong ID token audience"),
    "idp-token-expired": (401, "ID token đã hết hạn", "ID token expired"),
    "idp-token-not-yet-valid": (401, "ID token chưa có hiệu lực", "ID token not yet valid"),
    "idp-nonce-mismatch": (401, "ID token không khớp với phiên đăng nhập", "Nonce mismatch"),
    "idp-claim-missing": (403, "Thiếu thông tin định danh người dùng", "Matching claim missing"),
    "idp-user-unknown": (403, "Tài khoản chưa được đăng ký tại đơn vị", "Unknown official"),
    "idp-user-disabled": (403, "Tài khoản đã bị vô hiệu hoá", "Account disabled"),
    "idp-jit-failed": (403, "Không tạo được tài khoản", "Just-in-time creation failed"),
}


class FederationFailure(Exception):
    """A federated sign-in that cannot go on. ``flow`` is the sign-in it ends, when known (its
    tenant gets the audit record); ``subject`` names the official, when known."""

    def __init__(self, code: str, detail: str, *, status: int | None = None,
                 flow: LoginFlow | None = None, subject: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail
        self.status = status or _FAILURES[code][0]
        self.flow, self.subject = flow, subject

    def problem(self) -> Problem:
        _, title_vi, title_en = _FAILURES[self.code]
        return Problem(self.status, self.code, title_vi, title_en, detail=self.detail)


def callback_uri(settings: Settings) -> str:
    return f"{settings.issuer.rstrip('/')}{CALLBACK_PATH}"


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


async def put(session: AsyncSession, *, caller: Caller, tenant: Tenant,
              data: IdentityProviderIn) -> IdentityProvider:
    """Set the tenant's own provider. Whoever controls the provider signs in as every linked
    user below, so the caller must hold all their permissions; and officials created just in
    time get ``jit_roles``, so setting them is delegating them."""
    authorize(caller, Permission.IDP_WRITE, tenant)
    await grants.check_may_manage_linked_users(session, caller, tenant)
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


# ---- talking to the provider -------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_metadata: dict[str, tuple[float, Metadata]] = {}
_key_sets: dict[str, tuple[float, KeySet]] = {}


async def _get_json(url: str, what: str) -> Any:
    """GET a JSON document from the provider: no redirects, a timeout, every failure a 502."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise FederationFailure("idp-unavailable", f"The provider's {what} could not be "
                                f"fetched ({type(exc).__name__}).") from exc
    if response.status_code != 200:
        raise FederationFailure("idp-unavailable",
                                f"The provider's {what} answered HTTP {response.status_code}.")
    try:
        return response.json()
    except ValueError as exc:
        raise FederationFailure("idp-bad-discovery", f"The provider's {what} is not JSON."
                                ) from exc


async def metadata(issuer: str) -> Metadata:
    """The provider's discovery document, whose ``issuer`` must be the configured one exactly
    (OpenID Connect Discovery §4.3)."""
    cached = _metadata.get(issuer)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    document = await _get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration",
                               "discovery document")
    if not isinstance(document, dict):
        raise FederationFailure("idp-bad-discovery", "The discovery document is not an object.")
    if document.get("issuer") != issuer:
        named = str(document.get("issuer"))[:200]
        raise FederationFailure("idp-wrong-issuer", f"The provider's discovery document names "
                                f"the issuer '{named}', not the configured '{issuer}'.",
                                status=502)
    endpoints: list[str] = []
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or url_problem(value) is not None:
            raise FederationFailure("idp-bad-discovery", f"The discovery document's {name} is "
                                    "missing or not an https URL.")
        endpoints.append(value)
    found = Metadata(issuer, *endpoints)
    _metadata[issuer] = (time.monotonic() + CACHE_SECONDS, found)
    return found


async def _keys(jwks_uri: str, *, refresh: bool) -> KeySet:
    cached = _key_sets.get(jwks_uri)
    if cached is not None and cached[0] > time.monotonic() and not refresh:
        return cached[1]
    document = await _get_json(jwks_uri, "key set")
    listed = document.get("keys") if isinstance(document, dict) else None
    usable = [k for k in listed or [] if isinstance(k, dict) and k.get("kty") in ("RSA", "EC")
              and k.get("use", "sig") == "sig"]
    try:
        key_set = KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise FederationFailure("idp-bad-discovery", "The provider's key set cannot be read."
                                ) from exc
    _key_sets[jwks_uri] = (time.monotonic() + CACHE_SECONDS, key_set)
    return key_set


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
    id_token = await _exchange(settings, provider, found, code, flow.code_verifier)
    return await validate_id_token(id_token, issuer=provider.issuer,
                                   client_id=provider.client_id, nonce=flow.nonce,
                                   jwks_uri=found.jwks_uri)


async def _exchange(settings: Settings, provider: IdentityProvider, found: Metadata, code: str,
                    verifier: str) -> str:
    client = AsyncOAuth2Client(
        client_id=provider.client_id, client_secret=provider.client_secret,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
        redirect_uri=callback_uri(settings), timeout=HTTP_TIMEOUT, follow_redirects=False)
    try:
        async with client:
            token = await client.fetch_token(found.token_endpoint, grant_type="authorization_code",
                                             code=code, code_verifier=verifier)
    except OAuthError as exc:
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise FederationFailure("idp-client-rejected", "The provider refused the unit's "
                                    f"client credentials ({exc.error}).") from exc
        raise FederationFailure("idp-code-rejected",
                                f"The provider refused the code ({str(exc.error)[:64]})."
                                ) from exc
    except httpx.HTTPStatusError as exc:
        raise FederationFailure("idp-unavailable", "The provider's token endpoint answered "
                                f"HTTP {exc.response.status_code}.") from exc
    except httpx.HTTPError as exc:
        raise FederationFailure("idp-unavailable", "The provider's token endpoint could not be "
                                f"reached ({type(exc).__name__}).") from exc
    except ValueError as exc:
        raise FederationFailure("idp-unavailable", "The provider's token endpoint did not "
                                "answer with JSON.") from exc
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise FederationFailure("idp-no-id-token", "The token response has no ID token.")
    return id_token


# ---- ID-token validation -----------------------------------------------------------------


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        raw = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise FederationFailure("idp-malformed-token", "The ID token is not a signed JWT."
                                ) from exc
    if not isinstance(header, dict):
        raise FederationFailure("idp-malformed-token", "The ID token's header is not an object.")
    return header


async def _verified_claims(token: str, alg: str, jwks_uri: str) -> dict[str, Any]:
    for refresh in (False, True):
        keys = await _keys(jwks_uri, refresh=refresh)
        try:
            return dict(jwt.decode(token, keys, algorithms=[alg]).claims)
        except InvalidKeyIdError as exc:
            if refresh:
                raise FederationFailure("idp-bad-signature", "No key of the provider matches "
                                        "the ID token.") from exc
        except BadSignatureError as exc:
            raise FederationFailure("idp-bad-signature", "The ID token's signature does not "
                                    "verify with the provider's keys.") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise FederationFailure("idp-malformed-token", "The ID token cannot be read."
                                    ) from exc
    raise AssertionError("unreachable")


def _time(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise FederationFailure("idp-malformed-token", f"The ID token's '{name}' is missing or "
                                "not a number.")
    return float(value)


def check_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str,
                 now: float) -> None:
    """OpenID Connect Core §3.1.3.7, steps 2 to 4, 9, 10 and 11."""
    if claims.get("iss") != issuer:
        raise FederationFailure("idp-wrong-issuer", "The ID token was issued by "
                                f"'{str(claims.get('iss'))[:200]}', not '{issuer}'.")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise FederationFailure("idp-wrong-audience", "The ID token is not meant for this "
                                "unit's client.")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise FederationFailure("idp-wrong-audience", "The ID token's authorized party (azp) "
                                "is not this unit's client.")
    exp, iat = _time(claims, "exp"), _time(claims, "iat")
    nbf = _time(claims, "nbf") if claims.get("nbf") is not None else iat
    if exp <= now - LEEWAY_SECONDS:
        raise FederationFailure("idp-token-expired", "The ID token has expired.")
    if max(iat, nbf) > now + LEEWAY_SECONDS:
        raise FederationFailure("idp-token-not-yet-valid", "The ID token is dated in the future.")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not secrets.compare_digest(
            token_nonce.encode(), nonce.encode()):
        raise FederationFailure("idp-nonce-mismatch", "The ID token does not belong to this "
                                "sign-in (nonce).")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise FederationFailure("idp-malformed-token", "The ID token has no subject.")


async def validate_id_token(token: str, *, issuer: str, client_id: str, nonce: str,
                            jwks_uri: str) -> dict[str, Any]:
    alg = _header(token).get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise FederationFailure("idp-alg-none", "The ID token is not signed (alg=none).")
    if alg not in ALGORITHMS:
        raise FederationFailure("idp-bad-algorithm", f"The ID token is signed with "
                                f"'{alg[:16]}'; only {', '.join(ALGORITHMS)} are accepted.")
    claims = await _verified_claims(token, alg, jwks_uri)
    check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce, now=time.time())
    return claims


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
        .join(PrincipalRow, (PrincipalRow.tenant_id == User.tenant_id)
              & (PrincipalRow.id == User.principal_id))
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
