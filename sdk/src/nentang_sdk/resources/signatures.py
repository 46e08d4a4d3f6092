"""Digital signatures at workflow steps: a unit's signing set-up (which provider signs, which
roots a signer must chain to, the seal of issued documents) and the signatures of a case
(read, send a plug-in's signature, re-check, download the evidence)."""

from __future__ import annotations

import base64
import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, Download, M, Resource, body, op
from nentang_sdk.models import Certificate, Provider, Signature, SignatureCheck, SigningView
from nentang_sdk.resources._types import ID

SIGNATURES = "/api/v1/tenants/{tenant}/cases/{case_id}/signatures"
SIGNATURE = SIGNATURES + "/{signature_id}"
SIGNING = "/api/v1/tenants/{tenant}/signing"


class Signatures(Resource[M]):
    """The signatures asked for on a case. A signed action taken with
    :meth:`Cases.act <nentang_sdk.resources.cases.Cases.act>` either completes at once (a
    server-side key) or returns a pending :class:`Signature` whose ``instructions`` say what
    the signer's plug-in must sign; :meth:`send` then hands the signature in."""

    @op("GET " + SIGNATURES)
    def list(self, tenant: str, case_id: ID, /) -> Call[builtins.list[Signature]]:
        """Every signature asked for on the case, oldest first."""
        return Call(builtins.list[Signature], tenant, case_id)

    @op("GET " + SIGNATURE)
    def get(self, tenant: str, case_id: ID, signature_id: ID, /) -> Call[Signature]:
        """One signature: the digest of the signed document, its status, the evidence
        (certificate chain) and the verdict, or why it failed."""
        return Call(Signature, tenant, case_id, signature_id)

    @op("POST " + SIGNATURE)
    def send(self, tenant: str, case_id: ID, signature_id: ID, /, *,
             signature: str | bytes) -> Call[Signature]:
        """Hand in the signature of a pending request (the user's token, through a plug-in):
        a detached CMS over the digest handed out, as DER ``bytes`` or base64 text, or a
        compact JWS over the payload handed out. When it is valid the action is taken at once.

        An invalid signature raises :class:`~nentang_sdk.errors.ValidationError` (the refusal
        is recorded on the signature, the case is unchanged); an expired or finished request,
        or a case that moved meanwhile, :class:`~nentang_sdk.errors.ConflictError`."""
        text = base64.b64encode(signature).decode() if isinstance(signature, bytes) \
            else signature
        return Call(Signature, tenant, case_id, signature_id, json={"signature": text})

    @op("POST " + SIGNATURE + "/verify")
    def verify(self, tenant: str, case_id: ID, signature_id: ID, /) -> Call[SignatureCheck]:
        """Re-check a completed signature now (certificate, revocation) and whether the case
        still holds what was signed (``mismatches`` point at what changed)."""
        return Call(SignatureCheck, tenant, case_id, signature_id)

    @op("GET " + SIGNATURE + "/document")
    def document(self, tenant: str, case_id: ID, signature_id: ID, /) -> Call[Download]:
        """The exact bytes that were signed (RFC 8785 canonical JSON)."""
        return Call(Download, tenant, case_id, signature_id)

    @op("GET " + SIGNATURE + "/signature")
    def signature_file(self, tenant: str, case_id: ID, signature_id: ID, /
                       ) -> Call[Download]:
        """The signature itself, for any tool to verify against :meth:`document`: a detached
        CMS (``.p7s``, DER) or a compact JWS (``.jws``)."""
        return Call(Download, tenant, case_id, signature_id)

    @op("GET " + SIGNATURE + "/receipt")
    def receipt(self, tenant: str, case_id: ID, signature_id: ID, /) -> Call[Download]:
        """The sealed PDF receipt of a step that issues a document."""
        return Call(Download, tenant, case_id, signature_id)


class Signing(Resource[M]):
    """Which provider signs a unit's steps and how signatures are checked. Units below
    inherit their nearest ancestor's set-up."""

    @op("GET /api/v1/signing/providers")
    def providers(self) -> Call[builtins.list[Provider]]:
        """The signing providers installed, with the JSON Schema of their ``config``."""
        return Call(builtins.list[Provider])

    @op("GET " + SIGNING)
    def get(self, tenant: str, /) -> Call[SigningView]:
        """The unit's own set-up (``own``) and the one in force (``effective``: own or
        inherited). Secrets show as ``***``."""
        return Call(SigningView, tenant)

    @op("PUT " + SIGNING)
    def replace(self, tenant: str, /, *, provider: str, trust_anchors: Sequence[str],
                config: Mapping[str, Any] | None = None,
                revocation: Mapping[str, Any] | None = None,
                signer_match: Mapping[str, Any] | None = None, format: str | None = None,
                seal: Mapping[str, Any] | None = None) -> Call[SigningView]:
        """Replace the unit's own set-up (what is left out takes the service's default).

        ``provider``: one of :meth:`providers` (``"pkcs12"``: a server-side key, ``"client"``:
        the user's token through a plug-in...), with its ``config`` (for ``pkcs12``:
        ``{"pkcs12": <base64>, "password": ...}``); ``trust_anchors``: PEM roots a signer must
        chain to; ``revocation``: ``{"mode": "off"|"soft-fail"|"hard-fail", "crls": [PEM],
        "fetch": bool}``; ``signer_match``: ``{"certificate": "UID", "principal":
        "external_id", "strip_prefixes": ["CCCD:"]}`` ties the certificate to the acting
        user; ``format``: ``"cms"`` or ``"jws"``; ``seal``: ``{"pkcs12", "password"}``, the
        unit's seal for the PDF receipts of steps that issue a document."""
        return Call(SigningView, tenant, json=body(
            provider=provider, config=dict(config) if config is not None else None,
            trust_anchors=builtins.list(trust_anchors),
            revocation=dict(revocation) if revocation is not None else None,
            signer_match=dict(signer_match) if signer_match is not None else None,
            format=format, seal=dict(seal) if seal is not None else None))

    @op("DELETE " + SIGNING)
    def delete(self, tenant: str, /) -> Call[None]:
        """Drop the unit's own set-up: it inherits its ancestors' again."""
        return Call(NO_CONTENT, tenant)

    @op("GET " + SIGNING + "/certificates")
    def certificates(self, tenant: str, /) -> Call[builtins.list[Certificate]]:
        """The certificates the caller may sign with here, as the provider knows them (empty
        where no signing is set up)."""
        return Call(builtins.list[Certificate], tenant)
