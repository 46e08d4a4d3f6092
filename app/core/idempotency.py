"""``Idempotency-Key`` for POSTs that create (IETF draft-ietf-httpapi-idempotency-key-header).

The key record is inserted *before* the work, in the same transaction, so:

* the same client, key and request replay the first response (``Idempotent-Replayed: true``);
* the same key with a different method, path or body gets 422;
* a second request racing the first blocks on the key's unique index and then gets 409;
* if the work fails, the key record rolls back with it and the key can be used again.

Keys are scoped per client and tenant, so nobody can replay someone else's response. Values
named in ``redact`` (such as a client secret, shown only once) are not stored: a replay returns
them as null.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy import (
    DateTime,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import JSONResponse

from app.core.db import Base, TenantOwned, new_id, utcnow
from app.core.problems import Problem

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


class IdempotencyRecord(TenantOwned, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "principal_id", "key"),
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    principal_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


SECRET_FIELDS = frozenset({"password", "client_secret"})


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _fingerprint(record_id: uuid.UUID, method: str, path: str, body: Any) -> str:
    """What identifies a request, without its secrets: a fingerprint over a password could be
    guessed offline from a copy of the table (any key kept beside it would be copied too). A
    retry that changes only a password therefore replays the first response."""
    canonical = json.dumps([method, path, _without_secrets(jsonable_encoder(body))],
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(record_id.bytes, canonical.encode(), hashlib.sha256).hexdigest()


def _key_problem(detail: str) -> Problem:
    return Problem(400, "invalid-idempotency-key", "Khóa Idempotency-Key không hợp lệ",
                   "Invalid Idempotency-Key", detail=detail,
                   errors=[{"parameter": "Idempotency-Key", "in": "header", "detail": detail}])


def _redacted(payload: dict[str, Any], redact: frozenset[str]) -> dict[str, Any]:
    """``payload`` with the values named in ``redact`` nulled; ``"admin.initial_password"``
    names a key inside the object at ``admin``."""
    out = dict(payload)
    for name in redact:
        head, _, rest = name.partition(".")
        if head not in out:
            continue
        if not rest:
            out[head] = None
        elif isinstance(out[head], dict):
            out[head] = _redacted(out[head], frozenset({rest}))
    return out


async def idempotent(
    request: Request,
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    principal_id: str,
    body: Any,
    ttl_seconds: int,
    create: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    redact: frozenset[str] = frozenset(),
    headers: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> JSONResponse:
    """Run ``create`` at most once per idempotency key and return its JSON response."""
    key = request.headers.get(HEADER)
    if key is None:
        status, payload = await create()
        return JSONResponse(payload, status_code=status,
                            headers=headers(payload) if headers else None)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise _key_problem(f"Use 1 to {MAX_KEY_LENGTH} printable characters.")
    scope = (IdempotencyRecord.tenant_id == tenant_id,
             IdempotencyRecord.principal_id == principal_id, IdempotencyRecord.key == key)
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    # Forget this client's expired keys in this tenant (not just this one), so the table
    # holds at most one TTL's worth of keys per client without a separate sweeper.
    await session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.tenant_id == tenant_id,
        IdempotencyRecord.principal_id == principal_id,
        IdempotencyRecord.created_at < cutoff))
    existing = (await session.execute(select(IdempotencyRecord).where(*scope))).scalar_one_or_none()
    if existing is not None:
        fingerprint = _fingerprint(existing.id, request.method, request.url.path, body)
        if not hmac.compare_digest(existing.fingerprint, fingerprint):
            raise Problem(422, "idempotency-key-reused", "Khóa Idempotency-Key đã được dùng",
                          "Idempotency-Key reused",
                          detail="This key was used with a different request.",
                          errors=[{"parameter": "Idempotency-Key", "in": "header",
                                   "detail": "key reused with a different request"}])
        replay = existing.response or {}
        extra = headers(replay) if headers else {}
        return JSONResponse(replay, status_code=existing.status_code or 200,
                            headers={**extra, "Idempotent-Replayed": "true"})
    record_id = new_id()
    record = IdempotencyRecord(
        tenant_id=tenant_id, id=record_id, principal_id=principal_id, key=key,
        fingerprint=_fingerprint(record_id, request.method, request.url.path, body))
    session.add(record)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Problem(409, "idempotency-key-in-flight", "Yêu cầu đang được xử lý",
                      "Request in progress",
                      detail="Another request with this key is running; retry shortly.",
                      headers={"Retry-After": "1"}) from exc
    status, payload = await create()
    record.status_code = status
    record.response = _redacted(payload, redact)
    return JSONResponse(payload, status_code=status, headers=headers(payload) if headers else None)
