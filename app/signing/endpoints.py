"""Signing routes: the installed providers, a unit's signing set-up, and the signatures of a
case (list, read, send a pending one, re-check, download the evidence)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.cases import service as cases
from app.cases.endpoints import CaseActor, CaseReader
from app.core.deps import Session
from app.core.problems import Problem, not_found, problem_response
from app.definitions.lifecycle import tenant_codes
from app.identity.auth import CurrentPrincipal, ScopedSession
from app.identity.dependencies import Access, needs, needs_any
from app.identity.permissions import Permission
from app.signing import providers, service, steps
from app.signing.models import CaseSignature, SigningConfig
from app.signing.schemas import (
    AnchorOut,
    CertificateOut,
    ProviderOut,
    RecheckOut,
    SignatureIn,
    SignatureOut,
    SigningConfigIn,
    SigningConfigOut,
    SigningView,
)

router = APIRouter(tags=["signing"])
TENANT = "/api/v1/tenants/{tenant}"
SIGNATURES = TENANT + "/cases/{case_id}/signatures"
TenantsRead = Annotated[Access, needs(Permission.TENANTS_READ)]
TenantsWrite = Annotated[Access, needs(Permission.TENANTS_WRITE)]
Signer = Annotated[Access, needs_any(Permission.CASES_ACT, Permission.CASES_READ)]


@router.get("/api/v1/signing/providers", response_model=list[ProviderOut],
            summary="The signing providers installed, with the schema of their settings")
async def list_providers(principal: CurrentPrincipal) -> list[ProviderOut]:
    return [ProviderOut(name=name, config_schema=dict(p.config_schema))
            for name, p in sorted(providers.available().items())]


def _anchor(pem: str) -> AnchorOut:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return AnchorOut(subject=certificate.subject.rfc4514_string(),
                     not_after=certificate.not_valid_after_utc,
                     sha256=hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest())


def _config_out(row: SigningConfig, code: str | None) -> SigningConfigOut:
    revocation = dict(row.policy.get("revocation") or {})
    revocation["crls"] = len(revocation.get("crls", []))
    return SigningConfigOut(
        tenant=code, provider=row.provider, config=service.redacted(row.provider, row.config),
        trust_anchors=[_anchor(p) for p in row.policy.get("trust_anchors", [])],
        revocation=revocation, signer_match=row.policy.get("signer_match"),
        format=row.policy.get("format", "cms"), seal=service.seal_subject(row.policy),
        updated_at=row.updated_at)


async def _view(session: ScopedSession, access: Access) -> SigningView:
    own = await service.own(session, access.tenant)
    found = await service.effective(session, access.tenant)
    codes = await tenant_codes(session, {found.row.tenant_id} if found else set())
    return SigningView(
        own=_config_out(own, access.tenant.code) if own else None,
        effective=_config_out(found.row, codes.get(found.row.tenant_id)) if found else None)


@router.get(TENANT + "/signing", response_model=SigningView,
            summary="The unit's own signing set-up and the one in force (own or inherited); "
            "secrets are never shown")
async def read_signing(access: TenantsRead, session: ScopedSession) -> SigningView:
    return await _view(session, access)


@router.put(TENANT + "/signing", response_model=SigningView,
            summary="Replace the unit's own signing set-up (units below inherit it)")
async def replace_signing(access: TenantsWrite, body: SigningConfigIn,
                          session: ScopedSession) -> SigningView:
    await service.replace_own(session, caller=access.principal, tenant=access.tenant,
                              body=body.model_dump())
    return await _view(session, access)


@router.delete(TENANT + "/signing", status_code=204,
               summary="Drop the unit's own signing set-up; it inherits again")
async def delete_signing(access: TenantsWrite, session: ScopedSession) -> Response:
    await service.delete_own(session, caller=access.principal, tenant=access.tenant)
    return Response(status_code=204)


@router.get(TENANT + "/signing/certificates", response_model=list[CertificateOut],
            summary="The certificates you may sign with here, as the provider knows them")
async def list_certificates(access: Signer, session: ScopedSession) -> list[CertificateOut]:
    found = await service.effective(session, access.tenant)
    if found is None:
        return []
    signer = await steps.signer_of(session, access.principal)
    return [CertificateOut(credential_id=c.credential_id, subject=c.subject,
                           not_before=c.not_before, not_after=c.not_after,
                           certificate=base64.b64encode(c.certificate).decode())
            for c in await found.provider.certificates(found.row.config, signer)]


# ---- a case's signatures ---------------------------------------------------------------------


@router.get(SIGNATURES, response_model=list[SignatureOut],
            summary="The signatures asked for on the case, oldest first")
async def list_signatures(access: CaseReader, case_id: uuid.UUID,
                          session: ScopedSession) -> list[SignatureOut]:
    await cases.readable(session, access.principal, access.tenant, case_id)
    return [SignatureOut.of(r) for r in await steps.listed(session, access.tenant, case_id)]


@router.get(SIGNATURES + "/{signature_id}", response_model=SignatureOut,
            summary="One signature: its document digest, status, evidence and verdict")
async def read_signature(access: CaseReader, case_id: uuid.UUID, signature_id: uuid.UUID,
                         session: ScopedSession) -> SignatureOut:
    await cases.readable(session, access.principal, access.tenant, case_id)
    return SignatureOut.of(await steps.get(session, access.tenant, case_id, signature_id))


@router.post(SIGNATURES + "/{signature_id}", response_model=SignatureOut,
             summary="Send the signature of a pending request (a plug-in's detached CMS); "
             "when valid, the action is taken at once",
             responses={409: {"description": "expired, already finished, or the case "
                              "changed"}, 422: {"description": "the signature is invalid"}})
async def send_signature(access: CaseActor, case_id: uuid.UUID, signature_id: uuid.UUID,
                         body: SignatureIn, session: ScopedSession, request: Request,
                         response: Response) -> SignatureOut | JSONResponse:
    if body.signature.count(".") == 2 and body.signature.startswith("ey"):
        cms = body.signature.encode()  # a compact JWS
    else:
        try:
            cms = base64.b64decode(body.signature, validate=True)
        except (binascii.Error, ValueError):
            raise Problem(422, "validation-failed", "Dữ liệu không hợp lệ", "Invalid request",
                          detail="The signature must be a base64 CMS or a compact JWS.",
                          errors=[{"pointer": "/signature", "detail": "neither base64 nor "
                                   "a compact JWS"}]) from None
    done = await steps.complete(session, principal=access.principal, tenant=access.tenant,
                                case_id=case_id, signature_id=signature_id, cms=cms)
    if done.problem is not None:  # the refusal is recorded; the case is unchanged
        return problem_response(request, done.problem)
    if done.case is not None:
        response.headers["ETag"] = cases.etag(done.case)
    return SignatureOut.of(done.signature)


@router.post(SIGNATURES + "/{signature_id}/verify", response_model=RecheckOut,
             summary="Re-check a completed signature and whether the case still holds what "
             "was signed")
async def verify_signature(access: CaseReader, case_id: uuid.UUID, signature_id: uuid.UUID,
                           session: ScopedSession) -> RecheckOut:
    case, _ = await cases.readable(session, access.principal, access.tenant, case_id)
    row = await steps.get(session, access.tenant, case_id, signature_id)
    found = await steps.recheck(session, access.tenant, case, row)
    return RecheckOut(valid=found.verdict.valid,
                      reasons=[r.as_dict() for r in found.verdict.reasons],
                      document_intact=found.document_intact, matches_case=found.matches_case,
                      mismatches=found.mismatches, receipt_intact=found.receipt_intact,
                      checked_at=found.verdict.checked_at)


async def _evidence(session: ScopedSession, access: Access, case_id: uuid.UUID,
                    signature_id: uuid.UUID) -> CaseSignature:
    await cases.readable(session, access.principal, access.tenant, case_id)
    return await steps.get(session, access.tenant, case_id, signature_id)


@router.get(SIGNATURES + "/{signature_id}/document", response_class=Response,
            summary="The exact bytes that were signed (RFC 8785 canonical JSON)")
async def signed_document(access: CaseReader, case_id: uuid.UUID, signature_id: uuid.UUID,
                          session: ScopedSession) -> Response:
    row = await _evidence(session, access, case_id, signature_id)
    return Response(steps.content_of(row), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{row.id}.json"'})


@router.get(SIGNATURES + "/{signature_id}/signature", response_class=Response,
            summary="The signature itself: a detached CMS (.p7s, DER) or a compact JWS, for "
            "any tool to verify against the document")
async def signature_file(access: CaseReader, case_id: uuid.UUID, signature_id: uuid.UUID,
                         session: ScopedSession) -> Response:
    row = await _evidence(session, access, case_id, signature_id)
    if row.signature is None:
        raise not_found("signature-file", str(signature_id))
    cms = row.signature[:1] == b"\x30"
    return Response(row.signature,
                    media_type="application/pkcs7-signature" if cms else "application/jose",
                    headers={"Content-Disposition": f'attachment; filename="{row.id}.'
                             f'{"p7s" if cms else "jws"}"'})


@router.get(SIGNATURES + "/{signature_id}/receipt", response_class=Response,
            summary="The sealed PDF receipt of a step that issues a document")
async def receipt_file(access: CaseReader, case_id: uuid.UUID, signature_id: uuid.UUID,
                       session: ScopedSession) -> Response:
    row = await _evidence(session, access, case_id, signature_id)
    if row.receipt is None:
        raise not_found("receipt", str(signature_id))
    return Response(row.receipt, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{row.id}.pdf"'})


# ---- a remote provider's callback (outside /api/v1: authenticated by the provider's HMAC) -----

callbacks = APIRouter(tags=["signing"])


@callbacks.post("/callbacks/signing/{tenant}/{signature_id}",
                summary="A remote signing service reports a transaction's outcome (HMAC "
                "authenticated; a duplicate or replay changes nothing)")
async def signing_callback(tenant: str, signature_id: uuid.UUID, request: Request,
                           session: Session) -> dict[str, str]:
    body = await request.body()
    status = await steps.callback(session, tenant_code=tenant, signature_id=signature_id,
                                  headers={k.lower(): v for k, v in request.headers.items()},
                                  body=body)
    return {"status": status}
