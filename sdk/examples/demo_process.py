"""A small public service to try the SDK on: an application for a residence confirmation
("Đề nghị xác nhận thông tin cư trú"), its form and its two-step workflow.

``publish(client, "HN")`` creates and publishes both in a unit (nothing happens if they are
already there), so the other examples and the quick start have something to submit to.
Officers receive the file (``tiep_nhan_ho_so``), then approve (``phe_duyet``) or refuse
(``tu_choi``, comment required). The workflow's ``kiem_tra`` state is where a province may
plug in an automated check (see ``province_check``).
"""

from __future__ import annotations

from typing import Any

from nentang_sdk import Client, ConflictError

FORM_KEY = "xac-nhan-cu-tru"

FORM: dict[str, Any] = {
    "kind": "Form",
    "key": FORM_KEY,
    "title": {"vi": "Đề nghị xác nhận thông tin cư trú",
              "en": "Application for a residence confirmation"},
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["ho_ten", "ngay_sinh", "so_dinh_danh", "dia_chi"],
        "properties": {
            "ho_ten": {"type": "string", "minLength": 1, "maxLength": 100},
            "ngay_sinh": {"type": "string", "format": "date"},
            "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
            "dia_chi": {"type": "string", "minLength": 1, "maxLength": 300},
            "ly_do": {"type": "string", "maxLength": 1000},
        },
        "additionalProperties": False,
    },
    "ui_schema": {
        "sections": [{"id": "nguoi_de_nghi",
                      "title": {"vi": "Người đề nghị", "en": "Applicant"},
                      "fields": ["ho_ten", "ngay_sinh", "so_dinh_danh", "dia_chi", "ly_do"]}],
        "fields": {
            "ho_ten": {"label": {"vi": "Họ và tên", "en": "Full name"},
                       "personal_data": "basic"},
            "ngay_sinh": {"label": {"vi": "Ngày sinh", "en": "Date of birth"},
                          "personal_data": "basic"},
            "so_dinh_danh": {"label": {"vi": "Số định danh cá nhân",
                                       "en": "Personal identification number"},
                             "widget": "citizen-id", "personal_data": "basic"},
            "dia_chi": {"label": {"vi": "Nơi cư trú", "en": "Residence"},
                        "personal_data": "basic"},
            "ly_do": {"label": {"vi": "Lý do đề nghị", "en": "Reason"}},
        },
    },
}


def workflow(check_hook: str | None = None) -> dict[str, Any]:
    """The workflow; with ``check_hook`` (a URL), cases first wait in ``kiem_tra`` for a
    province's automated check, which moves them on with ``dat`` or ``khong_dat``."""
    first_review = "kiem_tra" if check_hook else "xem_xet"
    states: list[dict[str, Any]] = [
        {"name": "tiep_nhan", "type": "start",
         "title": {"vi": "Chờ tiếp nhận", "en": "Awaiting receipt"}},
        {"name": "xem_xet", "type": "task",
         "title": {"vi": "Đang xem xét", "en": "Under review"}},
        {"name": "da_duyet", "type": "terminal", "outcome": "approved",
         "title": {"vi": "Đã xác nhận", "en": "Confirmed"}},
        {"name": "tu_choi", "type": "terminal", "outcome": "rejected",
         "title": {"vi": "Từ chối", "en": "Refused"}},
    ]
    actions: list[dict[str, Any]] = [
        {"name": "tiep_nhan_ho_so", "title": {"vi": "Tiếp nhận hồ sơ", "en": "Receive"},
         "from": "tiep_nhan", "to": first_review, "roles": ["officer"]},
        {"name": "phe_duyet", "title": {"vi": "Phê duyệt", "en": "Approve"},
         "from": "xem_xet", "to": "da_duyet", "roles": ["officer", "reviewer"]},
        {"name": "tu_choi", "title": {"vi": "Từ chối", "en": "Refuse"},
         "from": "xem_xet", "to": "tu_choi", "roles": ["officer", "reviewer"],
         "comment": "required"},
    ]
    if check_hook:
        states.insert(1, {
            "name": "kiem_tra", "type": "task",
            "title": {"vi": "Kiểm tra tự động", "en": "Automated check"},
            "on_enter": [{"type": "webhook", "url": check_hook}]})
        actions += [
            {"name": "dat", "title": {"vi": "Đạt kiểm tra", "en": "Check passed"},
             "from": "kiem_tra", "to": "xem_xet", "roles": ["officer"]},
            {"name": "khong_dat", "title": {"vi": "Không đạt kiểm tra", "en": "Check failed"},
             "from": "kiem_tra", "to": "tu_choi", "roles": ["officer"], "comment": "required"},
        ]
    return {"kind": "Workflow", "key": FORM_KEY,
            "title": {"vi": "Xác nhận thông tin cư trú", "en": "Residence confirmation"},
            "form": FORM_KEY, "states": states, "actions": actions}


def publish(client: Client, tenant: str, *, check_hook: str | None = None) -> None:
    """Create and publish the form and the workflow in ``tenant`` unless they exist."""
    try:
        client.forms.create(tenant, definition=FORM)
        client.forms.publish(tenant, FORM_KEY, 1)
    except ConflictError:
        pass
    try:
        client.workflows.create(tenant, definition=workflow(check_hook))
        client.workflows.publish(tenant, FORM_KEY, 1)
    except ConflictError:
        pass
