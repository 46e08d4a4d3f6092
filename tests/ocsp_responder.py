"""An OCSP responder for tests (RFC 6960 over HTTP POST), answering for the test PKI's
signing CA: ``revoked`` for the serial numbers it is told, ``good`` for the others. Its
answers are signed by the CA itself, as a CA's own responder may."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ReasonFlags, ocsp

from tests.http_servers import serve
from tests.pki import NOW, Identity


class OcspResponder:
    """Start it first (its address goes into the certificates), then say which CA it
    answers for (``issuer``) and which certificates it knows (``certificates``)."""

    def __init__(self) -> None:
        self.issuer: Identity | None = None
        self.certificates: dict[int, Any] = {}
        self.revoked: set[int] = set()
        self.asked: list[int] = []
        self.url = ""

    def answer(self, request_der: bytes) -> bytes:
        assert self.issuer is not None
        certificates = self.certificates
        request = ocsp.load_der_ocsp_request(request_der)
        serial = request.serial_number
        self.asked.append(serial)
        if serial not in certificates:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        revoked = serial in self.revoked
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=certificates[serial], issuer=self.issuer.certificate,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - timedelta(minutes=5), next_update=NOW + timedelta(days=1),
            revocation_time=NOW - timedelta(hours=1) if revoked else None,
            revocation_reason=ReasonFlags.key_compromise if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer.certificate)
        return builder.sign(self.issuer.key, hashes.SHA256()).public_bytes(  # type: ignore[arg-type]
            serialization.Encoding.DER)

    @contextmanager
    def running(self) -> Iterator[OcspResponder]:
        def respond(path: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, dict[str, str], bytes]:
            return 200, {"content-type": "application/ocsp-response"}, self.answer(body)

        with serve(respond) as base:
            self.url = f"{base}/ocsp"
            yield self
