"""The small public service the browser tests work with, set up through the API as a
province's local systems would: a request form whose reason is asked for only when the kind is
'khac', a two-step workflow (receive, then approve with the reviewer's digital signature), a
signing set-up, communes with their admins, and applicants' submissions."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from nentang_sdk import Client

from tests.pki import Pki, build
from tests.ui.conftest import UiService

FORM = "don-de-nghi"
WORKFLOW = "xu-ly-don"
APPLICANT = {"ho_ten": "Trần Văn Dân", "loai": "khac", "ly_do": "Bổ sung hồ sơ"}


def form_definition() -> dict[str, Any]:
    return {
        "kind": "Form", "key": FORM,
        "title": {"vi": "Đơn đề nghị", "en": "Request"},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "required": ["ho_ten", "loai"],
            "properties": {
                "ho_ten": {"type": "string", "minLength": 2, "maxLength": 100},
                "loai": {"enum": ["cap_moi", "khac"]},
                "ly_do": {"type": "string", "maxLength": 500},
                "giay_to": {"type": "string", "maxLength": 300},
            },
        },
        "ui_schema": {"fields": {
            "ho_ten": {"label": {"vi": "Họ và tên", "en": "Full name"},
                       "personal_data": "basic"},
            "loai": {"label": {"vi": "Loại đề nghị", "en": "Kind"}, "widget": "select",
                     "option_labels": {"cap_moi": {"vi": "Cấp mới", "en": "New"},
                                       "khac": {"vi": "Khác", "en": "Other"}}},
            "ly_do": {"label": {"vi": "Lý do", "en": "Reason"},
                      "visible_when": {"properties": {"loai": {"const": "khac"}},
                                       "required": ["loai"]},
                      "required_when_visible": True},
            "giay_to": {"label": {"vi": "Giấy tờ kèm theo", "en": "Supporting document"},
                        "widget": "file"},
        }},
    }


def workflow_definition(*, claim: bool = False) -> dict[str, Any]:
    """``claim``: one official takes the case in ``xu_ly`` before acting on it."""
    return {
        "kind": "Workflow", "key": WORKFLOW, "title": {"vi": "Xử lý đơn", "en": "Handle"},
        "form": FORM, "sla": {"duration": "P10D", "days": "calendar"},
        "states": [
            {"name": "nop", "type": "start", "title": {"vi": "Đã nộp", "en": "Filed"}},
            {"name": "xu_ly", "type": "task", "title": {"vi": "Đang xử lý", "en": "Handling"},
             "sla": {"duration": "P3D"}, **({"assignment": "claim"} if claim else {})},
            {"name": "hoan_thanh", "type": "terminal", "outcome": "approved",
             "title": {"vi": "Hoàn thành", "en": "Done"}}],
        "actions": [
            {"name": "tiep_nhan", "title": {"vi": "Tiếp nhận", "en": "Receive"},
             "from": "nop", "to": "xu_ly", "roles": ["officer"]},
            {"name": "phe_duyet", "title": {"vi": "Phê duyệt", "en": "Approve"},
             "from": "xu_ly", "to": "hoan_thanh", "roles": ["reviewer"], "comment": "required",
             "signature": {"required": True, "role": "reviewer"}}],
    }


def new_code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


def province(ui: UiService, *, provider: str = "pkcs12", pki: Pki | None = None,
             claim: bool = False) -> str:
    """A province running the process. ``pkcs12``: a server-side key signs at once;
    ``client``: the official's own key signs through a plug-in, matched by certificate UID
    ``CCCD:<username>``."""
    unit = new_code("TINH")
    pki = pki or build()
    with ui.admin() as admin:
        admin.tenants.create(code=unit, name=f"Tỉnh thử {unit}", kind="province",
                             parent=ui.root)
        admin.forms.create(unit, definition=form_definition())
        admin.forms.publish(unit, FORM, 1)
        admin.workflows.create(unit, definition=workflow_definition(claim=claim))
        admin.workflows.publish(unit, WORKFLOW, 1)
        if provider == "pkcs12":
            admin.signing.replace(unit, provider="pkcs12", trust_anchors=[pki.root.pem],
                                  config={"pkcs12": base64.b64encode(
                                      pki.signer.pkcs12(b"mat-khau")).decode(),
                                      "password": "mat-khau"})
        else:
            admin.signing.replace(unit, provider="client", trust_anchors=[pki.root.pem],
                                  signer_match={"certificate": "UID", "principal": "username",
                                                "strip_prefixes": ["CCCD:"]})
    return unit


@dataclass(frozen=True)
class Commune:
    code: str
    username: str
    password: str


def commune(ui: UiService, parent: str, *, roles: tuple[str, ...] = ("officer", "reviewer"),
            name: str = "Xã Thử Nghiệm") -> Commune:
    """A commune whose admin also holds ``roles`` there (to work cases)."""
    code, username, password = new_code("XA"), "quantri.xa", "Quan-tri-xa-2026"
    with ui.admin() as admin:
        created = admin.tenants.create(code=code, name=name, kind="commune", parent=parent,
                                       admin={"username": username, "password": password,
                                              "display_name": "Nguyễn Thị Quản Trị"})
        assert created.admin is not None
        for role in roles:
            admin.grants.create(code, principal_id=created.admin.id, role=role)
    return Commune(code, username, password)


#: A small PDF the applicant attaches (the service recognises PDF from its bytes).
PDF = b"%PDF-1.7\n" + b"0" * 2048 + b"\n%%EOF\n"


def submit(ui: UiService, unit: str, data: dict[str, Any] | None = None, *,
           attachment: str | None = None) -> str:
    """An applicant's submission through the unit's portal (an API client); the case id.
    With ``attachment`` (a file name), a draft gets the PDF on its ``giay_to`` field first."""
    with ui.admin() as admin:
        portal = admin.clients.create(unit, name="Cổng dịch vụ công", roles=["api_client"])
    with Client(ui.base_url, client_id=portal.client_id,
                client_secret=portal.client_secret or "") as applicant:
        if attachment is None:
            submitted = applicant.submissions.create(unit, form=FORM, data=data or APPLICANT)
        else:
            draft = applicant.submissions.create(unit, form=FORM, data=data or APPLICANT,
                                                 status="draft")
            applicant.submissions.upload_attachment(unit, draft.id, field="giay_to",
                                                    filename=attachment, content=PDF)
            submitted = applicant.submissions.update(unit, draft.id, status="submitted")
    assert submitted.case is not None
    return str(submitted.case)
