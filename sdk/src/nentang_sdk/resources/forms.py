"""eForms (versioned JSON Schema definitions, inherited down the tree) and the submissions made
with them, with their attachments."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from nentang_sdk._core import NO_CONTENT, Call, Download, M, Resource, body, op, paged
from nentang_sdk.models import (
    Attachment,
    Form,
    PrefillResult,
    PublishResult,
    Submission,
    ValidationResult,
    Version,
    VersionDiff,
)
from nentang_sdk.resources._types import ID


def _field_params(filters: Mapping[str, str] | None) -> dict[str, str]:
    """``{"dia_chi.tinh": "01"}`` → ``{"data.dia_chi.tinh": "01"}`` (the service's field
    filters)."""
    return {f"data.{name}": value for name, value in (filters or {}).items()}


class Forms(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/forms")
    def list(self, tenant: str, /, *, limit: int | None = None) -> Call[Form]:
        """Forms usable here: the unit's own and, per key, the nearest ancestor's (without
        their definitions)."""
        return Call(Form, tenant, params={"limit": limit})

    @op("GET /api/v1/tenants/{tenant}/forms/{key}")
    def get(self, tenant: str, key: str, /) -> Call[Form]:
        """The form as seen from ``tenant``, with its current definition (or its draft's,
        before the first publication)."""
        return Call(Form, tenant, key)

    @op("POST /api/v1/tenants/{tenant}/forms")
    def create(self, tenant: str, /, *, definition: Mapping[str, Any]) -> Call[Form]:
        """Create a form from its definition (``kind``, ``key``, ``title``, ``schema``,
        ``ui_schema``...); version 1 is a draft until :meth:`publish`. Using an ancestor's
        key makes a variant of the ancestor's form."""
        return Call(Form, tenant, json=dict(definition))

    @op("GET /api/v1/tenants/{tenant}/forms/{key}/versions")
    def versions(self, tenant: str, key: str, /) -> Call[builtins.list[Version]]:
        """The form's versions, newest first (without their definitions)."""
        return Call(builtins.list[Version], tenant, key)

    @op("POST /api/v1/tenants/{tenant}/forms/{key}/versions")
    def create_version(self, tenant: str, key: str, /, *,
                       definition: Mapping[str, Any] | None = None) -> Call[Version]:
        """Start the next version as a draft: ``definition``, or a copy of the current one."""
        return Call(Version, tenant, key,
                    json=dict(definition) if definition is not None else None)

    @op("GET /api/v1/tenants/{tenant}/forms/{key}/versions/{number}")
    def version(self, tenant: str, key: str, number: int, /) -> Call[Version]:
        return Call(Version, tenant, key, number)

    @op("PUT /api/v1/tenants/{tenant}/forms/{key}/versions/{number}")
    def update_version(self, tenant: str, key: str, number: int, /, *,
                       definition: Mapping[str, Any]) -> Call[Version]:
        """Replace a draft's definition (a published version is immutable: ConflictError)."""
        return Call(Version, tenant, key, number, json=dict(definition))

    @op("DELETE /api/v1/tenants/{tenant}/forms/{key}/versions/{number}")
    def discard_version(self, tenant: str, key: str, number: int, /) -> Call[None]:
        """Discard a draft (a form never published goes with it)."""
        return Call(NO_CONTENT, tenant, key, number)

    @op("POST /api/v1/tenants/{tenant}/forms/{key}/versions/{number}/publish")
    def publish(self, tenant: str, key: str, number: int, /) -> Call[PublishResult]:
        """Publish a draft: it becomes immutable and the form's current version. The answer
        counts the variants below that are now flagged for review."""
        return Call(PublishResult, tenant, key, number)

    @op("POST /api/v1/tenants/{tenant}/forms/{key}/versions/{number}/deprecate")
    def deprecate(self, tenant: str, key: str, number: int, /) -> Call[Version]:
        """Take a published version out of use (submissions already made keep it)."""
        return Call(Version, tenant, key, number)

    @op("GET /api/v1/tenants/{tenant}/forms/{key}/versions/{a}/diff/{b}")
    def diff(self, tenant: str, key: str, a: int, b: int, /) -> Call[VersionDiff]:
        """What changed from version ``a`` to version ``b``: a JSON Patch and the fields
        added, removed and changed."""
        return Call(VersionDiff, tenant, key, a, b)

    @op("POST /api/v1/tenants/{tenant}/forms/{key}/validate")
    def validate(self, tenant: str, key: str, /, *, data: Mapping[str, Any],
                 version: int | None = None,
                 definition: Mapping[str, Any] | None = None) -> Call[ValidationResult]:
        """Check ``data`` against a version (default: the draft, else the current one), or
        against an unsaved ``definition`` (then ``version`` in the answer is None), without
        storing anything; every problem comes back with its JSON Pointer."""
        return Call(ValidationResult, tenant, key, json=body(
            data=dict(data), version=version,
            definition=dict(definition) if definition is not None else None))

    @op("POST /api/v1/tenants/{tenant}/forms/{key}/prefill")
    def prefill(self, tenant: str, key: str, /, *, field: str,
                value: str) -> Call[PrefillResult]:
        """Ask the remote service bound to ``field`` (a lookup) for the values that prefill the
        form, e.g. from a citizen-ID number. A service that cannot answer now is an answer
        (``available`` False: fill in by hand), not an error."""
        return Call(PrefillResult, tenant, key, json={"field": field, "value": value})


class Submissions(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/submissions")
    def list(self, tenant: str, /, *, form: str | None = None, status: str | None = None,
             q: str | None = None, subtree: bool | None = None,
             filters: Mapping[str, str] | None = None,
             limit: int | None = None) -> Call[Submission]:
        """Submissions here and below (``subtree=False``: here only), newest first. Filter by
        ``form`` key, ``status`` ("draft", "submitted"), words ``q`` in non-personal fields,
        and field values: ``filters={"loai_chu_the": "ca_nhan", "dia_chi.tinh": "01"}``."""
        return Call(Submission, tenant, params={
            "form": form, "status": status, "q": q, "subtree": subtree, "limit": limit,
            **_field_params(filters)})

    @op("GET /api/v1/tenants/{tenant}/submissions/export")
    def export(self, tenant: str, /, *, form: str, format: str | None = None,
               status: str | None = None, q: str | None = None, subtree: bool | None = None,
               filters: Mapping[str, str] | None = None) -> Call[Download]:
        """A form's submissions here and below as a CSV (default) or ``format="xlsx"`` file,
        personal data masked as in lists; same filters as :meth:`list`."""
        return Call(Download, tenant, params={
            "form": form, "format": format, "status": status, "q": q, "subtree": subtree,
            **_field_params(filters)})

    @op("GET /api/v1/tenants/{tenant}/submissions/{submission_id}")
    def get(self, tenant: str, submission_id: ID, /) -> Call[Submission]:
        """A submission (personal fields masked unless you may see them) and the case it
        opened, if any."""
        return Call(Submission, tenant, submission_id)

    @op("POST /api/v1/tenants/{tenant}/submissions")
    def create(self, tenant: str, /, *, form: str, data: Mapping[str, Any],
               version: int | None = None, status: str | None = None,
               idempotency_key: str | None = None) -> Call[Submission]:
        """Submit ``data`` with a form (pinned to its current version, or ``version``);
        ``status="draft"`` stores a draft that is checked in full only when submitted. A
        submission of a form bound to a workflow opens a case. Safe to retry: the same
        idempotency key is sent on every attempt."""
        return Call(Submission, tenant,
                    json=body(form=form, data=dict(data), version=version, status=status),
                    create=True, idempotency_key=idempotency_key)

    @op("PATCH /api/v1/tenants/{tenant}/submissions/{submission_id}")
    def update(self, tenant: str, submission_id: ID, /, *,
               data: Mapping[str, Any] | None = None,
               status: str | None = None) -> Call[Submission]:
        """Change a draft's data, or submit it with ``status="submitted"`` (then it is
        validated in full)."""
        return Call(Submission, tenant, submission_id, json=body(
            data=dict(data) if data is not None else None, status=status))

    @op("DELETE /api/v1/tenants/{tenant}/submissions/{submission_id}")
    def delete(self, tenant: str, submission_id: ID, /) -> Call[None]:
        """Delete a draft and its files."""
        return Call(NO_CONTENT, tenant, submission_id)

    @op("GET /api/v1/tenants/{tenant}/submissions/{submission_id}/attachments")
    def attachments(self, tenant: str, submission_id: ID, /
                    ) -> Call[builtins.list[Attachment]]:
        return Call(builtins.list[Attachment], tenant, submission_id)

    @op("POST /api/v1/tenants/{tenant}/submissions/{submission_id}/attachments")
    def upload_attachment(self, tenant: str, submission_id: ID, /, *, field: str,
                          filename: str, content: bytes,
                          content_type: str = "application/octet-stream") -> Call[Attachment]:
        """Attach a file to ``field`` of a draft. The service decides the file's type from its
        content (not its name) and refuses types it does not allow."""
        return Call(Attachment, tenant, submission_id,
                    params={"field": field, "filename": filename}, content=content,
                    headers={"Content-Type": content_type})

    @op("GET /api/v1/tenants/{tenant}/submissions/{submission_id}/attachments/{attachment_id}")
    def download_attachment(self, tenant: str, submission_id: ID, attachment_id: ID, /
                            ) -> Call[Download]:
        """The file's bytes (a personal-data field's file needs that permission)."""
        return Call(Download, tenant, submission_id, attachment_id)

    @op("DELETE /api/v1/tenants/{tenant}/submissions/{submission_id}/attachments/{attachment_id}")
    def delete_attachment(self, tenant: str, submission_id: ID, attachment_id: ID, /
                          ) -> Call[None]:
        """Remove a file from a draft."""
        return Call(NO_CONTENT, tenant, submission_id, attachment_id)
