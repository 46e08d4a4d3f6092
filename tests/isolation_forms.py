"""Cross-tenant cases for eForms and submissions.

Each victim tenant holds three forms (see :func:`victim_forms`): ``vf-pub`` (version 1
published, version 2 a draft), ``vf-old`` (version 1 published) and ``vf-draft`` (only a
draft), and four submissions: one submitted, one draft to change, one draft to delete and one draft
holding an attachment.
The owner's control run goes POST/PUT, PATCH, GET, DELETE, so each case names an object that
is still in the state its request needs by the time the owner sends it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from tests.isolation import Attack, World, isolation_case
from tests.platform import Credentials, new_code

FORMS = "/api/v1/tenants/{tenant}/forms"
SUBMISSIONS = "/api/v1/tenants/{tenant}/submissions"
_CATALOGUE = Path(__file__).resolve().parents[1] / "forms" / "khieu-nai"


def definition(key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((_CATALOGUE / "form.json").read_text())
    return {**copy.deepcopy(document), "key": key}


def valid_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sorted((_CATALOGUE / "valid").glob("*.json"))[0]
                                      .read_text())
    return data


async def victim_forms(http: httpx.AsyncClient, tenant: str,
                       admin: Credentials) -> dict[str, str]:
    base = f"/api/v1/tenants/{tenant}"

    async def ok(method: str, url: str, body: Any = None) -> dict[str, Any]:
        response = await http.request(method, base + url, json=body, headers=admin.headers)
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}

    for key in ("vf-pub", "vf-old", "vf-draft"):
        await ok("POST", "/forms", definition(key))
    for key in ("vf-pub", "vf-old"):
        await ok("POST", f"/forms/{key}/versions/1/publish")
    await ok("POST", "/forms/vf-pub/versions")
    made = {}
    for name, status in (("submission_id", "submitted"), ("draft_submission_id", "draft"),
                         ("doomed_submission_id", "draft"), ("files_submission_id", "draft")):
        made[name] = (await ok("POST", "/submissions", {"form": "vf-pub", "data": valid_data(),
                                                        "status": status}))["id"]
    upload = await http.post(f"{base}/submissions/{made['files_submission_id']}/attachments",
                             content=PDF, params=UPLOAD_PARAMS,
                             headers={**admin.headers, "Content-Type": "application/pdf"})
    assert upload.status_code == 201, upload.text
    made["attachment_id"] = upload.json()["id"]
    return made


PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


UPLOAD_PARAMS = {"field": "tep_dinh_kem", "filename": "don-khieu-nai.pdf"}


def _forms(victim: str, suffix: str = "") -> str:
    return FORMS.format(tenant=victim) + suffix


def _submission(world: World, victim: str, which: str) -> str:
    return SUBMISSIONS.format(tenant=victim) + "/" + world.victims[victim].forms[which]


@isolation_case("POST", FORMS)
def create_form(world: World, victim: str) -> Attack:
    return Attack("POST", _forms(victim), json=definition(new_code("f").lower()))


@isolation_case("GET", FORMS)
def list_forms(world: World, victim: str) -> Attack:
    return Attack("GET", _forms(victim))


@isolation_case("GET", FORMS + "/{key}")
def read_form(world: World, victim: str) -> Attack:
    return Attack("GET", _forms(victim, "/vf-pub"))


@isolation_case("GET", FORMS + "/{key}/versions")
def list_form_versions(world: World, victim: str) -> Attack:
    return Attack("GET", _forms(victim, "/vf-pub/versions"))


@isolation_case("POST", FORMS + "/{key}/versions")
def start_form_version(world: World, victim: str) -> Attack:
    return Attack("POST", _forms(victim, "/vf-old/versions"))


@isolation_case("GET", FORMS + "/{key}/versions/{number}")
def read_form_version(world: World, victim: str) -> Attack:
    return Attack("GET", _forms(victim, "/vf-pub/versions/2"))


@isolation_case("PUT", FORMS + "/{key}/versions/{number}")
def replace_form_draft(world: World, victim: str) -> Attack:
    return Attack("PUT", _forms(victim, "/vf-draft/versions/1"), json=definition("vf-draft"))


@isolation_case("DELETE", FORMS + "/{key}/versions/{number}")
def discard_form_draft(world: World, victim: str) -> Attack:
    return Attack("DELETE", _forms(victim, "/vf-draft/versions/1"))


@isolation_case("POST", FORMS + "/{key}/versions/{number}/publish")
def publish_form_version(world: World, victim: str) -> Attack:
    return Attack("POST", _forms(victim, "/vf-pub/versions/2/publish"))


@isolation_case("POST", FORMS + "/{key}/versions/{number}/deprecate")
def deprecate_form_version(world: World, victim: str) -> Attack:
    return Attack("POST", _forms(victim, "/vf-old/versions/1/deprecate"))


@isolation_case("GET", FORMS + "/{key}/versions/{a}/diff/{b}")
def diff_form_versions(world: World, victim: str) -> Attack:
    return Attack("GET", _forms(victim, "/vf-pub/versions/1/diff/2"))


@isolation_case("POST", FORMS + "/{key}/validate")
def validate_form_data(world: World, victim: str) -> Attack:
    return Attack("POST", _forms(victim, "/vf-pub/validate"), json={"data": valid_data()})


@isolation_case("POST", SUBMISSIONS)
def create_submission(world: World, victim: str) -> Attack:
    return Attack("POST", SUBMISSIONS.format(tenant=victim),
                  json={"form": "vf-pub", "data": valid_data()})


@isolation_case("GET", SUBMISSIONS)
def list_submissions(world: World, victim: str) -> Attack:
    return Attack("GET", SUBMISSIONS.format(tenant=victim), params={"q": "khieu"})


@isolation_case("GET", SUBMISSIONS + "/{submission_id}")
def read_submission(world: World, victim: str) -> Attack:
    return Attack("GET", _submission(world, victim, "submission_id"))


@isolation_case("PATCH", SUBMISSIONS + "/{submission_id}")
def submit_draft_submission(world: World, victim: str) -> Attack:
    return Attack("PATCH", _submission(world, victim, "draft_submission_id"),
                  json={"status": "submitted"})


@isolation_case("DELETE", SUBMISSIONS + "/{submission_id}")
def delete_draft_submission(world: World, victim: str) -> Attack:
    return Attack("DELETE", _submission(world, victim, "doomed_submission_id"))


def _files(world: World, victim: str, suffix: str = "") -> str:
    return _submission(world, victim, "files_submission_id") + "/attachments" + suffix


@isolation_case("POST", SUBMISSIONS + "/{submission_id}/attachments")
def upload_attachment(world: World, victim: str) -> Attack:
    return Attack("POST", _files(world, victim), content=PDF, params=UPLOAD_PARAMS,
                  headers={"Content-Type": "application/pdf"})


@isolation_case("GET", SUBMISSIONS + "/{submission_id}/attachments")
def list_attachments(world: World, victim: str) -> Attack:
    return Attack("GET", _files(world, victim))


@isolation_case("GET", SUBMISSIONS + "/{submission_id}/attachments/{attachment_id}")
def download_attachment(world: World, victim: str) -> Attack:
    return Attack("GET", _files(world, victim, "/" + world.victims[victim].forms["attachment_id"]))


@isolation_case("DELETE", SUBMISSIONS + "/{submission_id}/attachments/{attachment_id}")
def delete_attachment(world: World, victim: str) -> Attack:
    return Attack("DELETE", _files(world, victim,
                                   "/" + world.victims[victim].forms["attachment_id"]))


@isolation_case("GET", SUBMISSIONS + "/export")
def export_submissions(world: World, victim: str) -> Attack:
    return Attack("GET", SUBMISSIONS.format(tenant=victim) + "/export",
                  params={"form": "vf-pub", "format": "csv"})
