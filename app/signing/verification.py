"""Checking a detached CMS (CAdES-BES) signature over a signed step.

A signature is accepted only if all of these hold, and the verdict names each that does not:

* it is a well-formed CMS SignedData with one signer;
* it covers exactly the signed document (the message digest) and its cryptography holds;
* the signer's certificate chains to one of the tenant's trust anchors, and every
  certificate on the path was valid at the moment checked (when the signature arrived;
  a later re-check uses that same moment);
* the certificate's key usage allows signing for non-repudiation;
* it was not revoked, when the tenant asks for revocation checks (CRLs it configures, and
  the certificates' own distribution points or OCSP responders if fetching is allowed);
* the signer is the acting user, when the tenant configures a matching rule (say, the
  citizen-ID number in the certificate subject against the user's external id).

pyHanko (and its certificate validator) does the cryptography and path validation; this
module turns its findings into reasons an official can act on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from app.signing import jws

# pyHanko logs every failed path search with a traceback; the verdict already says why.
logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)

RevocationMode = Literal["off", "soft-fail", "hard-fail"]
SUBJECT_ATTRIBUTES = {"serialNumber": "serial_number", "UID": "user_id",
                      "CN": "common_name", "emailAddress": "email_address"}


@dataclass(frozen=True)
class SignerMatch:
    """The signer is the acting user when the certificate subject's ``certificate`` attribute,
    less any of ``strip_prefixes`` (``CCCD:``), equals the user's ``principal`` attribute."""

    certificate: str
    principal: str
    strip_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    trust_anchors: tuple[bytes, ...]  # DER certificates
    revocation: RevocationMode = "off"
    crls: tuple[bytes, ...] = ()  # DER
    fetch_revocation: bool = False
    signer_match: SignerMatch | None = None


@dataclass(frozen=True)
class Reason:
    code: str
    en: str
    vi: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.en, "detail_vi": self.vi}


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reasons: tuple[Reason, ...]
    checked_at: datetime
    signer_subject: str | None = None
    certificate_serial: str | None = None
    signing_time: datetime | None = None
    chain: tuple[bytes, ...] = field(default=(), repr=False)  # DER, signer first

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reasons": [r.as_dict() for r in self.reasons],
                "checked_at": self.checked_at.isoformat(), "signer_subject": self.signer_subject,
                "certificate_serial": self.certificate_serial,
                "signing_time": self.signing_time.isoformat() if self.signing_time else None}


MALFORMED = Reason("malformed", "The signature is not a detached CMS signature with one signer.",
                   "Chữ ký không phải chữ ký CMS tách rời có một người ký.")
NOT_INTACT = Reason("digest-mismatch", "The signature does not cover this document: the signed "
                    "data changed, or another document was signed.", "Chữ ký không khớp với dữ "
                    "liệu được ký: dữ liệu đã bị thay đổi hoặc đã ký một tài liệu khác.")
BAD_SIGNATURE = Reason("signature-invalid", "The signature value does not verify with the "
                       "signer's public key.", "Giá trị chữ ký không hợp lệ với khóa công khai.")
UNTRUSTED = Reason("untrusted", "The certificate does not chain to a trust anchor of this unit.",
                   "Chứng thư số không thuộc chuỗi tin cậy của đơn vị.")
EXPIRED = Reason("certificate-expired", "A certificate on the path was not valid at the time "
                 "checked (expired or not yet valid).", "Chứng thư số không còn hiệu lực tại "
                 "thời điểm kiểm tra.")
REVOKED = Reason("certificate-revoked", "The certificate has been revoked.",
                 "Chứng thư số đã bị thu hồi.")
NO_REVOCATION_INFO = Reason("revocation-unknown", "Whether the certificate was revoked could not "
                            "be established, and this unit requires it.", "Không xác định được "
                            "tình trạng thu hồi của chứng thư số.")
KEY_USAGE = Reason("key-usage", "The certificate's key usage does not allow signing for "
                   "non-repudiation.", "Mục đích sử dụng khóa không cho phép ký số.")
SIGNER_MISMATCH = Reason("signer-mismatch", "The certificate belongs to someone other than the "
                         "acting user.", "Chứng thư số không phải của người thực hiện.")


def _certificate(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


def _signed_data(cms_der: bytes) -> cms.SignedData | None:
    try:
        info = cms.ContentInfo.load(cms_der)
        if info["content_type"].native != "signed_data":
            return None
        signed: cms.SignedData = info["content"]
        if len(signed["signer_infos"]) != 1:
            return None
        signed.native  # noqa: B018 (parses every field: a malformed one raises here)
        return signed
    except (ValueError, TypeError, KeyError, IndexError):
        return None


@asynccontextmanager
async def _context(policy: Policy, moment: datetime) -> AsyncIterator[ValidationContext]:
    """The validation context for ``policy``; a fetching one owns HTTP sessions (to CRL
    distribution points and OCSP responders) that are closed when it is done."""
    checking = policy.revocation != "off"
    fetching = checking and policy.fetch_revocation
    backend = AIOHttpFetcherBackend() if fetching else None
    try:
        yield ValidationContext(
            trust_roots=[_certificate(a) for a in policy.trust_anchors], moment=moment,
            allow_fetching=fetching, fetcher_backend=backend,
            revocation_mode="hard-fail" if policy.revocation == "hard-fail" else "soft-fail",
            crls=[asn1_crl.CertificateList.load(c) for c in policy.crls] if checking else [])
    finally:
        if backend is not None:
            await backend.close()  # type: ignore[no-untyped-call]


async def _validate_cms(content: bytes, signed: cms.SignedData, policy: Policy,
                        moment: datetime) -> Any:
    async with _context(policy, moment) as context:
        return await async_validate_detached_cms(
            content, signed, signer_validation_context=context,
            key_usage_settings=KeyUsageConstraints(key_usage=frozenset({"non_repudiation"})))


def _trust_reason(indication: Any) -> Reason:
    name = getattr(indication, "name", "") or ""
    if "REVOKED" in name:
        return REVOKED
    if "OUT_OF_BOUNDS" in name or "EXPIRED" in name or "NOT_YET_VALID" in name:
        return EXPIRED
    if "CONSTRAINTS" in name:
        return KEY_USAGE
    if "REVOCATION" in name or "TRY_LATER" in name:
        return NO_REVOCATION_INFO
    return UNTRUSTED


def subject_value(certificate: asn1_x509.Certificate, attribute: str) -> str | None:
    native = certificate.subject.native
    value = native.get(SUBJECT_ATTRIBUTES.get(attribute, attribute))
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def signer_matches(certificate: asn1_x509.Certificate, rule: SignerMatch,
                   principal: Mapping[str, str | None]) -> bool:
    value, expected = subject_value(certificate, rule.certificate), principal.get(rule.principal)
    if value is None or not expected:
        return False
    for prefix in rule.strip_prefixes:
        if value.upper().startswith(prefix.upper()):
            value = value[len(prefix):]
            break
    return value.strip() == expected.strip()


async def verify(cms_der: bytes, content: bytes, policy: Policy, *, moment: datetime,
                 principal: Mapping[str, str | None] | None = None) -> Verdict:
    """Check ``cms_der`` over ``content`` as of ``moment`` (see the module docstring)."""
    signed = _signed_data(cms_der)
    if signed is None:
        return Verdict(False, (MALFORMED,), moment)
    try:
        status = await _validate_cms(content, signed, policy, moment)
    except (PathBuildingError, PathValidationError, ValueError, TypeError, KeyError):
        return Verdict(False, (MALFORMED,), moment)
    reasons: list[Reason] = []
    if not status.intact:  # nothing else is judged of a signature over other data
        reasons.append(NOT_INTACT)
    elif not status.valid:
        reasons.append(BAD_SIGNATURE)
    elif status.revoked:
        reasons.append(REVOKED)
    elif not status.trusted:
        reason = _trust_reason(status.trust_problem_indic)
        if reason is UNTRUSTED and policy.revocation == "hard-fail" and (
                await _validate_cms(content, signed, replace(policy, revocation="soft-fail"),
                                    moment)).trusted:
            reason = NO_REVOCATION_INFO  # trusted but for the revocation it could not learn
        reasons.append(reason)
    certificate = status.signing_cert
    if (policy.signer_match is not None and principal is not None
            and not signer_matches(certificate, policy.signer_match, principal)):
        reasons.append(SIGNER_MISMATCH)
    path = status.validation_path
    chain = tuple(c.dump() for c in reversed(list(path.iter_certs(include_root=True)))) \
        if path is not None else (certificate.dump(),)
    return Verdict(not reasons, tuple(reasons), moment,
                   signer_subject=certificate.subject.human_friendly,
                   certificate_serial=format(certificate.serial_number, "x"),
                   signing_time=status.signer_reported_dt, chain=chain)


async def verify_jws(token: bytes, content: bytes, policy: Policy, *, moment: datetime,
                     principal: Mapping[str, str | None] | None = None) -> Verdict:
    """Check a compact JWS (``x5c`` chain) over the digest of ``content``: the same checks
    as a CMS signature (see the module docstring)."""
    import hashlib

    parsed = jws.parse(token)
    if parsed is None:
        return Verdict(False, (MALFORMED,), moment)
    leaf = _certificate(parsed.chain[0])
    reasons: list[Reason] = []
    if parsed.payload != jws.payload(hashlib.sha256(content).digest()):
        reasons.append(NOT_INTACT)
    elif not jws.signature_holds(parsed):
        reasons.append(BAD_SIGNATURE)
    else:
        try:
            async with _context(policy, moment) as context:
                validator = CertificateValidator(
                    leaf, intermediate_certs=[_certificate(c) for c in parsed.chain[1:]],
                    validation_context=context)
                path = await validator.async_validate_usage(  # type: ignore[no-untyped-call]
                    {"non_repudiation"})
        except RevokedError:
            reasons.append(REVOKED)
        except (ExpiredError, NotYetValidError):
            reasons.append(EXPIRED)
        except InsufficientRevinfoError:
            reasons.append(NO_REVOCATION_INFO)
        except InvalidCertificateError:
            reasons.append(KEY_USAGE)
        except (PathBuildingError, PathValidationError, ValidationError):
            reasons.append(UNTRUSTED)
        else:
            parsed.chain[:] = [c.dump() for c in reversed(list(
                path.iter_certs(include_root=True)))]
    if (policy.signer_match is not None and principal is not None
            and not signer_matches(leaf, policy.signer_match, principal)):
        reasons.append(SIGNER_MISMATCH)
    return Verdict(not reasons, tuple(reasons), moment, signer_subject=leaf.subject.human_friendly,
                   certificate_serial=format(leaf.serial_number, "x"), chain=tuple(parsed.chain))


async def verify_any(signature: bytes, content: bytes, policy: Policy, *, moment: datetime,
                     principal: Mapping[str, str | None] | None = None) -> Verdict:
    """A CMS (DER) or a compact JWS, told apart by their first byte."""
    if signature[:1] == b"\x30":  # a DER SEQUENCE
        return await verify(signature, content, policy, moment=moment, principal=principal)
    return await verify_jws(signature, content, policy, moment=moment, principal=principal)


def _parse(pems: Sequence[str], load: Callable[[bytes], Any]) -> tuple[bytes, ...]:
    found = []
    for i, pem in enumerate(pems):
        try:
            found.append(load(pem.encode()).public_bytes(Encoding.DER))
        except ValueError as exc:
            raise ValueError(str(i)) from exc
    return tuple(found)


def parse_certificates(pems: Sequence[str]) -> tuple[bytes, ...]:
    """DER of each PEM certificate; a ValueError's message is the index of a bad one."""
    return _parse(pems, x509.load_pem_x509_certificate)


def parse_crls(pems: Sequence[str]) -> tuple[bytes, ...]:
    """DER of each PEM CRL; a ValueError's message is the index of a bad one."""
    return _parse(pems, x509.load_pem_x509_crl)
