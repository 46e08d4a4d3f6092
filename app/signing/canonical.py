"""What a signature at a workflow step covers, as bytes that never vary.

The signed document names the case, the tenant, the action and the move it makes, the form
and workflow versions, the case data as the action leaves it (the applicant's data and every
action's fields), the SHA-256 of each attached file, the comment, who asked for the
signature and when. It is serialised by the JSON Canonicalization Scheme (RFC 8785), so the
same document always gives the same bytes and the same digest, on any machine; changing any
byte of it, or of an attached file, changes the digest and breaks the signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785

DIGEST_ALGORITHM = "sha256"
MEDIA_TYPE = "application/vnd.nentang.signed-step+json"


@dataclass(frozen=True)
class AttachedFile:
    field: str
    filename: str
    sha256: str


class NotSignable(ValueError):
    """The data holds a value canonical JSON cannot carry exactly (an integer beyond ±2^53,
    say), so no digest could be trusted to mean one thing."""


def signed_document(*, case_id: str, tenant: str, action: str, from_state: str,
                    to_state: str | None, form: tuple[str, int], workflow: tuple[str, int],
                    data: Mapping[str, Any], attachments: Sequence[AttachedFile],
                    comment: str | None, requested_by: str,
                    requested_at: datetime) -> dict[str, Any]:
    return {
        "type": "nentang.signed-step/1",
        "case": case_id,
        "tenant": tenant,
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "form": {"key": form[0], "version": form[1]},
        "workflow": {"key": workflow[0], "version": workflow[1]},
        "data": dict(data),
        "attachments": [{"field": a.field, "filename": a.filename, "sha256": a.sha256}
                        for a in sorted(attachments, key=lambda a: (a.field, a.sha256))],
        "comment": comment,
        "requested_by": requested_by,
        "requested_at": requested_at.isoformat(),
    }


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    try:
        return rfc8785.dumps(dict(document))
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise NotSignable(str(exc)) from exc


def digest(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()
