"""eForms and submissions under ``/api/v1/tenants/{tenant}``."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, StreamingResponse

from app.cases import service as cases
from app.core.deps import AppSettings
from app.core.idempotency import idempotent
from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.core.problems import Problem
from app.core.validation import is_safe_text
from app.definitions.endpoints import add_definition_routes
from app.forms import attachments, exports, service, submissions
from app.forms.models import Attachment, FormVersion, Submission, SubmissionStatus
from app.forms.schemas import (
    FORM_KEY_PATTERN,
    AttachmentOut,
    FieldErrorOut,
    FormOut,
    PinnedForm,
    SubmissionCreate,
    SubmissionOut,
    SubmissionUpdate,
    ValidateIn,
    ValidateOut,
    VersionDiff,
)
from app.forms.storage import AttachmentStorage, delete_all
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.tenancy.models import Tenant

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["forms"])
KeyPath = Annotated[str, Query(pattern=FORM_KEY_PATTERN)]
Definition = Annotated[dict[str, Any], Body(description="A form definition "
                                            "(forms/form.schema.json).")]


FormsRead = Annotated[Access, needs(Permission.FORMS_READ)]
FormsWrite = Annotated[Access, needs(Permission.FORMS_WRITE)]
SubmissionsCreate = Annotated[Access, needs(Permission.SUBMISSIONS_CREATE)]
SubmissionsRead = Annotated[Access, needs(Permission.SUBMISSIONS_READ)]


# ---- forms -------------------------------------------------------------------------------


add_definition_routes(router, lifecycle=service.FORMS, plural="forms", read=FormsRead,
                      write=FormsWrite, out=FormOut, publish=service.publish, diff=service.diff,
                      diff_model=VersionDiff)


@router.post("/forms/{key}/validate", response_model=ValidateOut,
             summary="Check data against a version without storing anything")
async def validate_data(access: FormsRead, key: str, body: ValidateIn,
                        session: ScopedSession) -> ValidateOut:
    form = await service.resolve(session, access.tenant, key)
    if body.definition is not None:
        definition = service.unsaved_definition(body.definition, version=body.version)
        submissions.check_shape(body.data)
        found = submissions.definition_errors(definition, body.data)
        return ValidateOut(valid=not found, version=None,
                           errors=[FieldErrorOut(**e.as_dict()) for e in found])
    version = await service.version_to_check(session, form, access.tenant, body.version)
    submissions.check_shape(body.data)
    errors = [FieldErrorOut(**e.as_dict())
              for e in submissions.field_errors(version, body.data)]
    return ValidateOut(valid=not errors, version=version.number, errors=errors)


# ---- submissions -------------------------------------------------------------------------


def _submission_out(access: Access, submission: Submission, version: FormVersion,
                    owner: Tenant, codes: dict[uuid.UUID, str]) -> SubmissionOut:
    held = access.principal.permissions_at(owner.path)
    masked = submissions.mask(version.definition, submission.data, held)
    return SubmissionOut(
        id=submission.id, tenant=owner.code,
        form=PinnedForm(key=submission.form_key, tenant=codes.get(version.tenant_id),
                        version=version.number),
        status=submission.status,
        data=masked.data, masked_fields=masked.masked_fields,
        created_by=submission.created_by, created_at=submission.created_at,
        updated_at=submission.updated_at, submitted_at=submission.submitted_at)


async def _one_out(session: ScopedSession, access: Access, submission: Submission,
                   version: FormVersion, owner: Tenant) -> SubmissionOut:
    codes = ({owner.id: owner.code} if version.tenant_id == owner.id
             else await service.tenant_codes(session, {version.tenant_id}))
    out = _submission_out(access, submission, version, owner, codes)
    out.case = await cases.case_of(session, submission)
    return out


@router.post("/submissions", status_code=201, response_model=SubmissionOut,
             summary="Submit data with a form (pinned to its current or a given version)")
async def create_submission(request: Request, access: SubmissionsCreate, body: SubmissionCreate,
                            session: ScopedSession, settings: AppSettings) -> JSONResponse:
    async def create() -> tuple[int, dict[str, Any]]:
        submission, version = await submissions.create(
            session, caller=access.principal, tenant=access.tenant, form_key=body.form,
            version_number=body.version, data=body.data,
            status=SubmissionStatus(body.status))
        if submission.status == SubmissionStatus.SUBMITTED.value:
            await cases.open_for_submission(session, principal=access.principal,
                                            tenant=access.tenant, submission=submission)
        out = await _one_out(session, access, submission, version, access.tenant)
        return 201, out.model_dump(mode="json")

    return await idempotent(
        request, session, tenant_id=access.tenant.id, principal_id=str(access.principal.id),
        body=body, ttl_seconds=settings.idempotency_ttl_seconds, create=create)


_FIELD_PARAM = re.compile(r"^data\.([A-Za-z_][A-Za-z0-9_-]{0,63})(\.[A-Za-z_][A-Za-z0-9_-]{0,63})"
                          r"{0,3}$")
MAX_FIELD_FILTERS = 5


def _field_filters(request: Request) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for name, value in request.query_params.multi_items():
        if not name.startswith("data."):
            continue
        if not _FIELD_PARAM.match(name) or len(value) > 500 or not is_safe_text(value):
            raise Problem(422, "invalid-filter", "Bộ lọc không hợp lệ", "Invalid filter",
                          detail="Filter by field with data.<field>[.<sub>]=<value>.",
                          errors=[{"parameter": name[:100], "in": "query",
                                   "detail": "not a field filter this endpoint understands"}])
        found.append((name[len("data."):], value))
    if len(found) > MAX_FIELD_FILTERS:
        raise Problem(422, "invalid-filter", "Bộ lọc không hợp lệ", "Invalid filter",
                      detail=f"At most {MAX_FIELD_FILTERS} field filters.",
                      errors=[{"parameter": "data.*", "in": "query", "detail": "too many"}])
    return tuple(found)


@router.get("/submissions", response_model=Page[SubmissionOut],
            summary="Submissions here and below, newest first; filter, search, paginate")
async def list_submissions(
    request: Request, access: SubmissionsRead, session: ScopedSession,
    form: KeyPath | None = None,
    status: Annotated[SubmissionStatus | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words to search for in "
                                   "fields that are not personal data")] = None,
    subtree: Annotated[bool, Query(description="Include the tenants below")] = True,
    cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
) -> Page[SubmissionOut]:
    fields = _field_filters(request)
    if fields:
        await submissions.check_field_filters(session, access.principal, access.tenant, form,
                                              [p for p, _ in fields])
    after = decode_cursor(cursor, datetime, uuid.UUID)
    filters = submissions.Filters(form=form, status=status, query=q, fields=fields,
                                  here_only=not subtree)
    rows = await submissions.list_page(
        session, access.tenant, filters,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1)
    page, next_cursor = split_page(rows, limit,
                                   lambda r: [r[0].created_at.isoformat(), str(r[0].id)])
    codes = await service.tenant_codes(session, {v.tenant_id for _s, v, _t in page})
    return Page[SubmissionOut](items=[_submission_out(access, s, v, t, codes)
                                      for s, v, t in page], next_cursor=next_cursor)


@router.get("/submissions/export", response_class=StreamingResponse,
            summary="Export a form's submissions here and below as CSV or XLSX (masked)",
            responses={200: {"content": {t: {} for t in exports.MEDIA_TYPES.values()}}})
async def export_submissions(
    request: Request, access: SubmissionsRead, session: ScopedSession, form: KeyPath,
    format: Annotated[exports.ExportFormat, Query()] = exports.ExportFormat.CSV,
    status: Annotated[SubmissionStatus | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    subtree: Annotated[bool, Query()] = True,
) -> StreamingResponse:
    fields = _field_filters(request)
    if fields:
        await submissions.check_field_filters(session, access.principal, access.tenant, form,
                                              [p for p, _ in fields])
    filters = submissions.Filters(form=form, status=status, query=q, fields=fields,
                                  here_only=not subtree)
    resolved = await service.resolve(session, access.tenant, form)
    columns = exports.field_columns(await service.versions(session, resolved, access.tenant))
    total = await submissions.count(session, access.tenant, filters)
    header = [*exports.FIXED_COLUMNS, *columns]
    name = f"{access.tenant.code}-{form}.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "X-Total-Count": str(total), "Cache-Control": "private, no-store"}
    if format is exports.ExportFormat.XLSX:
        read = exports.in_session(session, access.tenant, filters)
        path, size = await exports.xlsx_file(header, exports.rows(read, access.principal,
                                                                  columns))
        headers["Content-Length"] = str(size)
        return StreamingResponse(exports.file_chunks(path), headers=headers,
                                 media_type=exports.MEDIA_TYPES[format])
    read = exports.detached(request.app.state.db.sessionmaker, access.principal.scope(),
                            access.tenant, filters)
    records = exports.rows(read, access.principal, columns)
    return StreamingResponse(exports.csv_chunks(header, records), headers=headers,
                             media_type=exports.MEDIA_TYPES[format])


@router.get("/submissions/{submission_id}", response_model=SubmissionOut)
async def read_submission(access: SubmissionsRead, submission_id: uuid.UUID,
                          session: ScopedSession) -> SubmissionOut:
    submission, version, owner = await submissions.get(session, access.tenant, submission_id)
    return await _one_out(session, access, submission, version, owner)


@router.patch("/submissions/{submission_id}", response_model=SubmissionOut,
              summary="Change a draft, or submit it with status=submitted")
async def update_submission(access: SubmissionsCreate, submission_id: uuid.UUID,
                            body: SubmissionUpdate, session: ScopedSession) -> SubmissionOut:
    submission, version, owner = await submissions.update_draft(
        session, caller=access.principal, tenant=access.tenant, submission_id=submission_id,
        data=body.data, status=SubmissionStatus(body.status) if body.status else None)
    if body.status == SubmissionStatus.SUBMITTED.value:
        await cases.open_for_submission(session, principal=access.principal, tenant=owner,
                                        submission=submission)
    return await _one_out(session, access, submission, version, owner)


@router.delete("/submissions/{submission_id}", status_code=204,
               summary="Delete a draft submission and its files")
async def delete_submission(request: Request, access: SubmissionsCreate,
                            submission_id: uuid.UUID, session: ScopedSession) -> Response:
    keys = await submissions.delete_draft(session, caller=access.principal, tenant=access.tenant,
                                          submission_id=submission_id)
    return Response(status_code=204, background=_delete_files(request, keys))


# ---- attachments -------------------------------------------------------------------------


def _store(request: Request) -> AttachmentStorage:
    store: AttachmentStorage = request.app.state.attachments
    return store


def _delete_files(request: Request, keys: list[str]) -> BackgroundTask | None:
    """Files go once the response is sent, i.e. after the transaction committed."""
    return BackgroundTask(delete_all, _store(request), keys) if keys else None


def _attachment_out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(id=attachment.id, field=attachment.field, filename=attachment.filename,
                         media_type=attachment.media_type, size=attachment.size_bytes,
                         sha256=attachment.sha256, created_at=attachment.created_at,
                         created_by=attachment.created_by)


@router.post("/submissions/{submission_id}/attachments", status_code=201,
             response_model=AttachmentOut,
             summary="Upload a file for a field of a draft (the raw bytes as the body)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
async def upload_attachment(
    request: Request, access: SubmissionsCreate, submission_id: uuid.UUID,
    session: ScopedSession, settings: AppSettings,
    field: Annotated[str, Query(max_length=64, description="The form field it belongs to")],
    filename: Annotated[str, Query(max_length=1000, description="The file's name as shown")],
) -> AttachmentOut:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.attachment_max_bytes:
        raise Problem(413, "file-too-large", "Tệp quá lớn", "File too large",
                      detail=f"A file may be at most {settings.attachment_max_bytes} bytes.")
    attachment = await attachments.upload(
        session, _store(request), caller=access.principal, tenant=access.tenant,
        submission_id=submission_id, field=field, filename=filename, chunks=request.stream(),
        max_bytes=settings.attachment_max_bytes)
    return _attachment_out(attachment)


@router.get("/submissions/{submission_id}/attachments", response_model=list[AttachmentOut])
async def list_attachments(access: SubmissionsRead, submission_id: uuid.UUID,
                           session: ScopedSession) -> list[AttachmentOut]:
    rows, _version, _owner = await attachments.of_submission(session, access.tenant,
                                                             submission_id)
    return [_attachment_out(a) for a in rows]


@router.get("/submissions/{submission_id}/attachments/{attachment_id}",
            response_class=StreamingResponse,
            summary="Download a file (needs the personal-data permission of its field)")
async def download_attachment(request: Request, access: SubmissionsRead,
                              submission_id: uuid.UUID, attachment_id: uuid.UUID,
                              session: ScopedSession) -> StreamingResponse:
    attachment, chunks = await attachments.open_file(
        session, _store(request), caller=access.principal, tenant=access.tenant,
        submission_id=submission_id, attachment_id=attachment_id)
    digest = base64.b64encode(bytes.fromhex(attachment.sha256)).decode()
    return StreamingResponse(chunks, media_type=attachment.media_type, headers={
        "Content-Length": str(attachment.size_bytes),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.filename)}",
        "X-Content-Type-Options": "nosniff",
        "Repr-Digest": f"sha-256=:{digest}:",
        "Cache-Control": "private, no-store"})


@router.delete("/submissions/{submission_id}/attachments/{attachment_id}", status_code=204,
               summary="Remove a file from a draft")
async def delete_attachment(request: Request, access: SubmissionsCreate,
                            submission_id: uuid.UUID, attachment_id: uuid.UUID,
                            session: ScopedSession) -> Response:
    key = await attachments.remove(session, caller=access.principal, tenant=access.tenant,
                                   submission_id=submission_id, attachment_id=attachment_id)
    return Response(status_code=204, background=_delete_files(request, [key]))

