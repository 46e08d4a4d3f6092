"""The signing hook: the interface a signing provider implements, and how providers are found.

A provider signs a *digest* (the documents never leave the platform) for a signer, in one of
two ways: at once (a server-side key), or by a transaction that completes later (a remote
signing service waiting for the user's confirmation on their phone; a browser plug-in with a
USB token). The platform does not care which. It asks a provider for three things:

* ``certificates``: the certificates the signer may sign with;
* ``start``: begin signing a digest, answering with the signature (:class:`Signed`) or a
  transaction to wait on (:class:`Pending`);
* ``status``: what became of a transaction: still :class:`Pending`, :class:`Signed`, or
  :class:`Failed` (the user refused, it timed out).

Providers are found through the ``nentang.signing_providers`` entry-point group, so a
province ships its own as a Python package, without forking::

    [project.entry-points."nentang.signing_providers"]
    my-ca = "my_package.signing:MyCAProvider"

Each provider declares ``config_schema``, the JSON Schema of its per-tenant configuration;
fields the schema marks ``"writeOnly": true`` are secrets: stored, never logged, never
returned by the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol, runtime_checkable

from app.core import plugins
from app.core.plugins import ConfigError as ConfigError  # re-exported for plug-ins

GROUP = "nentang.signing_providers"


@dataclass(frozen=True)
class Signer:
    """Who is asked to sign: the acting principal, as the platform knows them."""

    principal_id: str
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CertificateInfo:
    credential_id: str
    certificate: bytes  # DER
    subject: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class SignRequest:
    """A digest to sign, and what a signer sees about it (never the document itself).
    ``format``: ``cms`` (a detached CAdES-BES signature over the digest) or ``jws`` (a
    compact JWS with ``x5c`` whose payload names the digest, :mod:`app.signing.jws`)."""

    request_id: str
    digest: bytes
    digest_algorithm: str
    signer: Signer
    label: str
    credential_id: str | None = None
    callback_url: str | None = None
    format: str = "cms"


@dataclass(frozen=True)
class Signed:
    """The signature in the requested format: CMS (DER ContentInfo) or a compact JWS."""

    signature: bytes
    transaction_id: str | None = None


@dataclass(frozen=True)
class Pending:
    transaction_id: str
    expires_at: datetime
    # What the caller needs to finish (shown by the API), e.g. the digest for a plug-in.
    instructions: Mapping[str, Any] = field(default_factory=dict)
    # What the provider needs later to finish (stored with the request, never shown).
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    code: str
    reason: str
    transaction_id: str | None = None


class ProviderUnavailable(Exception):
    """The provider could not be reached or refused the request; nothing was signed."""


class CallbackRejected(Exception):
    """A callback that does not prove it comes from the provider (or comes too late)."""


@runtime_checkable
class SigningProvider(Protocol):
    name: ClassVar[str]
    config_schema: ClassVar[Mapping[str, Any]]
    # Whether the worker should ask ``status`` about pending transactions (a remote service
    # that may also call back); a plug-in's signatures arrive through the API instead.
    polled: ClassVar[bool]

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Beyond the schema: refuse a configuration that cannot work (raise ConfigError)."""

    async def certificates(self, config: Mapping[str, Any],
                           signer: Signer) -> list[CertificateInfo]: ...

    async def start(self, config: Mapping[str, Any],
                    request: SignRequest) -> Signed | Pending: ...

    async def status(self, config: Mapping[str, Any], transaction_id: str,
                     state: Mapping[str, Any]) -> Signed | Pending | Failed: ...


@cache
def available() -> dict[str, SigningProvider]:
    """Every installed provider by name (see :mod:`app.core.plugins`): a broken package is
    logged and left out; the units configured for it answer 503 until it is fixed."""
    found: dict[str, SigningProvider] = plugins.load(GROUP, SigningProvider,
                                                     "signing provider")
    return found


def secret_fields(schema: Mapping[str, Any]) -> frozenset[str]:
    """Top-level configuration fields the provider marks as secrets."""
    return frozenset(name for name, sub in schema.get("properties", {}).items()
                     if isinstance(sub, Mapping) and sub.get("writeOnly"))
