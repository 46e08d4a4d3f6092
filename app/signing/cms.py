"""Building a CAdES-BES detached signature around a signature value made elsewhere.

A remote signing service signs a hash and returns the bare signature value. The platform
prepares the signed attributes (content type, signing time, the document's digest and the
signer's certificate reference), hands out the hash of their DER encoding to be signed, and
afterwards wraps the returned value, the attributes and the certificate chain into the
detached CMS that any CMS tool verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import algos
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from app.signing.canonical import DIGEST_ALGORITHM

# What a remote service is asked for: RSA with PKCS#1 v1.5 over a SHA-256 hash.
HASH_OID = "2.16.840.1.101.3.4.2.1"
SIGN_ALGO_OID = "1.2.840.113549.1.1.1"


@dataclass(frozen=True)
class ToBeSigned:
    signed_attributes: bytes  # DER
    hash: bytes  # what the remote service signs


def _signer(certificate: bytes, chain: Sequence[bytes],
            value: bytes | None = None) -> signers.ExternalSigner:
    return signers.ExternalSigner(
        signing_cert=asn1_x509.Certificate.load(certificate),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1_x509.Certificate.load(c) for c in chain]),
        signature_value=value,
        signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}))


async def prepare(certificate: bytes, chain: Sequence[bytes],
                  document_digest: bytes) -> ToBeSigned:
    attributes = await _signer(certificate, chain).signed_attrs(
        document_digest, DIGEST_ALGORITHM, use_pades=True, is_pdf_sig=False)
    der = attributes.dump()
    return ToBeSigned(der, hashlib.sha256(der).digest())


async def assemble(certificate: bytes, chain: Sequence[bytes], signed_attributes: bytes,
                   value: bytes) -> bytes:
    info = await _signer(certificate, chain, value).async_sign_prescribed_attributes(
        DIGEST_ALGORITHM, asn1_cms.CMSAttributes.load(signed_attributes),
        encap_content_info={"content_type": "data"})
    return bytes(info.dump())
