"""``webhook``: an HTTPS POST signed per Standard Webhooks (see :mod:`app.deliveries.signing`).

The target is ``{"url", "secret"?}``: with its own secret a subscription signs with it;
without, the unit's webhook keys sign (workflow hooks). The response body is never read, so
a receiver cannot flood the worker; redirects are never followed; a ``410 Gone`` is final.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from app.core.db import utcnow
from app.deliveries import signing, targets
from app.deliveries.transports import Attempt, Message, SendOptions, http_failure


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header: seconds, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None


def classify(response: httpx.Response, detail: Mapping[str, Any] | None = None) -> Attempt:
    """A target's HTTP answer as an attempt: 2xx delivered; 3xx not followed; 410 final;
    anything else retried, not before ``Retry-After``."""
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(True, status=status, detail=detail or {})
    if 300 <= status < 400:
        return Attempt(False, status=status, error=f"redirect ({status}) not followed",
                       detail=detail or {})
    return Attempt(False, status=status, error=f"answered {status}", final=status == 410,
                   retry_after=retry_after(response.headers.get("retry-after"), utcnow()),
                   detail=detail or {})


async def check_target(url: str, options: SendOptions) -> Attempt | None:
    """None when the URL may be sent to; otherwise the failed attempt saying why."""
    try:
        await targets.check(url, allow_private=options.allow_private_targets)
    except targets.ForbiddenTarget as exc:
        return Attempt(False, error=str(exc), final=True)
    except OSError as exc:
        return Attempt(False, error=str(exc))
    return None


class WebhookTransport:
    name: ClassVar[str] = "webhook"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
            "secret": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/=]{20,}$",
                       "writeOnly": True, "description": "A Standard Webhooks key "
                       "(whsec_...); without one, the unit's webhook keys sign."},
        },
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        return None

    def service(self, config: Mapping[str, Any]) -> str:
        return str(config["url"])

    async def send(self, client: httpx.AsyncClient, config: Mapping[str, Any],
                   message: Message, options: SendOptions) -> Attempt:
        refused = await check_target(config["url"], options)
        if refused is not None:
            return refused
        keys = (config["secret"],) if config.get("secret") else message.keys
        if not keys:
            return Attempt(False, error="no webhook signing key: an admin of this unit or one "
                           "above must create one (POST /api/v1/tenants/{tenant}/"
                           "webhook-secrets)")
        # The real moment of sending: the receiver checks it against replays.
        headers = signing.headers(keys, message.id, int(time.time()), message.body)
        try:
            async with client.stream("POST", config["url"], content=message.body,
                                     headers=headers) as response:
                return classify(response)
        except httpx.HTTPError as exc:
            return http_failure(exc, options.timeout_seconds)
