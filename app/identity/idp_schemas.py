"""Request and response bodies for a tenant's identity provider (OpenID Connect), and the
rule for the URLs the platform will talk to on a provider's behalf."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.core.validation import Name
from app.identity.access_schemas import RoleKey

# The ID token is fetched and the client secret is sent over these connections, so they
# must be TLS. Plain http is accepted only on the loopback interface, where traffic never
# leaves the machine: a single-server (air-gapped) installation running its provider next
# to the platform, and the test suite's real provider process.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# RFC 6749 §A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
# RFC 6749 §A.1/§A.2: client_id and client_secret are VSCHAR (%x20-7E).
_VSCHAR = re.compile(r"^[\x20-\x7e]+$")
# Claims that say something about the token, not the person: matching on them is a mistake.
TOKEN_CLAIMS = frozenset({"iss", "aud", "exp", "iat", "nbf", "nonce", "azp", "at_hash",
                          "c_hash", "auth_time", "acr", "amr", "jti", "sid"})


def url_problem(value: str, *, what: str = "URL") -> str | None:
    """Why ``value`` may not be used to reach a provider, or None when it may."""
    if not value or any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return f"The {what} must be a URL without spaces or control characters."
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return f"The {what} has an invalid port."
    if parts.username is not None or parts.password is not None:
        return f"The {what} must not contain credentials."
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return (f"The {what} must use https (plain http is accepted only for 127.0.0.1, ::1 and "
            "localhost, where traffic never leaves the machine).")


def _issuer(value: str) -> str:
    problem = url_problem(value, what="issuer")
    if problem is None and (urlsplit(value).query or "#" in value):
        problem = "The issuer must not have a query or a fragment (OpenID Connect Discovery §3)."
    if problem:
        raise ValueError(problem)
    return value


def _scopes(value: str) -> str:
    tokens = value.split()
    if "openid" not in tokens:
        raise ValueError("The scopes must include 'openid'.")
    bad = [t for t in tokens if not _SCOPE_TOKEN.match(t)]
    if bad:
        raise ValueError(f"Invalid scope value: {bad[0]!r}.")
    return " ".join(dict.fromkeys(tokens))


def _match_claim(value: str) -> str:
    if value in TOKEN_CLAIMS:
        raise ValueError(f"'{value}' describes the token, not the person; use e.g. 'sub' or "
                         "'citizen_id'.")
    return value


Issuer = Annotated[
    str, Field(min_length=1, max_length=512, examples=["https://id.example.gov.vn"]),
    AfterValidator(_issuer),
]
Scopes = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_scopes)]
ClaimName = Annotated[
    str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$", examples=["citizen_id"]),
    AfterValidator(_match_claim),
]
ClientId = Annotated[str, Field(min_length=1, max_length=255, pattern=_VSCHAR.pattern)]


class IdentityProviderIn(BaseModel):
    """The tenant's own provider, replacing any it had. Descendants without their own use it."""

    model_config = ConfigDict(extra="forbid")

    display_name: Name
    issuer: Issuer = Field(description="The provider's issuer identifier, exactly as its "
                           "discovery document and ID tokens spell it.")
    client_id: ClientId
    client_secret: SecretStr | None = Field(
        default=None, description="Write-only. Required when the tenant has no provider of its "
        "own yet; omit it to keep the current secret.")
    scopes: Scopes = Field(default="openid profile",
                           description="Space-separated; must include 'openid'.")
    match_claim: ClaimName = Field(
        default="sub", description="ID-token claim whose value is a user's external_id.")
    jit_enabled: bool = Field(
        default=False, description="Create an unknown official at the first sign-in.")
    jit_roles: list[RoleKey] = Field(
        default_factory=list, max_length=16,
        description="Roles given to officials created just in time, at the sign-in tenant. "
        "Each must be one you may grant here.")

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if not 1 <= len(secret) <= 512 or not _VSCHAR.match(secret):
                raise ValueError("The client secret must be 1 to 512 printable ASCII "
                                 "characters.")
        return value

    @field_validator("jit_roles")
    @classmethod
    def _unique_roles(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class IdentityProviderOut(BaseModel):
    id: uuid.UUID
    tenant: str | None = Field(
        description="Code of the tenant that defines it, when visible to the caller.")
    inherited: bool = Field(description="Defined by an ancestor: read-only here.")
    display_name: str
    issuer: str
    client_id: str
    has_client_secret: bool
    scopes: str
    match_claim: str
    jit_enabled: bool
    jit_roles: list[str]
    redirect_uri: str = Field(description="The callback to register at the provider.")
    updated_at: datetime
