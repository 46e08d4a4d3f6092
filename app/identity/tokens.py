"""Signed JWT access tokens (RFC 9068 profile) and the rotating keys that sign them.

Tokens carry the caller's grants with each node's path, so a request is authorised and scoped
without a database round trip. They are short-lived (``NENTANG_ACCESS_TOKEN_TTL_SECONDS``,
ten minutes by default): revoking a client or suspending its tenant stops new tokens at once,
and old ones within that window.

The key file
------------
``NENTANG_SIGNING_KEY_FILE`` (``signing-key.pem`` in the data directory by default) holds a
*key set*: a private JWKS in JSON, written with mode 0600, each key carrying its metadata::

    {"format": "nentang-signing-keys/1",
     "keys": [{"kty": "RSA", "n": "…", "e": "AQAB", "d": "…", "p": "…", "q": "…",
               "dp": "…", "dq": "…", "qi": "…",
               "kid": "<RFC 7638 thumbprint>", "use": "sig", "alg": "RS256",
               "created_at": "2025-06-01T08:00:00+00:00",
               "retire_after": null}, …]}

A key whose ``retire_after`` is null is *active*. The key that signs new tokens is the newest
one that may sign *now*: a key with a ``sign_from`` time (staged by a rotation) is published
in the JWKS and verifies at once, but signs only from that time; until then the key before it
keeps signing. A key with a ``retire_after`` time verifies (and stays in the JWKS) until that
time; after it, its tokens are refused and the next rotation deletes it.

A file holding one PEM private key (what earlier versions wrote) still loads as a set of one
active key, with the same kid (its thumbprint) and the file's mtime as ``created_at``; the
first rotation rewrites it as a key set. A missing file is created on first start, exclusively
(``O_EXCL``), so processes that start together all end up with the winner's key.

Rotation (``nentang keys rotate``, :func:`rotate_keys`) adds a new active key, gives each
previously active key ``retire_after = hand-over + access-token TTL + 60 s`` (its last tokens
expire before it leaves) and drops keys already past their ``retire_after``. The hand-over is
``activate_in`` seconds after the rotation (``sign_from`` on the new key): long enough for
every replica to hold the new file before any token signed with the new key reaches it. A
replica sharing the file re-reads it within seconds, but a Kubernetes Secret reaches running
pods only after the kubelet's sync (a minute or two), and a pod with the old file would refuse
the new key's tokens. It runs under an
advisory lock on ``<key file>.lock`` and replaces the file atomically (temporary file, then
``os.replace``), so a reader sees the old set or the new one, never a mix.

Replicas share the file. A :class:`TokenService` re-reads it when it changes (its inode, mtime
or size, checked at most every :data:`RELOAD_INTERVAL_SECONDS` when signing or serving the
JWKS), and when a token names a kid it does not know, at most once per
:data:`RELOAD_INTERVAL_SECONDS` so that tokens with made-up kids cannot make it read the file
on every request. A file that cannot be read or parsed at run time is logged and ignored: the
service keeps the keys it has.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import os
import secrets
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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
FILE_FORMAT = "nentang-signing-keys/1"
RETIRE_MARGIN_SECONDS = 60
"""Kept after the access-token TTL before a replaced key leaves: clock skew, slow requests."""
RELOAD_INTERVAL_SECONDS = 5.0
"""How often a service looks for a changed key file, or re-reads it for an unknown kid."""
_METADATA = ("created_at", "retire_after", "sign_from")

Clock = Callable[[], float]


def invalid_token(detail: str) -> Problem:
    return Problem(
        401, "invalid-token", "Mã truy cập không hợp lệ", "Invalid access token", detail=detail,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'},
    )


class SigningKeyError(Exception):
    """The key file is missing, unreadable, corrupt or cannot be written (message says which)."""


def format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _parse_time(value: object, what: str) -> float:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a date-time string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{what} has no time zone")
    return parsed.timestamp()


@dataclass(frozen=True)
class SigningKey:
    key: RSAKey
    kid: str
    created_at: float
    retire_after: float | None = None
    sign_from: float | None = None
    """Published and verifying at once, but signing only from this time (a staged rotation)."""

    @classmethod
    def generate(cls, now: float, sign_from: float | None = None) -> SigningKey:
        key = RSAKey.generate_key(2048, private=True)
        return cls(key, key.thumbprint(), now, sign_from=sign_from)

    @property
    def active(self) -> bool:
        return self.retire_after is None

    def usable(self, now: float) -> bool:
        """True while the key may verify tokens (and is published)."""
        return self.retire_after is None or now < self.retire_after

    def may_sign(self, now: float) -> bool:
        return self.usable(now) and (self.sign_from is None or self.sign_from <= now)

    def status(self, now: float) -> str:
        if self.sign_from is not None and now < self.sign_from:
            return f"published; signs from {format_time(self.sign_from)}"
        if self.retire_after is None:
            return "active"
        if now < self.retire_after:
            return f"retiring until {format_time(self.retire_after)}"
        return "retired (removed at the next rotation)"

    def public_jwk(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def private_jwk(self) -> dict[str, Any]:
        private = self.key.as_dict(private=True)
        staged = {} if self.sign_from is None else {"sign_from": format_time(self.sign_from)}
        return {**private, "kid": self.kid, "use": "sig", "alg": ALGORITHM,
                "created_at": format_time(self.created_at),
                "retire_after": (None if self.retire_after is None
                                 else format_time(self.retire_after)), **staged}

    @classmethod
    def from_private_jwk(cls, entry: object, known: KeySet | None = None) -> SigningKey:
        """Load one key of the file, reusing ``known``'s object for the same key material:
        importing an RSA private key checks it, which takes tens of milliseconds."""
        if not isinstance(entry, dict):
            raise ValueError("a key is not a JSON object")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError("a key has no kid")
        created_at = _parse_time(entry.get("created_at"), f"created_at of key {kid}")
        retire_after = entry.get("retire_after")
        sign_from = entry.get("sign_from")
        jwk = {name: value for name, value in entry.items() if name not in _METADATA}
        same = known.find(kid) if known is not None else None
        if same is not None and all(same.key.as_dict(private=True).get(member) == jwk.get(member)
                                    for member in ("kty", "n", "e", "d")):
            key = same.key
        else:
            key = RSAKey.import_key(jwk)
        if not key.is_private:
            raise ValueError(f"key {kid} has no private part")
        return cls(key, kid, created_at,
                   None if retire_after is None
                   else _parse_time(retire_after, f"retire_after of key {kid}"),
                   None if sign_from is None
                   else _parse_time(sign_from, f"sign_from of key {kid}"))


class KeySet:
    """An immutable set of signing keys, newest first, with at least one active key."""

    def __init__(self, keys: Iterable[SigningKey], *, legacy_pem: bool = False,
                 source: bytes = b"") -> None:
        self.keys: tuple[SigningKey, ...] = tuple(
            sorted(keys, key=lambda k: k.created_at, reverse=True))
        self.legacy_pem = legacy_pem
        self.source = source
        """The file content this set was read from, if it was read."""
        self._by_kid = {k.kid: k for k in self.keys}
        if len(self._by_kid) != len(self.keys):
            raise ValueError("two keys share a kid")
        active = [k for k in self.keys if k.active]
        if not active:
            raise ValueError("no key is active (every key has a retire_after time)")
        self.active = active[0]
        """The newest active key (with a staged rotation, not yet the signer)."""

    def signer(self, now: float) -> SigningKey:
        """The key that signs new tokens at ``now``: the newest that may sign."""
        return next((k for k in self.keys if k.may_sign(now)), self.active)

    def status(self, key: SigningKey, now: float) -> str:
        """``key``'s status in this set at ``now``, for operators."""
        if key is self.signer(now) and key.retire_after is not None:
            return (f"active until the next key signs, then retiring until "
                    f"{format_time(key.retire_after)}")
        return key.status(now)

    def find(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def to_bytes(self) -> bytes:
        document = {"format": FILE_FORMAT, "keys": [k.private_jwk() for k in self.keys]}
        return (json.dumps(document, indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, mtime: float, known: KeySet | None = None) -> KeySet:
        """Parse a key set, or a legacy single PEM private key; ValueError if neither.

        ``known`` is the set read before: returned as is if the content is the same, and its
        keys reused where they are unchanged.
        """
        if known is not None and known.source == data:
            return known
        text = data.strip()
        if not text:
            raise ValueError("the file is empty")
        if text.startswith(b"-----BEGIN"):
            try:
                key = RSAKey.import_key(text)
            except (JoseError, ValueError, TypeError) as exc:
                raise ValueError(f"the PEM key does not load ({exc})") from exc
            if not key.is_private:
                raise ValueError("the PEM key is not a private key")
            return cls([SigningKey(key, key.thumbprint(), mtime)], legacy_pem=True, source=data)
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("it is neither a JSON key set nor a PEM private key") from exc
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ValueError(f"it is JSON but not a key set (format {FILE_FORMAT!r})")
        entries = document.get("keys")
        if not isinstance(entries, list) or not entries:
            raise ValueError("the key set has no keys")
        try:
            return cls((SigningKey.from_private_jwk(entry, known) for entry in entries),
                       source=data)
        except (JoseError, TypeError, KeyError) as exc:
            raise ValueError(f"a key does not load ({exc})") from exc


FileId = tuple[int, int, int, int]


def missing_key_file(path: Path) -> str:
    return (f"There is no signing key file at {path}. Check NENTANG_SIGNING_KEY_FILE and "
            "NENTANG_DATA_DIR; the service creates the file when it first starts.")


def _file_id(st: os.stat_result) -> FileId:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _read(path: Path, known: KeySet | None = None) -> tuple[KeySet, FileId]:
    """Read the key file and identify the version read (FileNotFoundError if absent)."""
    try:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SigningKeyError(
            f"Cannot read the signing key file {path}: {exc.strerror or exc}") from exc
    try:
        return KeySet.from_bytes(data, mtime=st.st_mtime, known=known), _file_id(st)
    except ValueError as exc:
        reason = str(exc).rstrip(".")
        raise SigningKeyError(f"The signing key file {path} is corrupt: {reason}.") from exc


def read_keys(path: Path) -> KeySet:
    """Read the key file. FileNotFoundError if it is absent, SigningKeyError if unusable."""
    return _read(path)[0]


def _read_settled(path: Path, wait_seconds: float = 2.0) -> tuple[KeySet, FileId]:
    """Read a file another process may have just created and not yet filled."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return _read(path)
        except SigningKeyError:
            if time.monotonic() > deadline or path.stat().st_size > 0:
                raise
        time.sleep(0.02)


def _load_or_create(path: Path, now: Clock) -> tuple[KeySet, FileId]:
    try:
        return _read_settled(path)
    except FileNotFoundError:
        pass
    keys = KeySet([SigningKey.generate(now())])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read_settled(path)
    except OSError as exc:
        raise SigningKeyError(
            f"Cannot create the signing key file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(keys.to_bytes())
        fh.flush()
        os.fsync(fh.fileno())
        st = os.fstat(fh.fileno())
    logger.info("generated a new token signing key",
                extra={"key_file": str(path), "kid": keys.active.kid})
    return keys, _file_id(st)


def load_or_create_keys(path: Path, *, now: Clock = time.time) -> KeySet:
    """Load the key set, creating the file (mode 0600, one new active key) if it is absent.

    Raises SigningKeyError if the file is unusable or cannot be created.
    """
    return _load_or_create(path, now)[0]


def write_keys(path: Path, keys: KeySet) -> None:
    """Replace the key file atomically with ``keys`` (mode 0600)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(keys.to_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories fsync
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@contextlib.contextmanager
def _rotation_lock(path: Path) -> Iterator[None]:
    """Serialise rotations (which read, change and write the file) across processes."""
    if sys.platform == "win32":  # pragma: no cover - the service runs on POSIX systems
        yield
        return
    import fcntl

    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Rotation:
    keys: KeySet
    new: SigningKey
    retiring: tuple[SigningKey, ...]
    """Keys that were active and now have a retire_after time."""
    pruned: tuple[SigningKey, ...]
    """Keys past their retire_after time, deleted from the file."""
    upgraded: bool
    """The file held a single PEM key and is now a key set."""


def rotate_keys(path: Path, ttl_seconds: int, *, now: Clock = time.time,
                activate_in: float = 0.0) -> Rotation:
    """Add a new active key to the file, retire the previous one, prune retired keys. With
    ``activate_in`` seconds, the new key is published at once and signs only from then; the
    previous one signs until then and retires a token lifetime (and a margin) later.

    Raises SigningKeyError (with a message for an operator) if the file is absent, unreadable,
    corrupt or cannot be written.
    """
    if not path.exists():
        raise SigningKeyError(missing_key_file(path))
    try:
        with _rotation_lock(path):
            try:
                current = read_keys(path)
            except FileNotFoundError:
                raise SigningKeyError(missing_key_file(path)) from None
            at = now()
            sign_from = float(math.ceil(at + activate_in)) if activate_in > 0 else None
            retire_after = (sign_from or float(math.ceil(at))) + ttl_seconds \
                + RETIRE_MARGIN_SECONDS
            new = SigningKey.generate(at, sign_from)
            kept: list[SigningKey] = []
            retiring: list[SigningKey] = []
            pruned: list[SigningKey] = []
            for key in current.keys:
                if not key.usable(at):
                    pruned.append(key)
                elif key.active:
                    retiring.append(replace(key, retire_after=retire_after))
                    kept.append(retiring[-1])
                else:
                    kept.append(key)
            keys = KeySet([new, *kept])
            write_keys(path, keys)
    except OSError as exc:
        raise SigningKeyError(
            f"Cannot write the signing key file {path}: {exc.strerror or exc}") from exc
    logger.info("rotated the token signing keys",
                extra={"key_file": str(path), "kid": new.kid,
                       "retiring": [k.kid for k in retiring], "pruned": [k.kid for k in pruned]})
    return Rotation(keys, new, tuple(retiring), tuple(pruned), current.legacy_pem)


def _header_kid(token: str) -> str | None:
    """The kid named by a compact JWS's header, read without verifying anything."""
    segment, dot, _ = token.partition(".")
    if not dot:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class TokenService:
    """Issues and verifies access tokens with the key set in ``key_file``.

    ``now`` is the clock (seconds since the epoch) for token lifetimes, key retirement and
    reload throttling; tests pass their own. ``verify`` is synchronous and, for a token seen
    before, touches no file and checks no signature.
    """

    def __init__(self, key_file: Path, issuer: str, ttl_seconds: int, *,
                 now: Clock = time.time) -> None:
        self.key_file = key_file
        self.issuer = issuer
        self.ttl = ttl_seconds
        self._now = now
        self._keys, self._file_id = _load_or_create(key_file, now)
        self._next_change_check = now() + RELOAD_INTERVAL_SECONDS
        self._next_unknown_kid_reload = -math.inf
        self.reloads = 0
        """How many times the key file was re-read after the first load."""
        self._verified: OrderedDict[str, tuple[dict[str, Any], str]] = OrderedDict()
        self._cache_size = 4096

    @property
    def keys(self) -> KeySet:
        return self._keys

    @property
    def key(self) -> RSAKey:
        """The key that signs new tokens now."""
        return self._keys.signer(self._now()).key

    @property
    def kid(self) -> str:
        return self._keys.signer(self._now()).kid

    def jwks(self) -> dict[str, Any]:
        """Public parts of every key that may still verify tokens."""
        self._reload_if_changed()
        now = self._now()
        return {"keys": [k.public_jwk() for k in self._keys.keys if k.usable(now)]}

    def issue(self, subject: str, claims: dict[str, Any]) -> str:
        self._reload_if_changed()
        signer = self._keys.signer(self._now())
        now = int(self._now())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        header = {"alg": ALGORITHM, "kid": signer.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, payload, signer.key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token or raise a 401 problem.

        Successfully verified tokens are remembered (bounded LRU) so the signature check runs
        once per token, not once per request; expiry and the key's retirement are still
        checked on every call.
        """
        now = self._now()
        cached = self._verified.get(token)
        if cached is None:
            claims, kid = self._decode(token, now)
            self._verified[token] = (claims, kid)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        else:
            claims, kid = cached
            self._verified.move_to_end(token)
            key = self._keys.find(kid)
            if key is None or not key.usable(now):
                self._verified.pop(token, None)
                raise invalid_token("the key that signed the token has been retired")
        if int(claims["exp"]) <= int(now):
            self._verified.pop(token, None)
            raise invalid_token("the token has expired")
        return claims

    def reload(self) -> bool:
        """Re-read the key file now; on failure keep the current keys and return False."""
        self.reloads += 1
        try:
            keys, file_id = _read(self.key_file, known=self._keys)
        except (OSError, SigningKeyError) as exc:
            logger.warning("cannot reload the token signing keys; keeping the loaded ones",
                           extra={"key_file": str(self.key_file), "error": str(exc)})
            return False
        self._keys, self._file_id = keys, file_id
        return True

    def rotate(self, activate_in: float = 0.0) -> Rotation:
        """Rotate the keys in the file (see :func:`rotate_keys`) and use the new set at once."""
        rotation = rotate_keys(self.key_file, self.ttl, now=self._now, activate_in=activate_in)
        self._keys = rotation.keys  # the reload reuses these keys and notes the file's identity
        self.reload()
        return rotation

    def _reload_if_changed(self) -> None:
        now = self._now()
        if now < self._next_change_check:
            return
        self._next_change_check = now + RELOAD_INTERVAL_SECONDS
        try:
            changed = _file_id(self.key_file.stat()) != self._file_id
        except OSError:
            changed = True  # gone or unreadable: reload() logs it and keeps the keys
        if changed:
            self.reload()

    def _verifying_key(self, kid: str | None, now: float) -> SigningKey:
        if kid is None:
            raise invalid_token("the token is malformed or names no signing key")
        key = self._keys.find(kid)
        if key is None and now >= self._next_unknown_kid_reload:
            # Perhaps another replica rotated the keys; look, but not for every made-up kid.
            self._next_unknown_kid_reload = now + RELOAD_INTERVAL_SECONDS
            self.reload()
            key = self._keys.find(kid)
        if key is None:
            raise invalid_token("the token was signed by an unknown key")
        if not key.usable(now):
            raise invalid_token("the key that signed the token has been retired")
        return key

    def _decode(self, token: str, now: float) -> tuple[dict[str, Any], str]:
        key = self._verifying_key(_header_kid(token), now)
        try:
            decoded = jwt.decode(token, key.key, algorithms=[ALGORITHM])
        except (JoseError, ValueError) as exc:
            raise invalid_token("the token is malformed or its signature is invalid") from exc
        if decoded.header.get("typ") != TOKEN_TYPE:
            raise invalid_token("not an access token")
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
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
        return dict(decoded.claims), key.kid
