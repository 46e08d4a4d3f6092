"""Signatures as JWS (RFC 7515) with the certificate chain in ``x5c``.

The JWS payload is small and never the document: the canonical JSON of the signed
document's SHA-256 digest (``{"digest":…,"digest_algorithm":"sha256","type":…}``), so the
documents still never leave the platform and a verifier recomputes the digest from the
document. The protected header carries ``alg`` (RS256) and ``x5c`` (the chain, signer first,
base64 DER). A remote service or a key signs the SHA-256 of the JWS signing input exactly as
it signs any hash, so every provider can produce one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.signing.canonical import DIGEST_ALGORITHM, MEDIA_TYPE

ALGORITHMS = ("RS256", "PS256", "ES256")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def payload(document_digest: bytes) -> bytes:
    return rfc8785.dumps({"digest": document_digest.hex(), "digest_algorithm": DIGEST_ALGORITHM,
                          "type": MEDIA_TYPE})


def signing_input(chain: Sequence[bytes], document_digest: bytes,
                  algorithm: str = "RS256") -> bytes:
    header = {"alg": algorithm, "typ": "JOSE",
              "x5c": [base64.b64encode(c).decode() for c in chain]}
    return (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
            + _b64url(payload(document_digest))).encode()


def compact(signing_input_bytes: bytes, signature: bytes) -> bytes:
    return signing_input_bytes + b"." + _b64url(signature).encode()


def hash_to_sign(signing_input_bytes: bytes) -> bytes:
    return hashlib.sha256(signing_input_bytes).digest()


@dataclass(frozen=True)
class Parsed:
    algorithm: str
    chain: list[bytes]
    payload: bytes
    signing_input: bytes
    signature: bytes


def parse(token: bytes) -> Parsed | None:
    try:
        head, body, sig = token.decode("ascii").split(".")
        header = json.loads(_unb64url(head))
        chain = [base64.b64decode(c, validate=True) for c in header["x5c"]]
        if header.get("alg") not in ALGORITHMS or not chain or header.get("crit"):
            return None
        for certificate in chain:  # each must be a certificate, not just base64
            x509.load_der_x509_certificate(certificate)
        return Parsed(header["alg"], chain, _unb64url(body), f"{head}.{body}".encode(),
                      _unb64url(sig))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def signature_holds(parsed: Parsed) -> bool:
    try:
        key = x509.load_der_x509_certificate(parsed.chain[0]).public_key()
        if parsed.algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            r, s = (int.from_bytes(parsed.signature[:32], "big"),
                    int.from_bytes(parsed.signature[32:], "big"))
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

            key.verify(encode_dss_signature(r, s), parsed.signing_input,
                       ec.ECDSA(hashes.SHA256()))
            return True
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        scheme: padding.AsymmetricPadding = padding.PKCS1v15() if parsed.algorithm == "RS256" \
            else padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        key.verify(parsed.signature, parsed.signing_input, scheme, hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False
