"""``pkcs12``: a software key in a PKCS#12 file, signing on the server at once.

For development and tests, and for an organisation's seal where the key may live on the
server (an HSM-held seal plugs in as its own provider). The file and its password are
secrets of the tenant's configuration.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.sign import signers

from app.signing import jws
from app.signing.canonical import DIGEST_ALGORITHM
from app.signing.providers import (
    CertificateInfo,
    ConfigError,
    Failed,
    Pending,
    ProviderUnavailable,
    Signed,
    Signer,
    SignRequest,
)


def _bytes(config: Mapping[str, Any]) -> tuple[bytes, bytes]:
    try:
        return base64.b64decode(config["pkcs12"], validate=True), config["password"].encode()
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("/pkcs12", "The PKCS#12 file must be base64.") from exc


class SoftwareKeyProvider:
    name: ClassVar[str] = "pkcs12"
    polled: ClassVar[bool] = False
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["pkcs12", "password"],
        "additionalProperties": False,
        "properties": {
            "pkcs12": {"type": "string", "maxLength": 200_000, "writeOnly": True,
                       "description": "The PKCS#12 (.p12/.pfx) file, base64."},
            "password": {"type": "string", "maxLength": 1000, "writeOnly": True},
        },
    }

    def check_config(self, config: Mapping[str, Any]) -> None:
        data, password = _bytes(config)
        try:
            key, certificate, _ = pkcs12.load_key_and_certificates(data, password)
        except ValueError as exc:
            raise ConfigError("/password", "The PKCS#12 file cannot be opened with this "
                              "password, or is not a PKCS#12 file.") from exc
        if key is None or certificate is None:
            raise ConfigError("/pkcs12", "The PKCS#12 file holds no key with its certificate.")

    def _signer(self, config: Mapping[str, Any]) -> signers.SimpleSigner:
        data, password = _bytes(config)
        signer: signers.SimpleSigner = signers.SimpleSigner.load_pkcs12_data(
            data, [], passphrase=password)
        return signer

    async def certificates(self, config: Mapping[str, Any],
                           signer: Signer) -> list[CertificateInfo]:
        certificate = self._signer(config).signing_cert
        assert certificate is not None  # check_config refused a file without one
        validity = certificate["tbs_certificate"]["validity"]
        return [CertificateInfo(credential_id="pkcs12", certificate=certificate.dump(),
                                subject=certificate.subject.human_friendly,
                                not_before=validity["not_before"].native,
                                not_after=validity["not_after"].native)]

    async def start(self, config: Mapping[str, Any], request: SignRequest) -> Signed | Pending:
        if request.format == "jws":
            data, password = _bytes(config)
            key, certificate, others = pkcs12.load_key_and_certificates(data, password)
            if not isinstance(key, rsa.RSAPrivateKey) or certificate is None:
                raise ProviderUnavailable("JWS signing needs an RSA key with its certificate")
            chain = [c.public_bytes(Encoding.DER) for c in (certificate, *others)]
            signing_input = jws.signing_input(chain, request.digest)
            value = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            return Signed(jws.compact(signing_input, value), transaction_id=str(uuid.uuid4()))
        signed = await self._signer(config).async_sign(
            data_digest=request.digest, digest_algorithm=DIGEST_ALGORITHM, use_pades=True,
            is_pdf_sig=False, encap_content_info={"content_type": "data"})
        return Signed(signed.dump(), transaction_id=str(uuid.uuid4()))

    async def status(self, config: Mapping[str, Any], transaction_id: str,
                     state: Mapping[str, Any]) -> Signed | Pending | Failed:
        return Failed("unknown-transaction", "This provider signs at once; it has no "
                      "transactions to ask about.", transaction_id)
