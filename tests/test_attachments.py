"""Attachments over the API: the content decides the type (not the name or the declared
type), the size limit holds, the SHA-256 is recorded and served, a personal-data field's file
needs the matching permission, and deleting a draft removes its files from storage."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from app.forms.storage import AttachmentStorage
from tests.conftest import Backend
from tests.platform import Credentials, Platform
from tests.test_attachment_storage import (  # noqa: F401 (fixtures: a real S3 server)
    BUCKET,
    S3_PREFIX,
    Moto,
    _no_ambient_aws,
    moto,
    s3_storage,
)
from tests.test_forms import catalogue, count, published, sample

FORM = "thi-nang-ngach"
PDF = b"%PDF-1.7\n" + b"0" * 4096 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def draft(client: httpx.AsyncClient, tenant: str, who: Credentials) -> str:
    made = await client.post(f"/api/v1/tenants/{tenant}/submissions", headers=who.headers,
                             json={"form": FORM, "data": sample(FORM), "status": "draft"})
    assert made.status_code == 201, made.text
    submission_id: str = made.json()["id"]
    return submission_id


def files_url(tenant: str, submission_id: str, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant}/submissions/{submission_id}/attachments{suffix}"


async def upload(client: httpx.AsyncClient, tenant: str, who: Credentials, submission_id: str,
                 content: bytes, *, field: str = "van_ban_cu_du_thi",
                 filename: str = "quyet-dinh.pdf",
                 media_type: str = "application/octet-stream") -> httpx.Response:
    return await client.post(files_url(tenant, submission_id), content=content,
                             params={"field": field, "filename": filename},
                             headers={**who.headers, "Content-Type": media_type})


def stored_files(backend: Backend) -> list[Path]:
    root = backend.settings.data_dir / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_records_the_real_type_size_and_digest(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    submission_id = await draft(client, province, admin)
    response = await upload(client, province, admin, submission_id, PDF,
                            filename="ảnh thẻ.jpg", media_type="image/jpeg")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["media_type"] == "application/pdf", "the content decides, not the name"
    assert body["size"] == len(PDF)
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["filename"] == "ảnh thẻ.jpg"

    listed = await client.get(files_url(province, submission_id), headers=admin.headers)
    assert [a["id"] for a in listed.json()] == [body["id"]]
    got = await client.get(files_url(province, submission_id, f"/{body['id']}"),
                           headers=admin.headers)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["repr-digest"].startswith("sha-256=:")


async def test_disallowed_content_and_oversized_files_leave_nothing(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    submission_id = await draft(client, province, admin)
    before = (await count(backend, "attachments"), stored_files(backend))
    cases: list[tuple[bytes, dict[str, Any], int]] = [
        (b"MZ\x90\x00" + b"\x00" * 100, {"filename": "don.pdf",
                                         "media_type": "application/pdf"}, 415),
        (b"<html><script>alert(1)</script></html>", {"filename": "anh.png"}, 415),
        (b"PK\x03\x04" + b"\x00" * 100, {"filename": "ho-so.docx"}, 415),
        (PDF * 6000, {}, 413),  # 24 MB, over the 20 MiB default
        (PDF, {"field": "khong_co"}, 422),
        (PDF, {"filename": "a\x00b.pdf"}, 422),
    ]
    for content, extra, status in cases:
        response = await upload(client, province, admin, submission_id, content, **extra)
        assert response.status_code == status, (extra, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await count(backend, "attachments"), stored_files(backend)) == before


async def test_files_of_personal_fields_need_the_permission(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue(FORM)
    definition["ui_schema"]["fields"]["van_ban_cu_du_thi"]["personal_data"] = "sensitive"
    await published(client, province, admin, definition)
    submission_id = await draft(client, province, admin)
    made = (await upload(client, province, admin, submission_id, PNG,
                         filename="giay-kham.png")).json()
    url = files_url(province, submission_id, f"/{made['id']}")
    officer = await platform.client_for(province, ["officer"], by=admin)
    reviewer = await platform.client_for(province, ["reviewer"], by=admin)
    assert (await client.get(url, headers=officer.headers)).status_code == 403
    assert (await client.get(url, headers=reviewer.headers)).content == PNG


async def test_deleting_a_draft_removes_its_files(client: httpx.AsyncClient,
                                                  platform: Platform,
                                                  backend: Backend) -> None:
    province, admin = await platform.province_with_admin()
    await published(client, province, admin, catalogue(FORM))
    submission_id = await draft(client, province, admin)
    before = stored_files(backend)
    ids = [(await upload(client, province, admin, submission_id, body)).json()["id"]
           for body in (PDF, PNG)]
    assert len(stored_files(backend)) == len(before) + 2

    one = await client.delete(files_url(province, submission_id, f"/{ids[0]}"),
                              headers=admin.headers)
    assert one.status_code == 204
    assert len(stored_files(backend)) == len(before) + 1
    gone = await client.delete(f"/api/v1/tenants/{province}/submissions/{submission_id}",
                               headers=admin.headers)
    assert gone.status_code == 204
    assert stored_files(backend) == before

    submitted = await draft(client, province, admin)
    kept = (await upload(client, province, admin, submitted, PDF)).json()
    await client.patch(f"/api/v1/tenants/{province}/submissions/{submitted}",
                       json={"status": "submitted"}, headers=admin.headers)
    refused = await client.delete(files_url(province, submitted, f"/{kept['id']}"),
                                  headers=admin.headers)
    assert refused.status_code == 409
    late = await upload(client, province, admin, submitted, PDF)
    assert late.status_code == 409


async def test_attachments_through_s3_compatible_storage(
        client: httpx.AsyncClient, platform: Platform, app: Any, moto: Moto,  # noqa: F811
        s3_storage: AttachmentStorage) -> None:  # noqa: F811
    """The same API over the S3 backend (a real S3 server): the object holds exactly the
    bytes uploaded, and deleting the draft removes it."""
    # The app is shared by the session; its storage is swapped for this test only.
    local = app.state.attachments
    app.state.attachments = s3_storage
    try:
        province, admin = await platform.province_with_admin()
        await published(client, province, admin, catalogue(FORM))
        submission_id = await draft(client, province, admin)

        def objects() -> list[str]:
            listing = moto.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{S3_PREFIX}/")
            return sorted(item["Key"] for item in listing.get("Contents", []))

        before = objects()
        made = await upload(client, province, admin, submission_id, PDF)
        assert made.status_code == 201, made.text
        (key,) = sorted(set(objects()) - set(before))
        assert moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == PDF
        got = await client.get(files_url(province, submission_id, f"/{made.json()['id']}"),
                               headers=admin.headers)
        assert got.content == PDF
        gone = await client.delete(f"/api/v1/tenants/{province}/submissions/{submission_id}",
                                   headers=admin.headers)
        assert gone.status_code == 204
        assert objects() == before
    finally:
        app.state.attachments = local
