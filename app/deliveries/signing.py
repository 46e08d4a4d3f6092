"""Webhook signatures in the Standard Webhooks scheme (standardwebhooks.com).

A receiver checks ``webhook-signature`` against ``HMAC-SHA256(key, id.timestamp.body)`` with
the tenant's key, refuses a ``webhook-timestamp`` too far from its clock (replay), and drops
a ``webhook-id`` it has seen (retries resend the same id). During a key rotation the header
carries one signature per live key, separated by spaces, so receivers can switch at leisure.
Any Standard Webhooks library verifies these signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh key, as the receiver configures it: ``whsec_`` and 32 random bytes, base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(keys: Iterable[str], message_id: str, timestamp: int,
            body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, message_id, timestamp, body) for k in keys),
        "content-type": "application/json",
    }
