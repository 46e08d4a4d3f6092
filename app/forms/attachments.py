"""Files attached to a draft submission's fields.

An upload is streamed to the attachment storage (:mod:`app.forms.storage`) with its size
limit and allowed types checked on the content itself, never on the file name or the declared
type; the row records the sniffed media type, the size and the SHA-256. A file belongs to one
field of the submission's form, and reading it back needs the personal-data permission that
field's marking asks for, as reading the field does.

Files of a draft leave storage when the draft or the attachment is deleted — after the
transaction commits, so a rolled-back delete never loses a file a row still points at.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, forbidden, not_found
from app.core.validation import is_safe_text
from app.forms import content_types, storage, submissions
from app.forms.models import Attachment, FormVersion, Submission, SubmissionStatus
from app.identity.callers import Caller
from app.tenancy.models import Tenant
from app.tenancy.service import lock_active_lineage

ALLOWED_TYPES = content_types.ATTACHMENT_TYPES
MAX_FILENAME = 255


def _draft_only(submission: Submission) -> None:
    if submission.status != SubmissionStatus.DRAFT.value:
        raise Problem(409, "submission-final", "Hồ sơ đã nộp không thể sửa",
                      "Submitted data cannot change",
                      detail="Files can be added to or removed from a draft submission only.")


def _check_field(version: FormVersion, field: str) -> None:
    if field not in version.definition["schema"].get("properties", {}):
        raise Problem(422, "unknown-field", "Biểu mẫu không có trường này", "No such field",
                      detail=f"Form '{version.definition['key']}' version {version.number} has "
                      f"no field '{field}'.",
                      errors=[{"parameter": "field", "in": "query", "detail": "no such field"}])


def _check_filename(filename: str) -> str:
    name = filename.strip().replace("\\", "/").rsplit("/", 1)[-1]
    if not name or len(name) > MAX_FILENAME or not is_safe_text(name):
        raise Problem(422, "invalid-filename", "Tên tệp không hợp lệ", "Invalid file name",
                      detail=f"Give the file's name, 1 to {MAX_FILENAME} printable characters.",
                      errors=[{"parameter": "filename", "in": "query",
                               "detail": "invalid file name"}])
    return name


async def upload(session: AsyncSession, store: storage.AttachmentStorage, *, caller: Caller,
                 tenant: Tenant, submission_id: uuid.UUID, field: str, filename: str,
                 chunks: AsyncIterator[bytes], max_bytes: int) -> Attachment:
    name = _check_filename(filename)
    submission, version, owner = await submissions.get(session, tenant, submission_id,
                                                       lock=True)
    _draft_only(submission)
    _check_field(version, field)
    await lock_active_lineage(session, owner)
    try:
        stored = await storage.store_upload(store, chunks, max_bytes=max_bytes,
                                            allowed=ALLOWED_TYPES)
    except storage.TooLarge as exc:
        raise Problem(413, "file-too-large", "Tệp quá lớn", "File too large",
                      detail=f"A file may be at most {exc.limit} bytes.") from None
    except storage.UnsupportedType as exc:
        raise Problem(415, "file-type-not-allowed", "Loại tệp không được phép",
                      "File type not allowed",
                      detail=f"The content is {exc.detected or 'of an unknown type'}; allowed: "
                      f"{', '.join(sorted(ALLOWED_TYPES))}. The name and declared type do not "
                      "count.") from None
    attachment = Attachment(
        tenant_id=submission.tenant_id, id=uuid.uuid4(), submission_id=submission.id,
        field=field, filename=name, media_type=stored.media_type, size_bytes=stored.size,
        sha256=stored.sha256, storage_key=stored.key, created_by=caller.actor,
        created_at=utcnow())
    session.add(attachment)
    try:
        await session.flush()
    except Exception:
        await storage.delete_all(store, [stored.key])
        raise
    await _record(session, caller, attachment, "attachment.create")
    return attachment


async def _record(session: AsyncSession, caller: Caller, attachment: Attachment,
                  action: str) -> None:
    """The file's name may itself be personal ("CCCD Nguyen Van A.pdf"): not audited."""
    await audit.record(session, tenant_id=attachment.tenant_id, actor=caller.actor,
                       action=action, resource_type="attachment",
                       resource_id=str(attachment.id),
                       after={"submission": str(attachment.submission_id),
                              "field": attachment.field, "media_type": attachment.media_type,
                              "size": attachment.size_bytes, "sha256": attachment.sha256})


async def of_submission(session: AsyncSession, tenant: Tenant,
                        submission_id: uuid.UUID) -> tuple[list[Attachment], FormVersion, Tenant]:
    submission, version, owner = await submissions.get(session, tenant, submission_id)
    rows = (await session.execute(
        select(Attachment).where(Attachment.tenant_id == submission.tenant_id,
                                 Attachment.submission_id == submission.id)
        .order_by(Attachment.created_at, Attachment.id))).scalars()
    return list(rows), version, owner


async def _one(session: AsyncSession, tenant: Tenant, submission_id: uuid.UUID,
               attachment_id: uuid.UUID) -> tuple[Attachment, Submission, FormVersion, Tenant]:
    submission, version, owner = await submissions.get(session, tenant, submission_id)
    attachment = (await session.execute(select(Attachment).where(
        Attachment.tenant_id == submission.tenant_id,
        Attachment.submission_id == submission.id,
        Attachment.id == attachment_id))).scalar_one_or_none()
    if attachment is None:
        raise not_found("attachment", str(attachment_id))
    return attachment, submission, version, owner


def may_read(caller: Caller, owner: Tenant, version: FormVersion, field: str) -> bool:
    level = submissions.personal_fields(version.definition).get(field)
    return level is None or (
        submissions.LEVEL_PERMISSION[level] in caller.permissions_at(owner.path))


async def open_file(session: AsyncSession, store: storage.AttachmentStorage, *, caller: Caller,
                    tenant: Tenant, submission_id: uuid.UUID,
                    attachment_id: uuid.UUID) -> tuple[Attachment, AsyncIterator[bytes]]:
    attachment, _submission, version, owner = await _one(session, tenant, submission_id,
                                                         attachment_id)
    if not may_read(caller, owner, version, attachment.field):
        raise forbidden(f"The file belongs to '{attachment.field}', which is personal data; "
                        "reading it needs the matching personal_data permission.")
    try:
        return attachment, await store.open(attachment.storage_key)
    except storage.NotFound:
        raise not_found("attachment", str(attachment_id)) from None


async def remove(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                 submission_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    """Delete an attachment's row; returns the storage key to delete after commit."""
    attachment, submission, _version, owner = await _one(session, tenant, submission_id,
                                                         attachment_id)
    _draft_only(submission)
    await lock_active_lineage(session, owner)
    await _record(session, caller, attachment, "attachment.delete")
    await session.delete(attachment)
    await session.flush()
    return attachment.storage_key

