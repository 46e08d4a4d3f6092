"""Signed JWT access tokens (RFC 9068 profile) and the key that signs them.

Tokens carry the caller's grants with each node's path, so a request is authorised and scoped
without a database round trip. They are short-lived (``NENTANG_ACCESS_TOKEN_TTL_SECONDS``,
ten minutes by default): revoking a client or suspending its tenant stops new tokens at once,
and old ones within that window.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from app.core.problems import Problem

logger = logging.getLogger("nentang.identity")
ALGORITHM = "RS256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 media type, not a secret)
AUDIENCE = "nentang-api"


def invalid_token(detail: str) -> Problem:
    return Problem(
        401, "invalid-token", "Mã truy cập không hợp lệ", "Invalid access token", detail=detail,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'},
    )


def load_or_create_key(path: Path) -> RSAKey:
    """Load the PEM signing key, creating it (mode 0600) the first time."""
    if path.exists():
        return RSAKey.import_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, private=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return RSAKey.import_key(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
    logger.info("generated a new token signing key", extra={"key_file": str(path)})
    return key


class TokenService:
    def __init__(self, key: RSAKey, issuer: str, ttl_seconds: int) -> None:
        self.key = key
        self.kid = key.thumbprint()
        self.issuer = issuer
        self.ttl = ttl_seconds
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = 4096

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def issue(self, subject: str, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, payload, self.key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token or raise a 401 problem.

        Successfully verified tokens are remembered (bounded LRU) so the signature check runs
        once per token, not once per request; expiry is still checked on every call.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            self._verified[token] = claims
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        if int(claims["exp"]) <= int(time.time()):
            self._verified.pop(token, None)
            raise invalid_token("the token has expired")
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self.key, algorithms=[ALGORITHM])
        except (JoseError, ValueError) as exc:
            raise invalid_token("the token is malformed or its signature is invalid") from exc
        if decoded.header.get("typ") != TOKEN_TYPE:
            raise invalid_token("not an access token")
        registry = jwt.JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise invalid_token(f"claim check failed: {exc.description or exc.error}") from exc
        return dict(decoded.claims)
