"""Request and response bodies of the signing endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.signing.models import CaseSignature

PEM = Field(max_length=200_000)


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "soft-fail", "hard-fail"] = Field(
        default="off", description="off: no check. soft-fail: refuse a revoked certificate, "
        "accept when revocation cannot be established. hard-fail: refuse then too.")
    crls: list[str] = Field(default_factory=list, max_length=50,
                            description="PEM CRLs to check against (an air-gapped install).")
    fetch: bool = Field(default=False, description="Also fetch CRLs and OCSP answers from the "
                        "addresses the certificates name.")


class SignerMatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certificate: Literal["serialNumber", "UID", "CN", "emailAddress"] = Field(
        description="The certificate subject attribute that identifies the signer.")
    principal: Literal["external_id", "username", "email", "client_id", "principal_id"] = Field(
        description="The acting user's attribute it must equal.")
    strip_prefixes: list[str] = Field(default_factory=list, max_length=10,
                                      description="Prefixes to drop from the certificate's "
                                      "value first, e.g. CCCD: or CMND:.")


class SealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pkcs12: str = Field(max_length=200_000, description="The unit's seal (PKCS#12, base64); "
                        "it seals the PDF receipts of steps that issue a document.")
    password: str = Field(max_length=1000)


class SigningConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
                          description="An installed provider (GET /api/v1/signing/providers).")
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="The provider's settings, per its schema.")
    trust_anchors: list[str] = Field(min_length=1, max_length=50,
                                     description="PEM root certificates a signer must chain to.")
    revocation: RevocationIn = Field(default_factory=RevocationIn)
    signer_match: SignerMatchIn | None = None
    format: Literal["cms", "jws"] = Field(
        default="cms", description="cms: a detached CAdES-BES signature; jws: a compact JWS "
        "with the certificate chain in x5c, over the document's digest.")
    seal: SealIn | None = None


class AnchorOut(BaseModel):
    subject: str
    not_after: datetime
    sha256: str


class SigningConfigOut(BaseModel):
    tenant: str | None = Field(description="Where the set-up is declared (null: above your "
                               "grants).")
    provider: str
    config: dict[str, Any] = Field(description="Secrets show as ***.")
    trust_anchors: list[AnchorOut]
    revocation: dict[str, Any]
    signer_match: dict[str, Any] | None
    format: str
    seal: dict[str, str] | None = Field(description="The seal's certificate subject (never "
                                        "the key).")
    updated_at: datetime


class SigningView(BaseModel):
    own: SigningConfigOut | None
    effective: SigningConfigOut | None


class ProviderOut(BaseModel):
    name: str
    config_schema: dict[str, Any]


class CertificateOut(BaseModel):
    credential_id: str
    subject: str
    not_before: datetime
    not_after: datetime
    certificate: str = Field(description="DER, base64.")


class SignatureOut(BaseModel):
    id: uuid.UUID
    case: uuid.UUID
    action: str
    status: Literal["pending", "completed", "failed", "expired"]
    provider: str
    digest: str = Field(description="SHA-256 of the signed document's canonical bytes (hex).")
    requested_by: str
    requested_at: datetime
    expires_at: datetime | None
    completed_at: datetime | None
    transaction_id: str | None
    instructions: dict[str, Any] | None = Field(
        description="For a pending signature: what the signer's client needs (the digest).")
    verification: dict[str, Any] | None
    failure: dict[str, Any] | None
    chain: list[str] = Field(description="The certificate path, signer first (DER, base64).")

    @classmethod
    def of(cls, row: CaseSignature) -> SignatureOut:
        return cls(
            id=row.id, case=row.case_id, action=row.action, status=row.status,
            provider=row.provider, digest=row.digest, requested_by=row.requested_by,
            requested_at=row.requested_at, expires_at=row.expires_at,
            completed_at=row.completed_at, transaction_id=row.transaction_id,
            instructions=row.instructions if row.status == "pending" else None,
            verification=row.verification, failure=row.failure, chain=row.chain or [])


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: str = Field(max_length=2_000_000, description="The detached CMS signature "
                           "(DER, base64) over the digest handed out, or the compact JWS over "
                           "the payload handed out.")


class RecheckOut(BaseModel):
    valid: bool = Field(description="The signature verifies and its certificate was good.")
    reasons: list[dict[str, str]]
    document_intact: bool = Field(description="The stored document still gives the signed "
                                  "digest.")
    matches_case: bool = Field(description="The case, as stored now, still holds what was "
                               "signed (allowing for later recorded actions).")
    mismatches: list[str] = Field(description="JSON Pointers of what no longer matches.")
    receipt_intact: bool | None = Field(description="For a step that issued a receipt: its "
                                        "seal still covers the whole PDF.")
    checked_at: datetime
