"""Contract tests of ``client.signing``, ``client.signatures`` and ``client.sharing`` against
the real service (SQLite and PostgreSQL): a unit's signing set-up, a step signed with a
server-side key (with a sealed PDF receipt) and one signed by the user's token through a
plug-in, the evidence downloaded; data services answered to a trusted gateway's tokens only;
prefill lookups; and another unit seeing none of it."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.jwk import ECKey
from live_service import Service
from nentang_sdk import (
    AuthenticationError,
    Client,
    ConflictError,
    Download,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from nentang_sdk.models import Case, Signature
from sdk_helpers import Unit, client_in, new_unit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the main suite's helpers (tests.pki...) are the `tests` package
    sys.path.append(str(ROOT))

from tests.http_servers import serve  # noqa: E402
from tests.pki import Identity, Pki, build  # noqa: E402

FORM = "ho-kinh-doanh"
SIGNED_ACTION = "cap_giay_chung_nhan"
CERTIFICATE_NUMBER = {"so_giay_chung_nhan": "01A8012345"}
GATEWAY = "https://lgsp.hanoi.gov.vn"
CONSUMER = "VN/GOV/000.00.00.G22/CSDL-DOANH-NGHIEP"
OTHER_CONSUMER = "VN/GOV/000.00.00.G99/KHAC"


# ---- a province that runs the household-business workflow, and a commune working it -------


def form_definition() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "forms" / FORM / "form.json").read_text())
    return document


def workflow_definition(*, receipt: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / "workflows" / FORM / "workflow.json").read_text())
    if receipt:  # granting the certificate issues a document: a sealed PDF receipt
        grant = next(a for a in document["actions"] if a["name"] == SIGNED_ACTION)
        grant["signature"]["receipt"] = True
    return document


def sample() -> dict[str, Any]:
    path = sorted((ROOT / "forms" / FORM / "valid").glob("*.json"))[0]
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass(frozen=True)
class Office:
    """A province publishing the form and workflow (its admin), and a commune with a portal
    client (submits), an officer (receives and proposes) and a reviewer (signs)."""

    province: Unit
    commune: str
    portal: Unit
    officer: Unit
    reviewer: Unit


def office(admin: Client, service: Service, *, receipt: bool = False) -> Office:
    province = new_unit(admin, service, kind="province")
    with province.client() as p:
        p.forms.create(province.code, definition=form_definition())
        p.forms.publish(province.code, FORM, 1)
        p.workflows.create(province.code, definition=workflow_definition(receipt=receipt))
        p.workflows.publish(province.code, FORM, 1)
    portal = new_unit(admin, service, kind="commune", parent=province.code,
                      roles=("api_client",))
    return Office(province, portal.code, portal,
                  client_in(admin, service, portal.code, ["officer"]),
                  client_in(admin, service, portal.code, ["reviewer"]))


def submit(where: Office) -> uuid.UUID:
    """A new case in the commune."""
    with where.portal.client() as portal:
        submission = portal.submissions.create(where.commune, form=FORM, data=sample())
    assert submission.case is not None
    return submission.case


def awaiting_signature(where: Office) -> uuid.UUID:
    """A case at the reviewer's desk: the next step (issuing the certificate) is signed."""
    case_id = submit(where)
    with where.officer.client() as officer:
        officer.cases.act(where.commune, case_id, "tiep_nhan_ho_so")
        moved = officer.cases.act(where.commune, case_id, "de_xuat_cap", fields={
            "ten_khong_trung": True, "nganh_nghe_khong_cam": True})
    assert isinstance(moved, Case) and moved.state.name == "trinh_ky"
    return case_id


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build()


def seal_setup(pki: Pki) -> dict[str, Any]:
    """A server-side PKCS#12 key signs (keyword arguments of ``signing.replace``)."""
    return {"provider": "pkcs12", "trust_anchors": [pki.root.pem],
            "config": {"pkcs12": base64.b64encode(pki.signer.pkcs12(b"mat-khau")).decode(),
                       "password": "mat-khau"}}


def outsider(admin: Client, service: Service) -> Unit:
    """An administrator of another province."""
    return new_unit(admin, service, kind="province")


# ---- signing with a server-side key -----------------------------------------------------------


def test_a_sealed_step_is_signed_at_once_and_its_evidence_downloads(
        admin: Client, service: Service, pki: Pki) -> None:
    where = office(admin, service, receipt=True)
    organisation = pki.person("MST:0100109106", name="Ủy ban nhân dân xã")
    with where.province.client() as p:
        assert {"client", "pkcs12"} <= {x.name for x in p.signing.providers()}
        nothing = p.signing.get(where.province.code)
        assert (nothing.own, nothing.effective) == (None, None)
        with pytest.raises(ValidationError) as refused:
            p.signing.replace(where.province.code, **{**seal_setup(pki), "config": {
                "pkcs12": seal_setup(pki)["config"]["pkcs12"], "password": "sai"}})
        assert [e.pointer for e in refused.value.errors] == ["/config/password"]

        shown = p.signing.replace(
            where.province.code, **seal_setup(pki),
            revocation={"mode": "soft-fail", "crls": [pki.crl_pem]}, format="cms",
            seal={"pkcs12": base64.b64encode(organisation.pkcs12(b"con-dau")).decode(),
                  "password": "con-dau"})
        assert shown.own is not None and shown.effective is not None
        assert shown.own.provider == "pkcs12" and shown.own.tenant == where.province.code
        assert shown.own.config == {"pkcs12": "***", "password": "***"}
        assert [a.subject for a in shown.own.trust_anchors] == ["CN=Nentang Test Root CA,C=VN"]
        assert shown.own.revocation["mode"] == "soft-fail" and shown.own.format == "cms"
        assert shown.own.seal is not None and "Ủy ban nhân dân xã" in shown.own.seal["subject"]
        assert p.signing.get(where.province.code).own == shown.own

    with where.reviewer.client() as reviewer:
        below = reviewer.signing.certificates(where.commune)
        assert [c.subject for c in below] == [
            "User ID: CCCD:001099012345, Common Name: Nguyễn Văn A, Country: VN"]
        assert base64.b64decode(below[0].certificate) == pki.signer.certificate.public_bytes(
            Encoding.DER)
        case_id = awaiting_signature(where)
        signed = reviewer.cases.act(where.commune, case_id, SIGNED_ACTION,
                                    fields=CERTIFICATE_NUMBER)
    assert isinstance(signed, Case)
    assert (signed.state.name, signed.status) == ("da_cap", "closed")

    with where.officer.client() as officer:
        [signature] = officer.signatures.list(where.commune, case_id)
        assert (signature.status, signature.provider, signature.action) == (
            "completed", "pkcs12", SIGNED_ACTION)
        assert signature.case == case_id and len(signature.chain) == 3
        assert signature.verification is not None and signature.verification["valid"] is True
        assert officer.signatures.get(where.commune, case_id, signature.id) == signature

        document = officer.signatures.document(where.commune, case_id, signature.id)
        assert isinstance(document, Download)
        assert document.content_type == "application/json"
        assert document.filename == f"{signature.id}.json"
        assert hashlib.sha256(document.content).hexdigest() == signature.digest
        signed_data = json.loads(document.content)
        assert signed_data["case"] == str(case_id)
        assert signed_data["data"]["so_giay_chung_nhan"] == "01A8012345"

        cms = officer.signatures.signature_file(where.commune, case_id, signature.id)
        assert cms.content_type == "application/pkcs7-signature"
        assert cms.filename == f"{signature.id}.p7s" and cms.content[:1] == b"\x30"

        receipt = officer.signatures.receipt(where.commune, case_id, signature.id)
        assert receipt.content_type == "application/pdf"
        assert receipt.filename == f"{signature.id}.pdf"
        assert receipt.content.startswith(b"%PDF") and str(case_id).encode() in receipt.content

        check = officer.signatures.verify(where.commune, case_id, signature.id)
        assert (check.valid, check.document_intact, check.matches_case, check.mismatches,
                check.receipt_intact) == (True, True, True, [], True)

        with pytest.raises(NotFoundError):
            officer.signatures.get(where.commune, case_id, uuid.uuid4())

    # Units below inherit the set-up; dropping it makes them inherit nothing.
    with where.province.client() as p:
        inherited = p.signing.get(where.commune)
        assert inherited.own is None and inherited.effective is not None
        assert inherited.effective.tenant == where.province.code
        assert p.signing.delete(where.province.code) is None
        assert p.signing.get(where.province.code).own is None
        with pytest.raises(NotFoundError):
            p.signing.delete(where.province.code)
    with where.reviewer.client() as reviewer:
        assert reviewer.signing.certificates(where.commune) == []


def test_another_unit_reaches_neither_the_set_up_nor_the_signatures(
        admin: Client, service: Service, pki: Pki) -> None:
    where = office(admin, service)
    with where.province.client() as p:
        p.signing.replace(where.province.code, **seal_setup(pki))
        before = p.signing.get(where.province.code)
    case_id = awaiting_signature(where)
    with where.reviewer.client() as reviewer:
        reviewer.cases.act(where.commune, case_id, SIGNED_ACTION, fields=CERTIFICATE_NUMBER)
    with where.officer.client() as officer:
        [signature] = officer.signatures.list(where.commune, case_id)

    other = outsider(admin, service)
    with other.client() as o:
        with pytest.raises(NotFoundError):
            o.signing.get(where.province.code)
        with pytest.raises(NotFoundError):
            o.signing.replace(where.province.code, **seal_setup(pki), format="jws")
        with pytest.raises(NotFoundError):
            o.signing.delete(where.province.code)
        with pytest.raises(NotFoundError):
            o.signing.certificates(where.commune)
        for read in (o.signatures.get, o.signatures.verify, o.signatures.document,
                     o.signatures.signature_file):
            with pytest.raises(NotFoundError):
                read(where.commune, case_id, signature.id)
        with pytest.raises(NotFoundError):
            o.signatures.list(where.commune, case_id)
        with pytest.raises(NotFoundError):
            o.signatures.send(where.commune, case_id, signature.id, signature=b"\x30\x00")
        # Its own unit does not hold the case either.
        with pytest.raises(NotFoundError):
            o.signatures.list(other.code, case_id)
        with pytest.raises(NotFoundError):
            o.signatures.get(other.code, case_id, signature.id)
    # The commune's officer may not set up signing in its own commune (a 403) and cannot
    # even see the province above it (a 404).
    with where.officer.client() as officer:
        with pytest.raises(PermissionDeniedError):
            officer.signing.replace(where.commune, **seal_setup(pki))
        with pytest.raises(NotFoundError):
            officer.signing.delete(where.province.code)
    with where.province.client() as p:
        assert p.signing.get(where.province.code) == before
    with where.officer.client() as officer:
        assert officer.signatures.list(where.commune, case_id) == [signature]


# ---- the user's own token, through a plug-in ------------------------------------------------


async def plug_in_cms(identity: Identity, digest_b64: str) -> bytes:
    """What a browser plug-in does: a detached CMS (DER) over the digest handed out."""
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12_data(identity.pkcs12(b"x"), [], passphrase=b"x")
    signed = await signer.async_sign(data_digest=base64.b64decode(digest_b64),
                                     digest_algorithm="sha256", use_pades=True,
                                     is_pdf_sig=False, encap_content_info={"content_type": "data"})
    der: bytes = signed.dump()
    return der


def pending_digest(signature: Signature) -> str:
    assert signature.status == "pending" and signature.instructions is not None
    assert signature.instructions["digest_algorithm"] == "sha256"
    digest: str = signature.instructions["digest"]
    return digest


async def test_a_plug_in_signature_completes_the_waiting_step(
        admin: Client, service: Service, pki: Pki) -> None:
    where = office(admin, service)
    async with where.province.async_client() as p:
        shown = await p.signing.replace(
            where.province.code, provider="client", trust_anchors=[pki.root.pem],
            signer_match={"certificate": "UID", "principal": "client_id",
                          "strip_prefixes": ["CCCD:"]})
        assert shown.own is not None and shown.own.signer_match == {
            "certificate": "UID", "principal": "client_id", "strip_prefixes": ["CCCD:"]}
        assert "client" in {x.name for x in await p.signing.providers()}
    case_id = awaiting_signature(where)
    me = pki.person(f"CCCD:{where.reviewer.client_id}")

    async with where.reviewer.async_client() as reviewer:
        before = await reviewer.cases.get(where.commune, case_id)
        first = await reviewer.cases.act(where.commune, before, SIGNED_ACTION,
                                         fields=CERTIFICATE_NUMBER)
        assert isinstance(first, Signature)
        pending_digest(first)
        # Not a signature at all: refused, recorded, and the case has not moved.
        with pytest.raises(ValidationError) as refused:
            await reviewer.signatures.send(where.commune, case_id, first.id,
                                           signature=b"not a signature")
        assert refused.value.code == "signature-invalid"
        failed = await reviewer.signatures.get(where.commune, case_id, first.id)
        assert failed.status == "failed" and failed.failure is not None
        assert failed.failure["code"] == "signature-invalid"
        assert (await reviewer.cases.get(where.commune, case_id)).etag == before.etag

        second = await reviewer.cases.act(where.commune, case_id, SIGNED_ACTION,
                                          fields=CERTIFICATE_NUMBER)
        assert isinstance(second, Signature)
        cms = await plug_in_cms(me, pending_digest(second))

    # Only the signer the request names may hand it in.
    async with where.officer.async_client() as officer:
        with pytest.raises(PermissionDeniedError) as stranger:
            await officer.signatures.send(where.commune, case_id, second.id, signature=cms)
        assert stranger.value.code == "not-the-signer"

    async with where.reviewer.async_client() as reviewer:
        done = await reviewer.signatures.send(where.commune, case_id, second.id,
                                              signature=base64.b64encode(cms).decode())
        assert done.status == "completed" and done.instructions is None
        assert (await reviewer.cases.get(where.commune, case_id)).state.name == "da_cap"
        with pytest.raises(ConflictError) as again:
            await reviewer.signatures.send(where.commune, case_id, second.id, signature=cms)
        assert again.value.code == "signature-not-pending"

        statuses = [s.status for s in await reviewer.signatures.list(where.commune, case_id)]
        assert statuses == ["failed", "completed"]
        document = await reviewer.signatures.document(where.commune, case_id, second.id)
        assert hashlib.sha256(document.content).hexdigest() == done.digest
        evidence = await reviewer.signatures.signature_file(where.commune, case_id, second.id)
        assert evidence.content == cms
        check = await reviewer.signatures.verify(where.commune, case_id, second.id)
        assert (check.valid, check.matches_case, check.receipt_intact) == (True, True, None)
        with pytest.raises(NotFoundError):  # no step of this workflow issues a receipt
            await reviewer.signatures.receipt(where.commune, case_id, second.id)


# ---- data services, to a trusted gateway --------------------------------------------------


@pytest.fixture(scope="module")
def gateway_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "lgsp-1"})


def gateway_token(key: ECKey, *, client: str = CONSUMER, audience: str = "nentang") -> str:
    now = int(time.time())
    return jwt.encode({"alg": "ES256", "kid": key.kid},
                      {"iss": GATEWAY, "aud": audience, "iat": now, "exp": now + 300,
                       "client": client, "jti": str(uuid.uuid4())}, key)


def jwks(key: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def test_a_data_service_answers_the_trusted_gateway_only(
        admin: Client, service: Service, gateway_key: ECKey) -> None:
    where = office(admin, service)
    code = where.province.code
    with where.province.client() as p:
        with pytest.raises(NotFoundError):
            p.sharing.gateway_trust(code)
        trust = p.sharing.replace_gateway_trust(code, issuer=GATEWAY, audience="nentang",
                                                keys=jwks(gateway_key))
        assert (trust.tenant, trust.issuer, trust.audience) == (code, GATEWAY, "nentang")
        assert trust.keys == jwks(gateway_key)
        inherited = p.sharing.gateway_trust(where.commune)
        assert (inherited.tenant, inherited.issuer) == (code, GATEWAY)

        assert p.sharing.data_services(code) == []
        with pytest.raises(ValidationError) as refused:
            p.sharing.publish_data_service(code, name="ds", title="T", source="cases",
                                           form=FORM, fields=["khong_co"],
                                           consumers=[CONSUMER])
        assert [e.pointer for e in refused.value.errors] == ["/fields/0"]
        first = p.sharing.publish_data_service(
            code, name=FORM, title="Hộ kinh doanh đã nộp", source="cases", form=FORM,
            fields=["ten_ho_kinh_doanh", "loai_chu_the"], filters=["loai_chu_the"],
            consumers=[CONSUMER], description="Các hồ sơ hộ kinh doanh")
        assert (first.code, first.version, first.fields_, first.personal_data) == (
            f"{FORM}.v1", 1, ["ten_ho_kinh_doanh", "loai_chu_the"], "none")
        second = p.sharing.publish_data_service(
            code, name="so-lieu", title="Số liệu", source="submissions", form=FORM,
            fields=["ten_ho_kinh_doanh"], consumers=[OTHER_CONSUMER], personal_data="none")
        assert {s.code for s in p.sharing.data_services(code)} == {f"{FORM}.v1", "so-lieu.v1"}
        assert second.description is None
    case_id = submit(where)
    with where.officer.client() as officer:
        officer.cases.act(where.commune, case_id, "tiep_nhan_ho_so")

    # The gateway calls with its own token: a client holding no credentials at all will do,
    # and the unit's client sends the gateway's token, not its own.
    token = gateway_token(gateway_key)
    with Client(service.base_url) as gateway, where.province.client() as p:
        listed = gateway.sharing.list_methods(code, gateway_token=token)
        assert [s["service_code"] for s in listed["service"]] == [f"{FORM}.v1", "so-lieu.v1"]
        allowed = p.sharing.allowed_methods(code, gateway_token=token, consumer=CONSUMER)
        assert [s["service_code"] for s in allowed["service"]] == [f"{FORM}.v1"]
        description = gateway.sharing.service_openapi(code, service_code=f"{FORM}.v1",
                                                      gateway_token=token)
        [(path, item)] = description["paths"].items()
        assert path.endswith(f"/services/{FORM}.v1")
        assert [x["name"] for x in item["get"]["parameters"]] == ["loai_chu_the", "cursor"]

        answer = gateway.sharing.call_service(code, FORM, gateway_token=token)
        [record] = answer["items"]
        assert record["id"] == str(case_id) and record["tenant"] == where.commune
        assert set(record["data"]) == {"ten_ho_kinh_doanh", "loai_chu_the"}
        assert answer["next_cursor"] is None
        kind = record["data"]["loai_chu_the"]
        same = gateway.sharing.call_service(code, FORM, gateway_token=token,
                                            filters={"loai_chu_the": kind}, consumer=CONSUMER)
        assert [r["id"] for r in same["items"]] == [str(case_id)]
        assert gateway.sharing.call_service(code, FORM, gateway_token=token,
                                            filters={"loai_chu_the": "khac"})["items"] == []
        with pytest.raises(ValidationError) as unknown:
            gateway.sharing.call_service(code, FORM, gateway_token=token,
                                         filters={"chu_ho_ho_ten": "x"})
        assert [e.parameter for e in unknown.value.errors] == ["chu_ho_ho_ten"]

        # A consumer the service does not list, a header that disagrees with the token, a
        # token from another gateway, the client's own token: refused.
        with pytest.raises(PermissionDeniedError) as not_listed:
            gateway.sharing.call_service(code, FORM,
                                         gateway_token=gateway_token(gateway_key,
                                                                     client=OTHER_CONSUMER))
        assert not_listed.value.code == "consumer-not-allowed"
        with pytest.raises(PermissionDeniedError):
            gateway.sharing.service_openapi(code, service_code="so-lieu", gateway_token=token)
        with pytest.raises(AuthenticationError):
            gateway.sharing.list_methods(code, gateway_token=token, consumer=OTHER_CONSUMER)
        stranger = ECKey.generate_key("P-256", parameters={"kid": "lgsp-1"})
        with pytest.raises(AuthenticationError):
            gateway.sharing.allowed_methods(code, gateway_token=gateway_token(stranger))
        own = p.oauth.token(client_id=where.province.client_id,
                            client_secret=where.province.client_secret)
        with pytest.raises(AuthenticationError):
            p.sharing.call_service(code, FORM, gateway_token=own.access_token)


def test_another_unit_and_its_gateway_reach_nothing_here(
        admin: Client, service: Service, gateway_key: ECKey) -> None:
    where = office(admin, service)
    code = where.province.code
    with where.province.client() as p:
        p.sharing.replace_gateway_trust(code, issuer=GATEWAY, audience="nentang",
                                        keys=jwks(gateway_key))
        p.sharing.publish_data_service(code, name=FORM, title="T", source="cases", form=FORM,
                                       fields=["ten_ho_kinh_doanh"], consumers=[CONSUMER])
        trust, services = p.sharing.gateway_trust(code), p.sharing.data_services(code)

    other = outsider(admin, service)
    other_key = ECKey.generate_key("P-256", parameters={"kid": "lgsp-2"})
    with other.client() as o:
        for attempt in (lambda: o.sharing.gateway_trust(code),
                        lambda: o.sharing.data_services(code),
                        lambda: o.sharing.lookups(code),
                        lambda: o.sharing.delete_lookup(code, "dan-cu"),
                        lambda: o.sharing.replace_gateway_trust(
                            code, issuer="https://evil.example", audience="nentang",
                            keys=jwks(other_key)),
                        lambda: o.sharing.publish_data_service(
                            code, name="lay-het", title="T", source="cases", form=FORM,
                            fields=["ten_ho_kinh_doanh"], consumers=[CONSUMER])):
            with pytest.raises(NotFoundError):
                attempt()
        # The other unit trusts its own gateway: its tokens open nothing here.
        o.sharing.replace_gateway_trust(other.code, issuer=GATEWAY, audience="nentang",
                                        keys=jwks(other_key))
        assert o.sharing.data_services(other.code) == []
        with pytest.raises(AuthenticationError):
            o.sharing.call_service(code, FORM, gateway_token=gateway_token(other_key))
        with pytest.raises(NotFoundError):  # and the service is not the other unit's
            o.sharing.call_service(other.code, FORM, gateway_token=gateway_token(other_key))
    with where.province.client() as p:
        assert (p.sharing.gateway_trust(code), p.sharing.data_services(code)) == (
            trust, services)


# ---- prefill lookups --------------------------------------------------------------------------

PEOPLE = {"001099012345": {"ho_ten": "Nguyễn Văn A", "ngay_sinh": "1990-05-17"}}


@pytest.fixture
def register() -> Iterator[str]:
    """A population register over real HTTP on loopback: ``GET /cong-dan/{number}``."""

    def respond(path: str, headers: Mapping[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        person = PEOPLE.get(path.rsplit("/", 1)[-1])
        if person is None:
            return 404, {}, b"{}"
        return 200, {"content-type": "application/json"}, json.dumps(person).encode()

    with serve(respond) as base:
        yield base


def test_lookups_are_declared_replaced_and_dropped(admin: Client, service: Service,
                                                   register: str) -> None:
    where = office(admin, service)
    code = where.province.code
    settings = {"url": f"{register}/cong-dan/{{value}}",
                "fills": {"chu_ho_ho_ten": "/ho_ten"}, "timeout_seconds": 2,
                "cache_seconds": 60}
    with where.province.client() as p:
        assert p.sharing.lookups(code) == []
        made = p.sharing.replace_lookup(code, "dan-cu", form=FORM,
                                        field="chu_ho_so_dinh_danh", settings=settings)
        assert (made.name, made.form, made.field) == ("dan-cu", FORM, "chu_ho_so_dinh_danh")
        assert made.settings["fills"] == {"chu_ho_ho_ten": "/ho_ten"}
        wider = {**settings, "fills": {"chu_ho_ho_ten": "/ho_ten",
                                       "chu_ho_ngay_sinh": "/ngay_sinh"}}
        replaced = p.sharing.replace_lookup(code, "dan-cu", form=FORM,
                                            field="chu_ho_so_dinh_danh", settings=wider)
        assert replaced.settings["fills"] == wider["fills"]
        assert replaced.updated_at >= made.updated_at
        assert p.sharing.lookups(code) == [replaced]
        with pytest.raises(ValidationError):
            p.sharing.replace_lookup(code, "sai", form=FORM, field="chu_ho_so_dinh_danh",
                                     settings={**settings, "fills": {"khong_co": "/x"}})
        assert [x.name for x in p.sharing.lookups(code)] == ["dan-cu"]

    # The commune's forms use it: the register fills the form.
    with where.portal.client() as portal:
        filled = portal.forms.prefill(where.commune, FORM, field="chu_ho_so_dinh_danh",
                                      value="001099012345")
        assert (filled.available, filled.found) == (True, True)
        assert filled.values == {"chu_ho_ho_ten": "Nguyễn Văn A",
                                 "chu_ho_ngay_sinh": "1990-05-17"}

    other = outsider(admin, service)
    with other.client() as o:
        assert o.sharing.lookups(other.code) == []
        with pytest.raises(NotFoundError):  # not its lookup: a 404 in its own unit too
            o.sharing.delete_lookup(other.code, "dan-cu")
        with pytest.raises(NotFoundError):
            o.sharing.replace_lookup(code, "dan-cu", form=FORM, field="chu_ho_so_dinh_danh",
                                     settings=settings)

    with where.province.client() as p:
        assert p.sharing.lookups(code) == [replaced]
        assert p.sharing.delete_lookup(code, "dan-cu") is None
        assert p.sharing.lookups(code) == []
        with pytest.raises(NotFoundError):
            p.sharing.delete_lookup(code, "dan-cu")
