"""Keyset (cursor) pagination.

A cursor is an opaque, URL-safe token holding the sort key of the last item returned. The
next page starts strictly after it, so pages stay stable while rows are inserted, and each
page is one indexed range scan however deep the client goes.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.core.problems import Problem
from app.core.validation import is_safe_text

T = TypeVar("T")
R = TypeVar("R")
MAX_CURSOR_LENGTH = 1024
MAX_INT32 = 2**31 - 1
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *types: type) -> list[Any] | None:
    """Decode a cursor whose key has one value of each of ``types``, or raise a 422.
    ``uuid.UUID`` and ``datetime`` parts travel as strings (a datetime in ISO 8601 with its
    offset) and come back as UUIDs and datetimes."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise bad_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise bad_cursor() from exc
    if not isinstance(key, list) or len(key) != len(types):
        raise bad_cursor()
    if not all(_valid_part(v, t) for v, t in zip(key, types, strict=True)):
        raise bad_cursor()
    return [uuid.UUID(v) if t is uuid.UUID else datetime.fromisoformat(v) if t is datetime
            else v for v, t in zip(key, types, strict=True)]


def _valid_part(value: Any, kind: type) -> bool:
    if kind is datetime:
        try:
            return datetime.fromisoformat(value).tzinfo is not None
        except (TypeError, ValueError):
            return False
    if kind is uuid.UUID:
        try:
            uuid.UUID(value)
        except (TypeError, ValueError, AttributeError):
            return False
        return True
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_INT32
    return not isinstance(value, str) or is_safe_text(value)


def bad_cursor() -> Problem:
    return Problem(422, "invalid-cursor", "Con trỏ phân trang không hợp lệ", "Invalid cursor",
                   detail="The cursor is not one this endpoint issued.",
                   errors=[{"parameter": "cursor", "in": "query", "detail": "malformed cursor"}])


def split_page(
    rows: Sequence[R], limit: int, key: Callable[[R], list[Any]]
) -> tuple[list[R], str | None]:
    """Given up to ``limit + 1`` rows, return the page and the cursor for the next one."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(key(items[-1])) if more and items else None
