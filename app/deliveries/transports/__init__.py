"""How a delivery reaches its target: the transport interface and how transports are found.

A transport sends one message (an event's body, with its stable id) to a target described by
its configuration, and says what happened (:class:`Attempt`): delivered, or why not, whether
trying again can help, how long to wait at least, and the ids the exchange produced for the
audit. The worker does the rest (leases, order, retries, dead letters).

Shipped: ``webhook`` (HTTPS, Standard Webhooks HMAC signatures), ``xroad`` (the X-Road
message protocol for REST, through a security server, with mTLS), ``token-gateway`` (a
provincial gateway behind an access-key or client-credentials token exchange). Others come
from the ``nentang.delivery_transports`` entry-point group, like signing providers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

from app.core import plugins
from app.core.plugins import ConfigError as ConfigError  # re-exported for plug-ins

GROUP = "nentang.delivery_transports"


@dataclass(frozen=True)
class Message:
    """What is sent: ``id`` is the event's id, the same on every attempt (receivers drop
    repeats by it); ``message_id`` a UUID stable per delivery (for gateways that want one)."""

    id: str
    message_id: str
    body: bytes
    topic: str
    tenant: str
    case: str | None
    # The unit's webhook signing keys (hooks without a secret of their own).
    keys: tuple[str, ...] = ()
    # Which connection state (tokens, TLS contexts) the message may share.
    channel: str = ""


@dataclass(frozen=True)
class Attempt:
    """One send's result: delivered, or why not and whether trying again can help."""

    delivered: bool
    status: int | None = None
    error: str | None = None
    final: bool = False
    retry_after: timedelta | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendOptions:
    timeout_seconds: float
    allow_private_targets: bool


@runtime_checkable
class Transport(Protocol):
    name: ClassVar[str]
    config_schema: ClassVar[Mapping[str, Any]]

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Beyond the schema (raise ConfigError)."""

    def service(self, config: Mapping[str, Any]) -> str:
        """The target as the audit names it (a URL, an X-Road service id)."""

    async def send(self, client: httpx.AsyncClient, config: Mapping[str, Any],
                   message: Message, options: SendOptions) -> Attempt: ...


@cache
def available() -> dict[str, Transport]:
    """Every installed transport by name (see :mod:`app.core.plugins`)."""
    found: dict[str, Transport] = plugins.load(GROUP, Transport, "delivery transport")
    return found


def get(name: str) -> Transport | None:
    return available().get(name)


def http_failure(exc: httpx.HTTPError, timeout: float) -> Attempt:
    if isinstance(exc, httpx.TimeoutException):
        return Attempt(False, error=f"no answer within {timeout:g} s")
    return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:500])
