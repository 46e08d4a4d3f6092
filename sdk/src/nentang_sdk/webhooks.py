"""Verify the webhooks Nentang sends (Standard Webhooks, standardwebhooks.com), stdlib only.

The platform's worker signs every delivery, a workflow hook's or a subscription's, with
three headers:

* ``webhook-id``: the event's id, the same on every attempt: drop repeats by it;
* ``webhook-timestamp``: when this attempt was sent (Unix seconds): refuse old ones (replay);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per
  live key of the unit, separated by spaces, so a key rotation needs no flag day.

::

    from nentang_sdk.webhooks import verify

    event = verify(request_body_bytes, request_headers, ["whsec_..."])
    print(event.type, event.tenant, event.case_id)

Check the raw body bytes *before* parsing them: :func:`verify` parses only what verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets as _random
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nentang_sdk.errors import WebhookVerificationError

__all__ = ["DEFAULT_TOLERANCE", "HOOK_EVENT", "Event", "WebhookVerificationError",
           "new_secret", "secret_key", "sign", "verify"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
DEFAULT_TOLERANCE = 300
"""Seconds a ``webhook-timestamp`` may be away from the receiver's clock, either way."""
HOOK_EVENT = "case.hook.webhook"
"""The type of a workflow state's ``webhook`` hook (``on_enter``/``on_leave``)."""
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "webhook-id", "webhook-timestamp", "webhook-signature")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, padding too).

    A malformed secret is a configuration mistake, so this raises :class:`ValueError` rather
    than :class:`WebhookVerificationError`: it must not look like a forged request."""
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64 (as the platform "
                         "shows it once, from POST /webhook-secrets)") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _keys(secrets: str | Sequence[str]) -> list[bytes]:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed:
        raise ValueError("give at least one webhook secret")
    return [secret_key(s) for s in listed]


def _signature(key: bytes, message_id: str, timestamp: str, payload: bytes) -> bytes:
    signed = f"{message_id}.{timestamp}.".encode() + payload
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def _as_bytes(payload: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise TypeError(f"the payload must be the raw body (bytes), not {type(payload).__name__}")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """A verified delivery.

    Nentang sends two body shapes, and this class reads both:

    * to a workflow hook's URL: ``{"type": "case.hook.webhook", "timestamp", "data":
      {"event", "tenant": {"id", "code"}, "case", "workflow", "version", "state", "status",
      "when", "hook_state", "hook"}}`` — what happened and where, never the case's data (the
      receiver reads the case through the API with its own permissions);
    * to a subscription's ``webhook`` target: ``{"id", "type", "occurred_at",
      "subscription", "tenant": "<code>", "case": {"id", "form", "workflow", "version",
      "state", "status"} (or "submission": {...}), "event": {the rest: "action", "when",
      "hook_state"...}, "data": {the case-data fields the subscription asked for}}``. A
      subscription to ``case.*`` also gets the ``case.hook.webhook`` events, in this shape
      and with the same id.

    The properties (:attr:`case_id`, :attr:`state`, :attr:`when`...) read either shape.
    """

    id: str
    """``webhook-id``: the event id, identical on every attempt (deduplicate by it)."""
    type: str
    """``case.hook.webhook``, ``case.opened``, ``case.action_taken``, ..."""
    timestamp: datetime
    """When the event happened (the body's ``timestamp``/``occurred_at``), UTC."""
    tenant: str | None
    """The code of the unit the event happened in (the case's unit)."""
    data: dict[str, Any]
    """The body's ``data`` member (see the class docstring for what it holds)."""
    payload: dict[str, Any] = field(repr=False)
    """The whole parsed body."""
    sent_at: datetime = field(repr=False)
    """``webhook-timestamp``: when this attempt was sent (retries are sent later)."""

    @property
    def subscription(self) -> str | None:
        """The name of the subscription that sent it; None for a workflow hook's delivery."""
        value = self.payload.get("subscription")
        return str(value) if value else None

    @property
    def is_hook(self) -> bool:
        """The event of a workflow state's ``webhook`` hook (to the hook's URL, or copied to
        a subscription that asked for it)."""
        return self.type == HOOK_EVENT

    def _part(self, member: str) -> Mapping[str, Any]:
        """Where the subscription shape keeps what the hook shape has in ``data``."""
        if self.subscription is None:
            return self.data
        part = self.payload.get(member)
        return part if isinstance(part, Mapping) else {}

    def _text(self, member: str, name: str) -> str | None:
        value = self._part(member).get(name)
        return str(value) if value is not None and value != "" else None

    @property
    def case_id(self) -> str | None:
        """The case the event is about, if it is about one."""
        return self._text("case", "case" if self.subscription is None else "id")

    @property
    def state(self) -> str | None:
        """The case's state right after the event. For an ``on_leave`` hook this is the
        state entered, not the one left (that is :attr:`hook_state`)."""
        return self._text("case", "state")

    @property
    def workflow(self) -> str | None:
        """The key of the case's workflow."""
        return self._text("case", "workflow")

    @property
    def when(self) -> str | None:
        """``on_enter`` or ``on_leave`` for a workflow hook's event; None otherwise."""
        return self._text("event", "when") if self.is_hook else None

    @property
    def hook_state(self) -> str | None:
        """The state whose hook fired (workflow hooks' events only)."""
        return self._text("event", "hook_state") if self.is_hook else None

    @classmethod
    def from_payload(cls, message_id: str, payload: Mapping[str, Any],
                     sent_at: datetime) -> Event:
        """Read an already verified body (:func:`verify` calls this)."""
        body = dict(payload)
        data = body.get("data")
        data = dict(data) if isinstance(data, Mapping) else {}
        tenant: Any = body.get("tenant")  # a subscription's body: the code
        if not isinstance(tenant, str):  # a hook's: {"id", "code"} in data
            unit = data.get("tenant")
            tenant = unit.get("code") if isinstance(unit, Mapping) else None
        return cls(id=message_id, type=str(body.get("type") or ""),
                   timestamp=_moment(body.get("timestamp") or body.get("occurred_at"))
                   or sent_at, tenant=str(tenant) if tenant else None, data=data,
                   payload=body, sent_at=sent_at)


def verify(payload: bytes | bytearray | memoryview | str, headers: Mapping[str, str],
           secrets: str | Sequence[str], *, tolerance: int = DEFAULT_TOLERANCE,
           now: float | None = None) -> Event:
    """Check a delivery's signature and timestamp, then parse it.

    ``payload`` is the raw body exactly as received; ``headers`` any mapping (names are
    matched case-insensitively); ``secrets`` one ``whsec_`` secret or several (during a key
    rotation configure the new one next to the old). The delivery verifies if any of its
    ``v1`` signatures matches any secret (constant-time comparison), and its timestamp is
    within ``tolerance`` seconds of ``now`` (default: the clock) in either direction.

    Raises :class:`~nentang_sdk.errors.WebhookVerificationError` saying why it did not;
    :class:`ValueError` if a secret itself is malformed.
    """
    keys = _keys(secrets)
    body = _as_bytes(payload)
    found = {str(k).lower(): str(v) for k, v in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not found.get(h)]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    message_id, stamp = found[ID_HEADER].strip(), found[TIMESTAMP_HEADER].strip()
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookVerificationError(
            f"webhook-timestamp is not Unix seconds: {stamp[:40]!r}")
    sent = int(stamp)
    clock = time.time() if now is None else now
    if sent < clock - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(clock - sent)} s old (more than {tolerance} s): "
            "a replay, or this receiver's clock is wrong")
    if sent > clock + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(sent - clock)} s in the future (more than "
            f"{tolerance} s): the sender's or this receiver's clock is wrong")
    given = [s.partition(",")[2].encode() for s in found[SIGNATURE_HEADER].split()
             if s.startswith("v1,")]
    if not given:
        raise WebhookVerificationError("webhook-signature holds no v1 signature")
    expected = [_signature(key, message_id, stamp, body) for key in keys]
    # Every pair is compared, so the time taken does not tell which one matched.
    matched = False
    for mine in expected:
        for theirs in given:
            matched |= hmac.compare_digest(mine, theirs)
    if not matched:
        raise WebhookVerificationError(
            "no signature matches the configured secret(s): the body was altered, or it was "
            "signed with another key (rotated? another unit's?)")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the signed body is not JSON") from None
    if not isinstance(parsed, dict):
        raise WebhookVerificationError("the signed body is not a JSON object")
    return Event.from_payload(message_id, parsed, datetime.fromtimestamp(sent, UTC))


def sign(payload: bytes | bytearray | memoryview | str, secrets: str | Iterable[str], *,
         message_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The headers Nentang would send with ``payload``: for tests of a receiver (yours or
    one made by ``nentang-sdk new``) without a running platform. Several secrets give
    several signatures, as during a key rotation."""
    body = _as_bytes(payload)
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    message_id = message_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signatures = " ".join("v1," + _signature(secret_key(s), message_id, stamp, body).decode()
                          for s in listed)
    return {ID_HEADER: message_id, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signatures,
            "content-type": "application/json"}


def new_secret() -> str:
    """A fresh random secret in the platform's format (for tests; the platform makes the
    real ones)."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode()
