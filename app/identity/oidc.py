"""Talking to an OpenID Connect provider as its relying party: discovery, the code exchange
(authlib's client, ``client_secret_basic`` and PKCE) and ID-token validation (signature against
the provider's published keys, RS256 or ES256 only; ``iss``, ``aud``/``azp``,
``exp``/``iat``/``nbf`` with a small leeway, ``nonce``).

Every failure is a :class:`FederationFailure` with a distinct ``code``; the endpoints audit
it in the sign-in tenant and answer with a problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.base_client.errors import (  # type: ignore[import-untyped]
    OAuthError,
)
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from app.core.problems import Problem
from app.identity.idp_schemas import url_problem
from app.identity.models import IdentityProvider, LoginFlow

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


# ---- talking to the provider -------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


logger = logging.getLogger("nentang.identity")
_UNAVAILABLE = "The provider's {what} could not be fetched; ask the unit's administrator."
_metadata: dict[str, tuple[float, Metadata]] = {}
_key_sets: dict[str, tuple[float, KeySet]] = {}


async def _get_json(url: str, what: str) -> Any:
    """GET a JSON document from the provider: no redirects, a timeout, every failure a 502."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        logger.warning("identity provider unreachable",
                       extra={"url": url, "error": type(exc).__name__})
        raise FederationFailure("idp-unavailable", _UNAVAILABLE.format(what=what)) from exc
    if response.status_code != 200:
        # The same answer whatever went wrong, so the endpoint cannot map a network.
        logger.warning("identity provider answered an error",
                       extra={"url": url, "status": response.status_code})
        raise FederationFailure("idp-unavailable", _UNAVAILABLE.format(what=what))
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


async def exchange_code(provider: IdentityProvider, found: Metadata, code: str,
                        verifier: str, redirect_uri: str) -> str:
    """Redeem the provider's code at its token endpoint and return the ID token."""
    client = AsyncOAuth2Client(
        client_id=provider.client_id, client_secret=provider.client_secret,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
        redirect_uri=redirect_uri, timeout=HTTP_TIMEOUT, follow_redirects=False)
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
