"""Local credentials: Argon2id password hashes, TOTP second factors, and lockout.

Local accounts serve the embedded default and break-glass administration; officials normally
sign in through their tenant's identity provider. Hashes use argon2-cffi's RFC 9106
low-memory profile and are upgraded on the next successful sign-in when the parameters change.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from app.core.db import utcnow
from app.identity.models import User

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_LOCKOUT_SECONDS = 3600
TOTP_ISSUER = "Nentang"

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# Verified against when the account does not exist, so both paths cost one Argon2 run.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """Argon2 is deliberately slow; it runs in a worker thread (the binding releases the GIL)
    so sign-ins never stall the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


def password_problems(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"A password may have at most {MAX_PASSWORD_LENGTH} characters."
    if username and username.lower() in password.lower():
        return "A password must not contain the username."
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def check_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists or has a password."""
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    ok = await asyncio.to_thread(_verify, stored, password)
    if user is None or not user.password_hash:
        return False
    if ok and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return ok


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def check_totp(user: User, code: str, *, now: float | None = None) -> bool:
    """Accept the current 30-second step or its neighbours, each step at most once."""
    if not user.totp_secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    at = time.time() if now is None else now
    step = int(at // totp.interval)
    for candidate in (step - 1, step, step + 1):
        if user.totp_last_step is not None and candidate <= user.totp_last_step:
            continue
        if secrets.compare_digest(totp.at(candidate * totp.interval), code):
            user.totp_last_step = candidate
            return True
    return False


def is_locked(user: User, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def record_failure(user: User, *, max_failures: int, base_seconds: int) -> None:
    """Count a failed sign-in; from ``max_failures`` on, lock the account for a period that
    doubles with each further failure (capped at an hour)."""
    user.failed_logins += 1
    over = user.failed_logins - max_failures
    if over >= 0:
        seconds = min(MAX_LOCKOUT_SECONDS, base_seconds * 2 ** min(over, 20))
        user.locked_until = utcnow() + timedelta(seconds=seconds)


def record_success(user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
