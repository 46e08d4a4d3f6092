"""Digital signatures at workflow steps, end to end over the API, against a test PKI: a
server-side seal (PKCS#12) and a user's token through a browser plug-in (client-side CMS).
Every accepted signature verifies with OpenSSL, a changed byte is detected, and every bad
signature (expired, revoked, wrong key usage, untrusted, someone else's, over other data)
leaves the case as it was, with the reason recorded."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyhanko.sign import signers
from sqlalchemy import text

from app.signing import steps
from app.signing.canonical import canonical_bytes, digest
from tests.conftest import Backend
from tests.pki import Identity, Pki, build
from tests.platform import Credentials, Platform
from tests.test_cases import Office, act, office, read, submit
from tests.test_workflows import catalogue

CERTIFICATE_NUMBER = {"fields": {"so_giay_chung_nhan": "01A8012345"}}


@pytest.fixture(scope="session")
def pki() -> Pki:
    return build()


def seal(pki: Pki, identity: Identity | None = None) -> dict[str, Any]:
    """A signing set-up with a server-side PKCS#12 key."""
    p12 = (identity or pki.signer).pkcs12(b"mat-khau")
    return {"provider": "pkcs12", "trust_anchors": [pki.root.pem],
            "config": {"pkcs12": base64.b64encode(p12).decode(), "password": "mat-khau"}}


def plug_in(pki: Pki, **policy: Any) -> dict[str, Any]:
    """A signing set-up where the user's own token signs, matched to them by the
    citizen-ID number in the certificate (here: the API client's id)."""
    return {"provider": "client", "trust_anchors": [pki.root.pem],
            "signer_match": {"certificate": "UID", "principal": "client_id",
                             "strip_prefixes": ["CCCD:"]}, **policy}


async def configure(client: httpx.AsyncClient, tenant: str, who: Credentials,
                    body: dict[str, Any]) -> httpx.Response:
    return await client.put(f"/api/v1/tenants/{tenant}/signing", json=body,
                            headers=who.headers)


async def awaiting_signature(client: httpx.AsyncClient, where: Office) -> str:
    """A case at the head's desk: the next step (issuing the certificate) must be signed."""
    case_id: str = (await submit(client, where))["case"]
    for name, body in (("tiep_nhan_ho_so", None),
                       ("de_xuat_cap", {"fields": {"ten_khong_trung": True,
                                                   "nganh_nghe_khong_cam": True}})):
        moved = await act(client, where, case_id, name, where.officer, body)
        assert moved.status_code == 200, moved.text
    return case_id


async def sign_step(client: httpx.AsyncClient, where: Office, case_id: str) -> httpx.Response:
    return await act(client, where, case_id, "cap_giay_chung_nhan", where.reviewer,
                     CERTIFICATE_NUMBER)


async def plug_in_cms(identity: Identity, digest_b64: str) -> str:
    signer = signers.SimpleSigner.load_pkcs12_data(identity.pkcs12(b"x"), [], passphrase=b"x")
    signed = await signer.async_sign(data_digest=base64.b64decode(digest_b64),
                                     digest_algorithm="sha256", use_pades=True,
                                     is_pdf_sig=False, encap_content_info={"content_type": "data"})
    return base64.b64encode(signed.dump()).decode()


def openssl_verifies(tmp: Path, document: bytes, cms: bytes, anchor_pem: str) -> bool:
    (tmp / "doc.json").write_bytes(document)
    (tmp / "sig.p7s").write_bytes(cms)
    (tmp / "root.pem").write_text(anchor_pem)
    openssl = shutil.which("openssl")
    assert openssl, "the OpenSSL command-line tool verifies the exported signatures"
    done = subprocess.run(
        [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.p7s"),
         "-content", str(tmp / "doc.json"), "-CAfile", str(tmp / "root.pem"),
         "-purpose", "any", "-out", "/dev/null"], capture_output=True, text=True, check=False)
    return done.returncode == 0 and "Verification successful" in done.stderr


async def tamper(backend: Backend, sql: str, **params: Any) -> None:
    """Change stored rows behind the platform's back (as a database superuser would)."""
    engine = backend.superuser_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


def row_id(backend: Backend, value: str) -> Any:
    """An id as each backend stores it (SQLite: 32 hex digits)."""
    return uuid.UUID(value) if backend.is_postgresql else uuid.UUID(value).hex


def json_param(backend: Backend) -> str:
    return "CAST(:value AS JSONB)" if backend.is_postgresql else ":value"


# ---- a server-side seal ---------------------------------------------------------------------


async def test_a_sealed_step_completes_at_once_and_verifies_independently(
        client: httpx.AsyncClient, platform: Platform, backend: Backend, pki: Pki,
        tmp_path: Path) -> None:
    where = await office(platform, client)
    configured = await configure(client, where.province, where.admin, seal(pki))
    assert configured.status_code == 200, configured.text
    case_id = await awaiting_signature(client, where)

    signed = await sign_step(client, where, case_id)
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"]["name"], signed.json()["status"]) == ("da_cap", "closed")
    listed = await client.get(where.cases(f"/{case_id}/signatures"),
                              headers=where.officer.headers)
    assert listed.status_code == 200
    [signature] = listed.json()
    assert (signature["status"], signature["provider"], signature["action"]) == (
        "completed", "pkcs12", "cap_giay_chung_nhan")
    assert signature["verification"]["valid"] is True and len(signature["chain"]) == 3
    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    assert history[-1]["signature_ref"] == signature["id"]

    base = where.cases(f"/{case_id}/signatures/{signature['id']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    cms = (await client.get(f"{base}/signature", headers=where.officer.headers)).content
    assert digest(document).hex() == signature["digest"]
    signed_data = json.loads(document)
    assert signed_data["data"]["so_giay_chung_nhan"] == "01A8012345"
    assert (signed_data["case"], signed_data["workflow"]["key"]) == (case_id, "ho-kinh-doanh")
    assert canonical_bytes(signed_data) == document
    assert openssl_verifies(tmp_path, document, cms, pki.root.pem)
    changed = document.replace(b"01A8012345", b"01A8012346")
    assert not openssl_verifies(tmp_path, changed, cms, pki.root.pem)

    recheck = await client.post(f"{base}/verify", headers=where.officer.headers)
    assert recheck.status_code == 200, recheck.text
    assert (recheck.json()["valid"], recheck.json()["matches_case"]) == (True, True)

    # Someone edits the case in the database: the re-check points at the field.
    await tamper(backend, "UPDATE cases SET data = " + json_param(backend) + " WHERE id = :id",
                 value=json.dumps({**signed_data["data"], "so_giay_chung_nhan": "99"}),
                 id=row_id(backend, case_id))
    recheck = await client.post(f"{base}/verify", headers=where.officer.headers)
    assert (recheck.json()["valid"], recheck.json()["matches_case"]) == (True, False)
    assert recheck.json()["mismatches"] == ["/data/so_giay_chung_nhan"]

    # ...or the stored document itself: the signature no longer covers it.
    forged = {**signed_data, "comment": "sửa"}
    await tamper(backend, "UPDATE case_signatures SET document = " + json_param(backend)
                 + " WHERE id = :id", value=json.dumps(forged), id=row_id(backend, signature["id"]))
    recheck = await client.post(f"{base}/verify", headers=where.officer.headers)
    body = recheck.json()
    assert (body["valid"], body["document_intact"]) == (False, False)
    assert [r["code"] for r in body["reasons"]] == ["digest-mismatch"]


async def test_the_set_up_is_checked_inherited_and_never_shows_its_secrets(
        client: httpx.AsyncClient, platform: Platform, pki: Pki) -> None:
    where = await office(platform, client)
    base = f"/api/v1/tenants/{where.province}/signing"
    good = seal(pki)
    for change, pointer in (
            ({"provider": "khong-co"}, "/provider"),
            ({"config": {**good["config"], "password": "sai"}}, "/config/password"),
            ({"config": {"pkcs12": good["config"]["pkcs12"]}}, "/config/password"),
            ({"config": {**good["config"], "pkcs12": "không phải base64"}}, "/config/pkcs12"),
            ({"trust_anchors": [pki.root.pem, "-----BEGIN CERTIFICATE-----\nAAAA"]},
             "/trust_anchors/1"),
            ({"revocation": {"mode": "soft-fail", "crls": ["rác"]}}, "/revocation/crls/0"),
            ({"revocation": {"mode": "sometimes"}}, "/revocation/mode"),
            ({"trust_anchors": []}, "/trust_anchors")):
        refused = await client.put(base, json={**good, **change}, headers=where.admin.headers)
        assert refused.status_code == 422, (change, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer], refused.text
        assert "mat-khau" not in refused.text and "sai" not in refused.text.replace(
            "sai ", "")
    nothing = await client.get(base, headers=where.admin.headers)
    assert nothing.json() == {"own": None, "effective": None}

    assert (await configure(client, where.province, where.admin, good)).status_code == 200
    shown = (await client.get(base, headers=where.admin.headers)).json()
    assert shown["own"]["config"] == {"pkcs12": "***", "password": "***"}
    assert shown["own"]["trust_anchors"][0]["subject"] == "CN=Nentang Test Root CA,C=VN"
    below = await client.get(f"/api/v1/tenants/{where.commune}/signing",
                             headers=where.admin.headers)
    assert below.json()["own"] is None
    assert below.json()["effective"]["tenant"] == where.province
    audit = await client.get(f"/api/v1/tenants/{where.province}/audit",
                             params={"limit": "500"}, headers=where.admin.headers)
    assert "mat-khau" not in audit.text and good["config"]["pkcs12"][:40] not in audit.text
    certificates = await client.get(f"/api/v1/tenants/{where.commune}/signing/certificates",
                                    headers=where.reviewer.headers)
    assert [c["subject"] for c in certificates.json()] == [
        "User ID: CCCD:001099012345, Common Name: Nguyễn Văn A, Country: VN"]
    providers = await client.get("/api/v1/signing/providers", headers=where.officer.headers)
    assert {"client", "pkcs12"} <= {p["name"] for p in providers.json()}

    dropped = await client.delete(base, headers=where.admin.headers)
    assert dropped.status_code == 204
    assert (await client.delete(base, headers=where.admin.headers)).status_code == 404


# ---- the user's own token through a plug-in ----------------------------------------------------


async def begin(client: httpx.AsyncClient, where: Office, case_id: str) -> dict[str, Any]:
    pending = await sign_step(client, where, case_id)
    assert pending.status_code == 202, pending.text
    assert pending.headers["location"].endswith(pending.json()["id"])
    body: dict[str, Any] = pending.json()
    assert body["status"] == "pending" and body["instructions"]["digest_algorithm"] == "sha256"
    return body


async def send(client: httpx.AsyncClient, where: Office, case_id: str, signature_id: str,
               cms_b64: str, who: Credentials | None = None) -> httpx.Response:
    return await client.post(where.cases(f"/{case_id}/signatures/{signature_id}"),
                             json={"signature": cms_b64}, headers=(who or where.reviewer).headers)


async def test_a_plug_in_signature_completes_the_waiting_step(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, tmp_path: Path) -> None:
    where = await office(platform, client)
    assert (await configure(client, where.province, where.admin, plug_in(pki))).status_code == 200
    case_id = await awaiting_signature(client, where)
    before = await read(client, where, case_id, where.officer)

    pending = await begin(client, where, case_id)
    unchanged = await read(client, where, case_id, where.officer)
    assert unchanged.headers["ETag"] == before.headers["ETag"]
    assert unchanged.json()["state"]["name"] == "trinh_ky"

    reviewer = pki.person(f"CCCD:{where.reviewer.client_id}")
    cms = await plug_in_cms(reviewer, pending["instructions"]["digest"])
    done = await send(client, where, case_id, pending["id"], cms)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["instructions"] is None
    after = await read(client, where, case_id, where.officer)
    assert after.json()["state"]["name"] == "da_cap"
    assert done.headers["ETag"] == after.headers["ETag"]

    base = where.cases(f"/{case_id}/signatures/{pending['id']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    assert openssl_verifies(tmp_path, document, base64.b64decode(cms), pki.root.pem)
    assert not openssl_verifies(tmp_path, document.replace(b"01A8012345", b"01A8012346"),
                                base64.b64decode(cms), pki.root.pem)
    again = await send(client, where, case_id, pending["id"], cms)
    assert (again.status_code, again.json()["code"]) == (409, "signature-not-pending")


async def test_a_bad_signature_leaves_the_case_unchanged_and_says_why(
        client: httpx.AsyncClient, platform: Platform, backend: Backend, pki: Pki) -> None:
    where = await office(platform, client)
    policy = {"revocation": {"mode": "soft-fail", "crls": [pki.crl_pem]}}
    assert (await configure(client, where.province, where.admin,
                            plug_in(pki, **policy))).status_code == 200
    case_id = await awaiting_signature(client, where)
    etag = (await read(client, where, case_id, where.officer)).headers["ETag"]
    me = f"CCCD:{where.reviewer.client_id}"
    someone_else = pki.person("CCCD:079099000001")

    cases: list[tuple[str, Any]] = [
        ("certificate-expired", pki._signer("Hết hạn", me, not_before=pki.expired.certificate
                                            .not_valid_before_utc,
                                            not_after=pki.expired.certificate
                                            .not_valid_after_utc)),
        ("certificate-revoked", pki.revoked),  # (also someone else's: both are said)
        ("untrusted", pki._signer("Gốc lạ", me, issuer=pki.other_root)),
        ("key-usage", pki._signer("Sai mục đích", me, usage={"key_encipherment": True})),
        ("signer-mismatch", someone_else),
        ("digest-mismatch", "other-data"),
        ("malformed", "garbage"),
    ]
    for expected, identity in cases:
        pending = await begin(client, where, case_id)
        if identity == "other-data":
            cms = await plug_in_cms(pki.person(me), base64.b64encode(b"0" * 32).decode())
        elif identity == "garbage":
            cms = base64.b64encode(b"not a signature").decode()
        else:
            cms = await plug_in_cms(identity, pending["instructions"]["digest"])
        refused = await send(client, where, case_id, pending["id"], cms)
        assert refused.status_code == 422, (expected, refused.text)
        assert refused.json()["code"] == "signature-invalid"
        assert expected in [e["code"] for e in refused.json()["errors"]], (expected,
                                                                          refused.text)
        row = (await client.get(where.cases(f"/{case_id}/signatures/{pending['id']}"),
                                headers=where.reviewer.headers)).json()
        assert (row["status"], row["failure"]["code"]) == ("failed", "signature-invalid")
        assert (await read(client, where, case_id, where.officer)).headers["ETag"] == etag

    pending = await begin(client, where, case_id)
    not_base64 = await send(client, where, case_id, pending["id"], "%%%")
    assert [e["pointer"] for e in not_base64.json()["errors"]] == ["/signature"]
    good = await plug_in_cms(pki.person(me), pending["instructions"]["digest"])
    stranger = await send(client, where, case_id, pending["id"], good, who=where.officer)
    assert (stranger.status_code, stranger.json()["code"]) == (403, "not-the-signer")

    # The case moves on while the signature is awaited: the signature no longer applies.
    back = await act(client, where, case_id, "tra_lai_xem_xet", where.reviewer,
                     {"comment": "Xem lại"})
    assert back.status_code == 200, back.text
    late = await send(client, where, case_id, pending["id"], good)
    assert (late.status_code, late.json()["code"]) == (409, "case-changed")
    assert (await read(client, where, case_id, where.officer)).json()["state"]["name"] == (
        "xem_xet_ho_so")

    # Too late: the time to sign ran out.
    moved = await act(client, where, case_id, "de_xuat_cap", where.officer,
                      {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})
    assert moved.status_code == 200
    pending = await begin(client, where, case_id)
    await tamper(backend, "UPDATE case_signatures SET expires_at = :at WHERE id = :id",
                 at=datetime(2000, 1, 1, tzinfo=UTC) if backend.is_postgresql
                 else "2000-01-01 00:00:00.000000", id=row_id(backend, pending["id"]))
    good = await plug_in_cms(pki.person(me), pending["instructions"]["digest"])
    expired = await send(client, where, case_id, pending["id"], good)
    assert (expired.status_code, expired.json()["code"]) == (409, "signature-expired")
    statuses = [s["status"] for s in (await client.get(
        where.cases(f"/{case_id}/signatures"), headers=where.reviewer.headers)).json()]
    assert statuses == ["failed"] * 8 + ["expired"]



async def test_the_worker_expires_a_plug_in_request_nobody_answered(
        client: httpx.AsyncClient, platform: Platform, backend: Backend, pki: Pki) -> None:
    where = await office(platform, client)
    assert (await configure(client, where.province, where.admin, plug_in(pki))).status_code == 200
    case_id = await awaiting_signature(client, where)
    pending = await begin(client, where, case_id)
    await steps.poll(platform.app.state.db)
    base = where.cases(f"/{case_id}/signatures/{pending['id']}")
    assert (await client.get(base, headers=where.reviewer.headers)).json()["status"] == "pending"
    await tamper(backend, "UPDATE case_signatures SET expires_at = :at WHERE id = :id",
                 at=datetime(2000, 1, 1, tzinfo=UTC) if backend.is_postgresql
                 else "2000-01-01 00:00:00.000000", id=row_id(backend, pending["id"]))
    await steps.poll(platform.app.state.db)
    expired = (await client.get(base, headers=where.reviewer.headers)).json()
    assert (expired["status"], expired["failure"]["code"]) == ("expired", "expired")
    assert (await read(client, where, case_id, where.officer)).json()["state"]["name"] == (
        "trinh_ky")


# ---- JWS with x5c ----------------------------------------------------------------------------


def joserfc_verifies(token: bytes, document: bytes) -> dict[str, Any]:
    """Verify a JWS with joserfc (not the platform's code): the key is the x5c leaf's, and
    the payload must name the document's digest."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from joserfc import jws as joserfc_jws
    from joserfc.jwk import RSAKey
    from joserfc.jws import JWSRegistry

    header = json.loads(base64.urlsafe_b64decode(token.split(b".")[0] + b"=="))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    key = RSAKey.import_key(leaf.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    registry = JWSRegistry(algorithms=["RS256"])
    registry.max_header_length = 16_384  # an x5c chain is far longer than joserfc's default
    payload: dict[str, Any] = json.loads(
        joserfc_jws.deserialize_compact(token, key, registry=registry).payload)
    assert payload["digest"] == digest(document).hex()
    return payload


def plug_in_jws(identity: Identity, payload_b64url: str) -> str:
    """What a plug-in does for a JWS set-up: sign the payload handed out, with x5c."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import Encoding

    chain = [c.public_bytes(Encoding.DER) for c in (identity.certificate, *identity.chain)]
    header = base64.urlsafe_b64encode(json.dumps(
        {"alg": "RS256", "x5c": [base64.b64encode(c).decode() for c in chain]}).encode()
    ).rstrip(b"=").decode()
    signing_input = f"{header}.{payload_b64url}".encode()
    value = identity.key.sign(signing_input, padding.PKCS1v15(),  # type: ignore[call-arg]
                              hashes.SHA256())  # type: ignore[arg-type]
    return f"{header}.{payload_b64url}." + base64.urlsafe_b64encode(value).rstrip(
        b"=").decode()


async def test_jws_signatures_verify_independently_and_detect_a_change(
        client: httpx.AsyncClient, platform: Platform, pki: Pki) -> None:
    from joserfc.errors import BadSignatureError

    where = await office(platform, client)
    assert (await configure(client, where.province, where.admin,
                            {**seal(pki), "format": "jws"})).status_code == 200
    case_id = await awaiting_signature(client, where)
    signed = await sign_step(client, where, case_id)
    assert signed.status_code == 200, signed.text
    [signature] = (await client.get(where.cases(f"/{case_id}/signatures"),
                                    headers=where.officer.headers)).json()
    base = where.cases(f"/{case_id}/signatures/{signature['id']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    token = await client.get(f"{base}/signature", headers=where.officer.headers)
    assert token.headers["content-type"] == "application/jose"
    assert joserfc_verifies(token.content, document)["type"].endswith("signed-step+json")
    head, body, value = token.content.split(b".")
    forged = json.loads(base64.urlsafe_b64decode(body + b"=="))
    forged["digest"] = "0" * 64
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=")
    with pytest.raises(BadSignatureError):
        joserfc_verifies(b".".join((head, forged_body, value)), document)
    recheck = (await client.post(f"{base}/verify", headers=where.officer.headers)).json()
    assert (recheck["valid"], recheck["matches_case"]) == (True, True)

    # A plug-in returning a JWS, and one that signed something else.
    assert (await configure(client, where.province, where.admin,
                            {**plug_in(pki), "format": "jws"})).status_code == 200
    case_id = await awaiting_signature(client, where)
    me = pki.person(f"CCCD:{where.reviewer.client_id}")
    pending = await begin(client, where, case_id)
    assert pending["instructions"]["format"] == "jws"
    wrong = plug_in_jws(me, base64.urlsafe_b64encode(b'{"digest":"00"}').rstrip(b"=").decode())
    refused = await send(client, where, case_id, pending["id"], wrong)
    assert [e["code"] for e in refused.json()["errors"]] == ["digest-mismatch"]
    pending = await begin(client, where, case_id)
    done = await send(client, where, case_id, pending["id"],
                      plug_in_jws(me, pending["instructions"]["payload"]))
    assert done.status_code == 200, done.text
    assert (await read(client, where, case_id, where.officer)).json()["state"]["name"] == "da_cap"


@pytest.mark.parametrize("form", ["cms", "jws"])
async def test_each_reason_a_signature_fails_is_named(form: str, pki: Pki) -> None:
    """The verifier alone (no API): each bad certificate gives its own reason, in both
    formats, and a good one passes."""
    from app.signing import jws as jws_format
    from app.signing import verification

    content = b'{"case":"x"}'
    policy = verification.Policy(
        trust_anchors=verification.parse_certificates([pki.root.pem]), revocation="soft-fail",
        crls=verification.parse_crls([pki.crl_pem]),
        signer_match=verification.SignerMatch("UID", "external_id", ("CCCD:",)))
    me = {"external_id": "001099012345"}

    async def signed(identity: Identity) -> bytes:
        if form == "cms":
            return base64.b64decode(await plug_in_cms(identity, base64.b64encode(
                digest(content)).decode()))
        payload = base64.urlsafe_b64encode(jws_format.payload(digest(content))).rstrip(b"=")
        return plug_in_jws(identity, payload.decode()).encode()

    expectations = [(pki.signer, []), (pki.expired, ["certificate-expired"]),
                    (pki.revoked, ["certificate-revoked"]), (pki.wrong_usage, ["key-usage"]),
                    (pki._signer("Lạ", "CCCD:001099012345", issuer=pki.other_root),
                     ["untrusted"]),
                    (pki.person("CCCD:079000000001"), ["signer-mismatch"])]
    for identity, reasons in expectations:
        verdict = await verification.verify_any(await signed(identity), content, policy,
                                                moment=datetime.now(UTC), principal=me)
        assert [r.code for r in verdict.reasons] == reasons, identity.certificate.subject
        assert verdict.valid is not reasons
    not_a_certificate = b".".join(base64.urlsafe_b64encode(part).rstrip(b"=") for part in (
        b'{"alg":"RS256","x5c":["AAAA"]}', b"{}", b"sig"))
    garbage = await verification.verify_any(not_a_certificate, content, policy,
                                            moment=datetime.now(UTC), principal=me)
    assert [r.code for r in garbage.reasons] == ["malformed"]
    other = await verification.verify_any(await signed(pki.signer), b'{"case":"y"}', policy,
                                          moment=datetime.now(UTC), principal=me)
    assert [r.code for r in other.reasons] == ["digest-mismatch"]


# ---- a sealed PDF receipt of a step that issues a document -------------------------------------


def issuing_workflow() -> dict[str, Any]:
    """The household-business workflow, where granting the certificate issues a receipt."""
    definition = catalogue("ho-kinh-doanh")
    grant = next(a for a in definition["actions"] if a["name"] == "cap_giay_chung_nhan")
    grant["signature"]["receipt"] = True
    return definition


async def pdf_status(receipt: bytes, anchor: Identity) -> Any:
    """pyHanko's own PDF validator, as any verifier would run it."""
    import io

    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    [embedded] = PdfFileReader(io.BytesIO(receipt)).embedded_signatures
    root = asn1_x509.Certificate.load(anchor.certificate.public_bytes(Encoding.DER))
    return await async_validate_pdf_signature(embedded, ValidationContext(
        trust_roots=[root], allow_fetching=False))


async def test_a_step_that_issues_a_document_gets_a_sealed_pdf_receipt(
        client: httpx.AsyncClient, platform: Platform, pki: Pki) -> None:
    where = await office(platform, client, issuing_workflow())
    assert (await configure(client, where.province, where.admin, seal(pki))).status_code == 200
    case_id = await awaiting_signature(client, where)
    refused = await sign_step(client, where, case_id)
    assert (refused.status_code, refused.json()["code"]) == (409, "seal-not-configured")

    organisation = pki.person("MST:0100109106", name="Ủy ban nhân dân xã")
    sealed = {**seal(pki), "seal": {"pkcs12": base64.b64encode(
        organisation.pkcs12(b"con-dau")).decode(), "password": "con-dau"}}
    shown = await configure(client, where.province, where.admin, sealed)
    assert shown.status_code == 200, shown.text
    assert shown.json()["own"]["seal"] == {
        "subject": "User ID: MST:0100109106, Common Name: Ủy ban nhân dân xã, Country: VN"}
    assert "con-dau" not in shown.text
    bad_seal = {**sealed, "seal": {**sealed["seal"], "password": "sai-mat-khau"}}
    wrong = await configure(client, where.province, where.admin, bad_seal)
    assert [e["pointer"] for e in wrong.json()["errors"]] == ["/seal/password"]

    signed = await sign_step(client, where, case_id)
    assert signed.status_code == 200, signed.text
    [signature] = (await client.get(where.cases(f"/{case_id}/signatures"),
                                    headers=where.officer.headers)).json()
    base = where.cases(f"/{case_id}/signatures/{signature['id']}")
    receipt = await client.get(f"{base}/receipt", headers=where.officer.headers)
    assert receipt.headers["content-type"] == "application/pdf"
    status = await pdf_status(receipt.content, pki.root)
    assert (status.intact, status.valid, status.trusted, status.bottom_line) == (
        True, True, True, True)
    assert "Ủy ban nhân dân xã" in status.signing_cert.subject.human_friendly
    assert case_id.encode() in receipt.content  # the visible text names the case
    recheck = (await client.post(f"{base}/verify", headers=where.officer.headers)).json()
    assert recheck["receipt_intact"] is True

    changed = receipt.content.replace(case_id.encode(), case_id[::-1].encode(), 1)
    assert not (await pdf_status(changed, pki.root)).bottom_line


async def test_revocation_can_be_fetched_from_the_certificates_own_crl_address(
        tmp_path: Path) -> None:
    """With ``fetch``, the verifier downloads the CRL the certificate names (served here by
    a real HTTP server), instead of one configured in advance."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.hazmat.primitives.serialization import Encoding

    from app.signing import verification

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(
        SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetched = build(crl_url=f"http://127.0.0.1:{server.server_address[1]}/ca.crl")
        (tmp_path / "ca.crl").write_bytes(fetched.crl.public_bytes(Encoding.DER))
        content = b'{"case":"x"}'
        anchors = verification.parse_certificates([fetched.root.pem])
        for mode, fetch, identity, reasons in (
                ("soft-fail", True, fetched.revoked, ["certificate-revoked"]),
                ("soft-fail", True, fetched.signer, []),
                ("off", True, fetched.revoked, []),  # checks are off: revocation not asked
                ("soft-fail", False, fetched.revoked, [])):  # nothing to check against
            cms = base64.b64decode(await plug_in_cms(identity, base64.b64encode(
                digest(content)).decode()))
            verdict = await verification.verify(
                cms, content, verification.Policy(anchors, revocation=mode,  # type: ignore[arg-type]
                                                  fetch_revocation=fetch),
                moment=datetime.now(UTC))
            assert [r.code for r in verdict.reasons] == reasons, (mode, fetch)
    finally:
        server.shutdown()
        server.server_close()


async def test_revocation_can_be_asked_of_the_certificates_ocsp_responder() -> None:
    """With ``fetch``, a certificate naming an OCSP responder is checked there: revoked
    ones are refused, good ones pass (its CRL address answers nothing here)."""
    from app.signing import verification
    from tests.ocsp_responder import OcspResponder

    with OcspResponder().running() as responder:
        ca = build(crl_url="http://127.0.0.1:9/none.crl", ocsp_url=responder.url)
        responder.issuer = ca.intermediate
        responder.certificates = {i.certificate.serial_number: i.certificate
                                  for i in (ca.signer, ca.revoked)}
        responder.revoked = {ca.revoked.certificate.serial_number}
        content = b'{"case":"x"}'
        policy = verification.Policy(verification.parse_certificates([ca.root.pem]),
                                     revocation="soft-fail", fetch_revocation=True)
        for identity, reasons in ((ca.revoked, ["certificate-revoked"]), (ca.signer, [])):
            cms = base64.b64decode(await plug_in_cms(identity, base64.b64encode(
                digest(content)).decode()))
            verdict = await verification.verify(cms, content, policy, moment=datetime.now(UTC))
            assert [r.code for r in verdict.reasons] == reasons
        assert set(responder.asked) == set(responder.certificates)


@pytest.mark.parametrize("form", ["cms", "jws"])
@pytest.mark.parametrize(("mode", "reasons"), [("soft-fail", []),
                                               ("hard-fail", ["revocation-unknown"])])
async def test_when_revocation_cannot_be_established_the_mode_decides(
        mode: str, reasons: list[str], form: str) -> None:
    from app.signing import jws as jws_format
    from app.signing import verification

    ca = build(crl_url="http://127.0.0.1:9/none.crl", ocsp_url="http://127.0.0.1:9/ocsp")
    content = b'{"case":"x"}'
    if form == "cms":
        signature = base64.b64decode(await plug_in_cms(ca.signer, base64.b64encode(
            digest(content)).decode()))
    else:
        payload = base64.urlsafe_b64encode(jws_format.payload(digest(content))).rstrip(b"=")
        signature = plug_in_jws(ca.signer, payload.decode()).encode()
    policy = verification.Policy(verification.parse_certificates([ca.root.pem]),
                                 revocation=mode, fetch_revocation=True)  # type: ignore[arg-type]
    verdict = await verification.verify_any(signature, content, policy,
                                            moment=datetime.now(UTC))
    assert [r.code for r in verdict.reasons] == reasons


async def test_each_vote_of_a_parallel_approval_is_signed_by_its_own_official(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, tmp_path: Path) -> None:
    """The leaders' board (two seats, all must approve): each vote waits for its voter's own
    signature; the first signed vote is counted, the second moves the case."""
    definition = catalogue("ho-kinh-doanh")
    board = next(s for s in definition["states"] if s["name"] == "trinh_ky")
    board.update(type="approval", approval={"mode": "all", "seats": ["reviewer", "reviewer"]})
    grant = next(a for a in definition["actions"] if a["name"] == "cap_giay_chung_nhan")
    grant["vote"] = "approve"
    where = await office(platform, client, definition)
    assert (await configure(client, where.province, where.admin, plug_in(pki))).status_code == 200
    second = await platform.client_for(where.commune, ["reviewer"], by=where.admin)
    case_id = await awaiting_signature(client, where)

    for voter, moved_to in ((where.reviewer, "trinh_ky"), (second, "da_cap")):
        etag = (await read(client, where, case_id, voter)).headers["ETag"]
        pending = await client.post(
            where.cases(f"/{case_id}/actions/cap_giay_chung_nhan"), json=CERTIFICATE_NUMBER,
            headers={**voter.headers, "If-Match": etag})
        assert pending.status_code == 202, pending.text
        cms = await plug_in_cms(pki.person(f"CCCD:{voter.client_id}"),
                                pending.json()["instructions"]["digest"])
        done = await send(client, where, case_id, pending.json()["id"], cms, who=voter)
        assert done.status_code == 200, done.text
        case = (await read(client, where, case_id, where.officer)).json()
        assert case["state"]["name"] == moved_to
    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    signed = [h for h in history if h["signature_ref"]]
    assert [h["kind"] for h in signed] == ["vote", "action"]
    assert len({h["signature_ref"] for h in signed}) == 2

    # Each signed vote verifies on its own, and a changed byte does not.
    base = where.cases(f"/{case_id}/signatures/{signed[0]['signature_ref']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    cms_file = (await client.get(f"{base}/signature", headers=where.officer.headers)).content
    assert openssl_verifies(tmp_path, document, cms_file, pki.root.pem)
    assert not openssl_verifies(tmp_path, document.replace(b"01A8012345", b"01A8012346"),
                                cms_file, pki.root.pem)
