"""A test PKI built with ``cryptography``: a root, an intermediate, and signers that are good,
expired, revoked (with the intermediate's CRL), or whose key usage does not allow signing.

Every signer's subject carries a ``UID`` (where Vietnamese CAs put the citizen-ID number,
``CCCD:<number>``) for the signer-matching rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

NOW = datetime.now(UTC)
# Where signer certificates say their CRL is; nothing serves it: the CRL is configured.
CRL_URL = "http://crl.nentang.test/signing-ca.crl"


@dataclass
class Identity:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def pkcs12(self, password: bytes) -> bytes:
        return pkcs12.serialize_key_and_certificates(
            b"signer", self.key, self.certificate, self.chain,
            serialization.BestAvailableEncryption(password))


def _name(common_name: str, serial: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
             x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if serial is not None:
        parts.append(x509.NameAttribute(NameOID.USER_ID, serial))
    return x509.Name(parts)


def _issue(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: Identity | None, *,
           ca: bool, key_usage: dict[str, bool], not_before: datetime,
           not_after: datetime, crl_url: str = "", ocsp_url: str = "") -> x509.Certificate:
    usage = {name: False for name in (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")}
    usage.update(key_usage)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.certificate.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**usage), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)  # type: ignore[arg-type]
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url or CRL_URL)], None, None, None)]),
            critical=False)
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(ocsp_url))]),
                critical=False)
    signing_key = issuer.key if issuer else key
    return builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Pki:
    root: Identity
    intermediate: Identity
    signer: Identity
    expired: Identity
    revoked: Identity
    wrong_usage: Identity
    crl: x509.CertificateRevocationList
    other_root: Identity
    crl_url: str = CRL_URL
    ocsp_url: str = ""

    @property
    def crl_pem(self) -> str:
        return self.crl.public_bytes(serialization.Encoding.PEM).decode()

    def person(self, serial: str, *, name: str = "Nguyễn Văn A") -> Identity:
        """A good signer certificate for ``serial`` (e.g. ``CCCD:001099012345``)."""
        return self._signer(name, serial)

    def _signer(self, name: str, serial: str, *, usage: dict[str, bool] | None = None,
                not_before: datetime | None = None, not_after: datetime | None = None,
                issuer: Identity | None = None) -> Identity:
        key = _key()
        issuer = issuer or self.intermediate
        certificate = _issue(_name(name, serial), key, issuer, ca=False,
                             key_usage=usage or {"digital_signature": True,
                                                 "content_commitment": True},
                             not_before=not_before or NOW - timedelta(days=30),
                             not_after=not_after or NOW + timedelta(days=365),
                             crl_url=self.crl_url, ocsp_url=self.ocsp_url)
        return Identity(key, certificate, [issuer.certificate])


def build(signer_serial: str = "CCCD:001099012345", crl_url: str = CRL_URL,
          ocsp_url: str = "") -> Pki:
    """The whole PKI; signer certificates name ``crl_url`` as their CRL's address and, when
    given, ``ocsp_url`` as their OCSP responder."""
    root_key, inter_key, other_key = _key(), _key(), _key()
    ca_usage = {"key_cert_sign": True, "crl_sign": True}
    long_ago, far = NOW - timedelta(days=3650), NOW + timedelta(days=3650)
    root = Identity(root_key, _issue(_name("Nentang Test Root CA"), root_key, None, ca=True,
                                     key_usage=ca_usage, not_before=long_ago, not_after=far))
    intermediate = Identity(inter_key, _issue(_name("Nentang Test Signing CA"), inter_key, root,
                                              ca=True, key_usage=ca_usage, not_before=long_ago,
                                              not_after=far), [root.certificate])
    other_root = Identity(other_key, _issue(_name("Some Other Root"), other_key, None, ca=True,
                                            key_usage=ca_usage, not_before=long_ago,
                                            not_after=far))
    pki = Pki(root, intermediate, root, root, root, root, None,  # type: ignore[arg-type]
              other_root, crl_url, ocsp_url)
    pki.signer = pki._signer("Nguyễn Văn A", signer_serial)
    pki.expired = pki._signer("Trần Thị B", signer_serial, not_before=NOW - timedelta(days=400),
                              not_after=NOW - timedelta(days=1))
    pki.revoked = pki._signer("Lê Văn C", signer_serial)
    pki.wrong_usage = pki._signer("Phạm Văn D", signer_serial,
                                  usage={"key_encipherment": True})
    pki.crl = (x509.CertificateRevocationListBuilder()
               .issuer_name(intermediate.certificate.subject)
               .last_update(NOW - timedelta(days=1)).next_update(NOW + timedelta(days=30))
               .add_revoked_certificate(x509.RevokedCertificateBuilder()
                                        .serial_number(pki.revoked.certificate.serial_number)
                                        .revocation_date(NOW - timedelta(hours=1)).build())
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   inter_key.public_key()), critical=False)
               .add_extension(x509.CRLNumber(1), critical=False)
               .sign(inter_key, hashes.SHA256()))
    return pki


def tls_identity(pki: Pki, *, server: bool, name: str) -> Identity:
    """A TLS certificate from the test root: a server's for 127.0.0.1, or a client's."""
    import ipaddress

    key = _key()
    builder = (x509.CertificateBuilder().subject_name(_name(name))
               .issuer_name(pki.root.certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return Identity(key, builder.sign(pki.root.key, hashes.SHA256()),  # type: ignore[arg-type]
                    [pki.root.certificate])


def key_pem(identity: Identity) -> str:
    return identity.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
