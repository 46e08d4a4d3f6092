"""Forms and submissions through the SDK, against the live service on each backend: the
definition lifecycle (drafts, immutable versions, diffs, deprecation), dry-run validation and
the field pointers of its errors, prefilling from a remote register, submissions with their
filters, pagination and exports, drafts with attachments, and the wall between units."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_service import Service
from nentang_sdk import (
    Client,
    ConflictError,
    Download,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from nentang_sdk.models import Form, Submission
from sdk_helpers import Unit, new_unit

KEY = "dang-ky-thu"
PDF = b"%PDF-1.7\n" + b"0" * 1024 + b"\n%%EOF\n"
XLSX_MAGIC = b"PK\x03\x04"
OTHER_UNIT = (NotFoundError, PermissionDeniedError)


def text(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def form_definition(key: str = KEY, *, title_en: str = "Test registration") -> dict[str, Any]:
    """A small form: a personal name and ID number, a count, a kind, a note and files."""
    properties: dict[str, Any] = {
        "ho_ten": {"type": "string", "minLength": 2, "maxLength": 200},
        "so_cccd": {"type": "string", "pattern": "^[0-9]{12}$"},
        "so_luong": {"type": "integer", "minimum": 0},
        "loai": {"type": "string", "enum": ["ca_nhan", "to_chuc"]},
        "ghi_chu": {"type": "string", "maxLength": 500},
        "giay_to": {"type": "array", "items": {"type": "string"}},
    }
    fields: dict[str, Any] = {name: {"label": text(name, name)} for name in properties}
    fields["ho_ten"]["personal_data"] = "basic"
    fields["so_cccd"]["personal_data"] = "basic"
    fields["giay_to"]["widget"] = "file"
    return {"kind": "Form", "key": key, "title": text("Đăng ký thử", title_en),
            "schema": {"type": "object", "required": ["ho_ten", "so_luong", "loai"],
                       "properties": properties},
            "ui_schema": {"fields": fields}}


def valid_data(n: int = 1, kind: str = "ca_nhan", note: str = "binh thuong") -> dict[str, Any]:
    return {"ho_ten": f"Nguyễn Văn {n}", "so_luong": n, "loai": kind, "ghi_chu": note}


def published_form(nt: Client, code: str, key: str = KEY) -> Form:
    nt.forms.create(code, definition=form_definition(key))
    nt.forms.publish(code, key, 1)
    return nt.forms.get(code, key)


# ---- forms -------------------------------------------------------------------------------


def test_form_lifecycle_versions_diff_and_deprecation(nt: Client, unit: Unit) -> None:
    code = unit.code
    created = nt.forms.create(code, definition=form_definition())
    assert (created.key, created.status, created.draft_version, created.latest_version) == (
        KEY, "draft", 1, None)
    assert created.inherited is False and created.tenant == code

    renamed = form_definition(title_en="Test registration (draft 2)")
    draft = nt.forms.update_version(code, KEY, 1, definition=renamed)
    assert (draft.number, draft.status) == (1, "draft")
    assert nt.forms.get(code, KEY).definition == renamed

    published = nt.forms.publish(code, KEY, 1)
    assert (published.status, published.number, published.variants_flagged) == (
        "published", 1, 0)
    assert published.published_at is not None and published.digest
    with pytest.raises(ConflictError) as immutable:
        nt.forms.update_version(code, KEY, 1, definition=form_definition())
    assert immutable.value.code == "version-immutable"

    copied = nt.forms.create_version(code, KEY)
    assert (copied.number, copied.status, copied.definition) == (2, "draft", renamed)
    second = copy.deepcopy(renamed)
    second["schema"]["properties"]["email"] = {"type": "string", "maxLength": 200}
    second["schema"]["required"].append("email")
    second["ui_schema"]["fields"]["email"] = {"label": text("Thư điện tử", "E-mail")}
    nt.forms.update_version(code, KEY, 2, definition=second)
    assert nt.forms.version(code, KEY, 2).definition == second

    diff = nt.forms.diff(code, KEY, 1, 2)
    assert (diff.from_, diff.to, diff.same) == (1, 2, False)
    assert diff.fields_.added == ["email"] and "email" in diff.fields_.now_required
    assert any(op["path"].startswith("/schema/properties/email") for op in diff.patch)
    assert nt.forms.diff(code, KEY, 2, 2).same is True

    nt.forms.publish(code, KEY, 2)
    deprecated = nt.forms.deprecate(code, KEY, 1)
    assert (deprecated.number, deprecated.status) == (1, "deprecated")
    assert deprecated.deprecated_at is not None

    third = nt.forms.create_version(code, KEY, definition=form_definition())
    assert (third.number, third.definition) == (3, form_definition())
    assert [v.number for v in nt.forms.versions(code, KEY)] == [3, 2, 1]
    assert nt.forms.discard_version(code, KEY, 3) is None
    assert [(v.number, v.status) for v in nt.forms.versions(code, KEY)] == [
        (2, "published"), (1, "deprecated")]
    with pytest.raises(NotFoundError):
        nt.forms.version(code, KEY, 3)
    read = nt.forms.get(code, KEY)
    assert (read.status, read.latest_version, read.draft_version) == ("published", 2, None)


def test_forms_list_crosses_pages(nt: Client, unit: Unit) -> None:
    keys = [f"mau-{i}" for i in range(5)]
    for key in keys:
        nt.forms.create(unit.code, definition=form_definition(key))
    pager = nt.forms.list(unit.code, limit=2)
    first = pager.first_page()
    assert len(first.items) == 2 and first.next_cursor
    listed = [f.key for f in pager]
    assert [k for k in listed if k in keys] == sorted(keys)
    assert all(f.definition is None for f in nt.forms.list(unit.code, limit=2))


def test_validation_answers_and_errors_carry_json_pointers(nt: Client, unit: Unit) -> None:
    code = unit.code
    nt.forms.create(code, definition=form_definition())
    fine = nt.forms.validate(code, KEY, data=valid_data())
    assert (fine.valid, fine.version, fine.errors) == (True, 1, [])

    bad = nt.forms.validate(code, KEY, data={"ho_ten": "A", "so_luong": -1,
                                             "loai": "khac", "khong_co": 1})
    assert bad.valid is False
    pointers = {e.pointer for e in bad.errors}
    assert {"/ho_ten", "/so_luong", "/loai", "/khong_co"} <= pointers, bad.errors
    assert all(e.detail and e.detail_vi and e.keyword for e in bad.errors)
    nt.forms.publish(code, KEY, 1)
    assert nt.forms.validate(code, KEY, data=valid_data(), version=1).version == 1
    # Against an unsaved definition (the builder's live preview): nothing is stored.
    stricter = form_definition()
    stricter["schema"]["properties"]["so_luong"]["minimum"] = 5
    unsaved = nt.forms.validate(code, KEY, data=valid_data(), definition=stricter)
    assert (unsaved.valid, unsaved.version) == (False, None)
    assert [e.pointer for e in unsaved.errors] == ["/so_luong"]
    assert [v.number for v in nt.forms.versions(code, KEY)] == [1]

    # Storing invalid data is refused: a ValidationError naming each field by JSON Pointer.
    with pytest.raises(ValidationError) as refused:
        nt.submissions.create(code, form=KEY, data={"ho_ten": "Trần Thị B", "so_luong": -3,
                                                    "loai": "ca_nhan"})
    assert refused.value.status == 422
    assert "/data/so_luong" in {e.pointer for e in refused.value.errors}, refused.value.errors
    assert "/data/so_luong" in str(refused.value)

    # A definition that breaks the meta-schema is refused the same way, and nothing is stored.
    broken = form_definition("hong")
    broken["kind"] = "Bieu mau"
    del broken["ui_schema"]
    with pytest.raises(ValidationError) as invalid_form:
        nt.forms.create(code, definition=broken)
    assert {"/kind", "/ui_schema"} & {e.pointer for e in invalid_form.value.errors}, (
        invalid_form.value.errors)
    with pytest.raises(NotFoundError):
        nt.forms.get(code, "hong")

    # A field filter without its form names the query parameter at fault.
    with pytest.raises(ValidationError) as no_form:
        nt.submissions.list(code, filters={"loai": "ca_nhan"}).first_page()
    assert [e.parameter for e in no_form.value.errors] == ["form"]


PEOPLE: dict[str, dict[str, Any]] = {"001099012345": {"ho_ten": "Lê Thị Hoa", "tuoi": 34}}


class _Register(BaseHTTPRequestHandler):
    """A population register: GET /cong-dan/<citizen ID> answers the person or 404."""

    def do_GET(self) -> None:
        person = PEOPLE.get(self.path.rsplit("/", 1)[-1])
        payload = json.dumps(person or {"error": "not found"}).encode()
        self.send_response(200 if person else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def register() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Register)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_prefill_from_a_lookup(nt: Client, unit: Unit, register: str) -> None:
    code = unit.code
    published_form(nt, code)
    with pytest.raises(NotFoundError):
        nt.forms.prefill(code, KEY, field="so_cccd", value="001099012345")

    # Declaring the lookup is the data-sharing resource's job; done over plain HTTP here.
    token = nt.oauth.token(client_id=unit.client_id, client_secret=unit.client_secret)
    declared = httpx.put(
        f"{unit.base_url}/api/v1/tenants/{code}/lookups/dan-cu",
        headers={"Authorization": f"Bearer {token.access_token}"},
        json={"form": KEY, "field": "so_cccd", "settings": {
            "url": f"{register}/cong-dan/{{value}}", "fills": {"ho_ten": "/ho_ten"},
            "timeout_seconds": 5, "cache_seconds": 0}})
    assert declared.status_code == 200, declared.text

    found = nt.forms.prefill(code, KEY, field="so_cccd", value="001099012345")
    assert (found.available, found.found, found.source) == (True, True, "live")
    assert found.values == {"ho_ten": "Lê Thị Hoa"}
    nobody = nt.forms.prefill(code, KEY, field="so_cccd", value="079000000000")
    assert (nobody.available, nobody.found, nobody.values) == (True, False, {})
    with pytest.raises(ValidationError) as too_long:
        nt.forms.prefill(code, KEY, field="so_cccd", value="9" * 201)
    assert "/value" in {e.pointer for e in too_long.value.errors}


# ---- submissions -------------------------------------------------------------------------


def test_submissions_filters_pagination_and_idempotent_create(nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    made = [nt.submissions.create(code, form=KEY, data=valid_data(
        i, "to_chuc" if i % 2 else "ca_nhan", "khan cap" if i == 3 else "binh thuong"))
        for i in range(1, 6)]
    assert all(s.status == "submitted" and s.form.version == 1 for s in made)
    assert made[0].masked_fields == [] and made[0].data == valid_data(1, "to_chuc")

    retried = [nt.submissions.create(code, form=KEY, data=valid_data(9),
                                     idempotency_key="mot-lan-duy-nhat") for _ in range(2)]
    assert retried[0].id == retried[1].id, "the same key is one submission"

    pager = nt.submissions.list(code, form=KEY, limit=2)
    pages = list(pager.pages())
    assert len(pages) == 3 and all(p.next_cursor for p in pages[:-1])
    ids = [s.id for s in pager]
    assert len(ids) == 6 == len(set(ids))
    assert ids[:5] == [s.id for s in reversed([*made, retried[0]])][:5], "newest first"

    orgs = nt.submissions.list(code, form=KEY, filters={"loai": "to_chuc"}, limit=2).to_list()
    assert sorted(s.data["so_luong"] for s in orgs) == [1, 3, 5]
    urgent = nt.submissions.list(code, q="khan", limit=2).to_list()
    assert [s.id for s in urgent] == [made[2].id]
    assert nt.submissions.list(code, status="draft").to_list() == []
    assert len(nt.submissions.list(code, subtree=False, form=KEY).to_list()) == 6

    one = nt.submissions.get(code, made[0].id)
    assert (one.id, one.data, one.tenant) == (made[0].id, valid_data(1, "to_chuc"), code)


def test_export_as_csv_and_xlsx(nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    for i in range(1, 4):
        nt.submissions.create(code, form=KEY, data=valid_data(i, "to_chuc" if i == 2
                                                              else "ca_nhan"))
    exported = nt.submissions.export(code, form=KEY)
    assert isinstance(exported, Download)
    assert exported.content_type.startswith("text/csv")
    assert exported.filename == f"{code}-{KEY}.csv"
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert sorted(r["so_luong"] for r in rows) == ["1", "2", "3"]
    assert {"ho_ten", "loai"} <= set(rows[0])

    only = nt.submissions.export(code, form=KEY, filters={"loai": "to_chuc"}, status="submitted")
    assert len(list(csv.DictReader(io.StringIO(only.content.decode("utf-8-sig"))))) == 1

    workbook = nt.submissions.export(code, form=KEY, format="xlsx")
    assert workbook.content.startswith(XLSX_MAGIC)
    assert workbook.filename == f"{code}-{KEY}.xlsx"
    assert "spreadsheetml" in workbook.content_type


def test_drafts_attachments_submit_and_delete(nt: Client, unit: Unit,
                                              tmp_path: Path) -> None:
    code = unit.code
    published_form(nt, code)
    draft = nt.submissions.create(code, form=KEY, data={"ho_ten": "Phạm Văn C"},
                                  status="draft")
    assert (draft.status, draft.submitted_at) == ("draft", None)

    uploaded = nt.submissions.upload_attachment(code, draft.id, field="giay_to",
                                                filename="giấy tờ.pdf", content=PDF)
    assert (uploaded.field, uploaded.filename, uploaded.size) == ("giay_to", "giấy tờ.pdf",
                                                                  len(PDF))
    assert uploaded.media_type == "application/pdf"
    assert uploaded.sha256 == hashlib.sha256(PDF).hexdigest()
    second = nt.submissions.upload_attachment(code, draft.id, field="giay_to",
                                              filename="anh.pdf", content=PDF,
                                              content_type="application/pdf")
    assert {a.id for a in nt.submissions.attachments(code, draft.id)} == {uploaded.id,
                                                                           second.id}
    with pytest.raises(ValidationError) as no_field:
        nt.submissions.upload_attachment(code, draft.id, field="khong_co", filename="x.pdf",
                                         content=PDF)
    assert [e.parameter for e in no_field.value.errors] == ["field"]

    got = nt.submissions.download_attachment(code, draft.id, uploaded.id)
    assert (got.content, got.content_type) == (PDF, "application/pdf")
    assert got.filename == "giấy tờ.pdf"
    got.save(str(tmp_path / "copy.pdf"))
    assert (tmp_path / "copy.pdf").read_bytes() == PDF

    assert nt.submissions.delete_attachment(code, draft.id, second.id) is None
    assert [a.id for a in nt.submissions.attachments(code, draft.id)] == [uploaded.id]
    with pytest.raises(NotFoundError):
        nt.submissions.download_attachment(code, draft.id, second.id)

    with pytest.raises(ValidationError):
        nt.submissions.update(code, draft.id, status="submitted")  # so_luong, loai missing
    changed = nt.submissions.update(code, draft.id, data={**valid_data(7),
                                                          "giay_to": [str(uploaded.id)]})
    assert (changed.status, changed.data["so_luong"]) == ("draft", 7)
    submitted = nt.submissions.update(code, draft.id, status="submitted")
    assert submitted.status == "submitted" and submitted.submitted_at is not None
    with pytest.raises(ConflictError):
        nt.submissions.delete(code, draft.id)
    with pytest.raises(ConflictError):
        nt.submissions.delete_attachment(code, draft.id, uploaded.id)

    other = nt.submissions.create(code, form=KEY, data={"so_luong": 1}, status="draft")
    nt.submissions.upload_attachment(code, other.id, field="giay_to", filename="a.pdf",
                                     content=PDF)
    assert nt.submissions.delete(code, other.id) is None
    with pytest.raises(NotFoundError):
        nt.submissions.get(code, other.id)
    assert nt.submissions.get(code, draft.id).status == "submitted"


async def test_async_client_lists_with_async_for(unit: Unit) -> None:
    async with unit.async_client() as nt:
        await nt.forms.create(unit.code, definition=form_definition())
        await nt.forms.publish(unit.code, KEY, 1)
        made: list[Submission] = [
            await nt.submissions.create(unit.code, form=KEY, data=valid_data(i))
            for i in range(5)]
        seen = [s.id async for s in nt.submissions.list(unit.code, form=KEY, limit=2)]
        assert seen == [s.id for s in reversed(made)]
        pages = [len(p.items) async for p in nt.submissions.list(unit.code, limit=2).pages()]
        assert pages == [2, 2, 1]
        keys = [f.key async for f in nt.forms.list(unit.code, limit=1)]
        assert KEY in keys
        validated = await nt.forms.validate(unit.code, KEY, data={"so_luong": "nhiều"})
        assert {"/ho_ten", "/so_luong", "/loai"} <= {e.pointer for e in validated.errors}
        exported = await nt.submissions.export(unit.code, form=KEY)
        assert exported.content.decode("utf-8-sig").count("\n") >= 6


# ---- the wall between units --------------------------------------------------------------


def test_another_unit_cannot_read_or_change_forms_or_submissions(
        admin: Client, service: Service, nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    nt.forms.create_version(code, KEY)
    submission = nt.submissions.create(code, form=KEY, data=valid_data(1))
    draft = nt.submissions.create(code, form=KEY, data={"so_luong": 2}, status="draft")
    attachment = nt.submissions.upload_attachment(code, draft.id, field="giay_to",
                                                  filename="a.pdf", content=PDF)
    before_form = nt.forms.get(code, KEY)
    before_versions = nt.forms.versions(code, KEY)

    stranger = new_unit(admin, service)
    with stranger.client() as other:
        own = stranger.code
        # Through the first unit's path: its forms and submissions are out of reach.
        attempts: list[Callable[[], object]] = [
            lambda: other.forms.get(code, KEY),
            lambda: other.forms.versions(code, KEY),
            lambda: other.forms.list(code).to_list(),
            lambda: other.forms.update_version(code, KEY, 2, definition=form_definition()),
            lambda: other.forms.publish(code, KEY, 2),
            lambda: other.forms.discard_version(code, KEY, 2),
            lambda: other.forms.deprecate(code, KEY, 1),
            lambda: other.forms.create_version(code, KEY),
            lambda: other.forms.validate(code, KEY, data=valid_data()),
            lambda: other.submissions.get(code, submission.id),
            lambda: other.submissions.list(code).to_list(),
            lambda: other.submissions.export(code, form=KEY),
            lambda: other.submissions.create(code, form=KEY, data=valid_data(3)),
            lambda: other.submissions.update(code, draft.id, data={"so_luong": 99}),
            lambda: other.submissions.delete(code, draft.id),
            lambda: other.submissions.attachments(code, draft.id),
            lambda: other.submissions.download_attachment(code, draft.id, attachment.id),
            lambda: other.submissions.delete_attachment(code, draft.id, attachment.id),
        ]
        for attempt in attempts:
            with pytest.raises(OTHER_UNIT):
                attempt()
        # Through its own path, the first unit's records do not exist.
        hidden: list[Callable[[], object]] = [
            lambda: other.forms.get(own, KEY),
            lambda: other.submissions.get(own, submission.id),
            lambda: other.submissions.update(own, draft.id, data={"so_luong": 99}),
            lambda: other.submissions.delete(own, draft.id),
            lambda: other.submissions.attachments(own, draft.id),
            lambda: other.submissions.download_attachment(own, draft.id, attachment.id),
            lambda: other.submissions.delete_attachment(own, draft.id, attachment.id),
            lambda: other.submissions.upload_attachment(own, draft.id, field="giay_to",
                                                        filename="b.pdf", content=PDF),
        ]
        for attempt in hidden:
            with pytest.raises(NotFoundError):
                attempt()
        assert other.submissions.list(own).to_list() == []
        assert KEY not in [f.key for f in other.forms.list(own)]

    # Read back as the owner: nothing changed.
    after = nt.forms.get(code, KEY)
    assert (after.definition, after.latest_version, after.draft_version) == (
        before_form.definition, 1, 2)
    assert nt.forms.versions(code, KEY) == before_versions
    assert nt.submissions.get(code, submission.id).data == valid_data(1)
    kept = nt.submissions.get(code, draft.id)
    assert (kept.status, kept.data) == ("draft", {"so_luong": 2})
    assert [a.id for a in nt.submissions.attachments(code, draft.id)] == [attachment.id]
    assert nt.submissions.download_attachment(code, draft.id, attachment.id).content == PDF
    assert [s.id for s in nt.submissions.list(code, form=KEY)] == [draft.id, submission.id]
