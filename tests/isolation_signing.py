"""Cross-tenant cases for the signing set-up and a case's signatures.

:func:`victim_signatures` gives each victim, through its own admin, a completed signature (a
server-side seal on ``vw-pub``'s ``ky_duyet`` step) and a pending one (the plug-in set-up)
with a valid CMS for it, so the owner's control run can send it; the victim's set-up is
left as the plug-in one."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.isolation import Attack, World, isolation_case
from tests.isolation_forms import valid_data
from tests.pki import Pki
from tests.platform import Credentials
from tests.test_signing import plug_in_cms

SIGNING = "/api/v1/tenants/{tenant}/signing"
SIGNATURES = "/api/v1/tenants/{tenant}/cases/{case_id}/signatures"


def _set_up(pki: Pki, provider: str) -> dict[str, Any]:
    """A set-up with a seal: the victims' ``ky_duyet`` step issues a sealed receipt."""
    p12 = base64.b64encode(pki.signer.pkcs12(b"pw")).decode()
    body: dict[str, Any] = {"provider": provider, "trust_anchors": [pki.root.pem],
                            "seal": {"pkcs12": p12, "password": "pw"}}
    if provider == "pkcs12":
        body["config"] = {"pkcs12": p12, "password": "pw"}
    return body


async def _to_signing_step(http: httpx.AsyncClient, tenant: str, admin: Credentials,
                           provider: str, pki: Pki) -> httpx.Response:
    base = f"/api/v1/tenants/{tenant}"
    configured = await http.put(f"{base}/signing", json=_set_up(pki, provider),
                                headers=admin.headers)
    assert configured.status_code == 200, configured.text
    made = await http.post(f"{base}/submissions", headers=admin.headers,
                           json={"form": "vf-pub", "data": valid_data()})
    case = f"{base}/cases/{made.json()['case']}"
    for action in ("nhan", "ky_duyet"):
        etag = (await http.get(case, headers=admin.headers)).headers["ETag"]
        done = await http.post(f"{case}/actions/{action}", json={},
                               headers={**admin.headers, "If-Match": etag})
        assert done.status_code in (200, 202), done.text
    return done


async def victim_signatures(http: httpx.AsyncClient, tenant: str, admin: Credentials,
                            pki: Pki) -> dict[str, str]:
    sealed = await _to_signing_step(http, tenant, admin, "pkcs12", pki)
    assert sealed.status_code == 200, sealed.text
    signatures = await http.get(f"/api/v1/tenants/{tenant}/cases/{sealed.json()['id']}"
                                "/signatures", headers=admin.headers)
    pending = await _to_signing_step(http, tenant, admin, "client", pki)
    assert pending.status_code == 202, pending.text
    return {"signed_case_id": sealed.json()["id"], "signature_id": signatures.json()[0]["id"],
            "pending_case_id": pending.json()["case"], "pending_id": pending.json()["id"],
            "pending_cms": await plug_in_cms(pki.signer,
                                             pending.json()["instructions"]["digest"])}


def _signed(world: World, victim: str, suffix: str = "") -> str:
    forms = world.victims[victim].forms
    return (SIGNATURES.format(tenant=victim, case_id=forms["signed_case_id"])
            + f"/{forms['signature_id']}{suffix}")


def _answers_without_tenant_data(response: httpx.Response, victim: str) -> None:
    assert response.status_code == 200, response.text
    assert {p["name"] for p in response.json()} >= {"pkcs12", "client"}


@isolation_case("GET", "/api/v1/signing/providers")
def list_providers(world: World, victim: str) -> Attack:
    """Not tenant data: every caller sees the same installed providers."""
    return Attack("GET", "/api/v1/signing/providers", check=_answers_without_tenant_data)


@isolation_case("GET", SIGNING)
def read_signing(world: World, victim: str) -> Attack:
    return Attack("GET", SIGNING.format(tenant=victim))


@isolation_case("PUT", SIGNING)
def replace_signing(world: World, victim: str) -> Attack:
    return Attack("PUT", SIGNING.format(tenant=victim), json={
        "provider": "client", "trust_anchors": [world.victims[victim].forms["anchor_pem"]]})


@isolation_case("DELETE", SIGNING)
def delete_signing(world: World, victim: str) -> Attack:
    return Attack("DELETE", SIGNING.format(tenant=victim))


@isolation_case("GET", SIGNING + "/certificates")
def list_certificates(world: World, victim: str) -> Attack:
    return Attack("GET", SIGNING.format(tenant=victim) + "/certificates")


@isolation_case("GET", SIGNATURES)
def list_signatures(world: World, victim: str) -> Attack:
    forms = world.victims[victim].forms
    return Attack("GET", SIGNATURES.format(tenant=victim, case_id=forms["signed_case_id"]))


@isolation_case("GET", SIGNATURES + "/{signature_id}")
def read_signature(world: World, victim: str) -> Attack:
    return Attack("GET", _signed(world, victim))


@isolation_case("GET", SIGNATURES + "/{signature_id}/document")
def read_signed_document(world: World, victim: str) -> Attack:
    return Attack("GET", _signed(world, victim, "/document"))


@isolation_case("GET", SIGNATURES + "/{signature_id}/signature")
def read_signature_file(world: World, victim: str) -> Attack:
    return Attack("GET", _signed(world, victim, "/signature"))


@isolation_case("GET", SIGNATURES + "/{signature_id}/receipt")
def read_receipt(world: World, victim: str) -> Attack:
    return Attack("GET", _signed(world, victim, "/receipt"))


@isolation_case("POST", SIGNATURES + "/{signature_id}/verify")
def verify_signature(world: World, victim: str) -> Attack:
    return Attack("POST", _signed(world, victim, "/verify"))


@isolation_case("POST", SIGNATURES + "/{signature_id}")
def send_signature(world: World, victim: str) -> Attack:
    forms = world.victims[victim].forms
    return Attack("POST", SIGNATURES.format(tenant=victim, case_id=forms["pending_case_id"])
                  + f"/{forms['pending_id']}", json={"signature": forms["pending_cms"]})
