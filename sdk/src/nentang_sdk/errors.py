"""Exceptions: one class per problem+json status (RFC 9457), plus transport failures.

Every error the service answers with is an :class:`APIError` carrying the problem document:
``code`` (stable, machine-readable), ``title``, ``detail`` and, for validation failures, the
offending fields as :class:`FieldError` items with a JSON Pointer into the request body or the
name of the query, path or header parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from nentang_sdk._retries import retry_after_seconds


class NentangError(Exception):
    """Base class of everything this SDK raises."""


class TransportError(NentangError):
    """The service could not be reached (after the retries allowed)."""


class WebhookVerificationError(NentangError):
    """A webhook or event delivery failed signature verification: do not trust its body."""


@dataclass(frozen=True)
class FieldError:
    """One offending field: ``pointer`` (JSON Pointer into the body) or ``parameter``."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    location: str | None = None

    @classmethod
    def from_problem(cls, item: Mapping[str, Any]) -> FieldError:
        return cls(detail=str(item.get("detail", "")), pointer=item.get("pointer"),
                   parameter=item.get("parameter"), location=item.get("in"))

    def __str__(self) -> str:
        return f"{self.pointer or self.parameter or '?'}: {self.detail}"


class APIError(NentangError):
    """The service answered with an error status."""

    status: int

    def __init__(self, response: httpx.Response, problem: Mapping[str, Any]) -> None:
        self.response = response
        self.status = response.status_code
        self.problem: dict[str, Any] = dict(problem)
        self.code: str = str(problem.get("code") or "")
        self.title: str = str(problem.get("title") or response.reason_phrase)
        self.detail: str | None = problem.get("detail")
        self.errors: list[FieldError] = [
            FieldError.from_problem(e) for e in problem.get("errors") or []
            if isinstance(e, Mapping)]
        self.request_id: str | None = response.headers.get("x-request-id")
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.code or self.title}"
        if self.detail:
            text += f": {self.detail}"
        if self.errors:
            text += " [" + "; ".join(str(e) for e in self.errors) + "]"
        return text


class BadRequestError(APIError):
    """400: the request is malformed (bad header, bad idempotency key)."""


class AuthenticationError(APIError):
    """401: no valid credentials (the SDK has already tried a fresh token once)."""


class PermissionDeniedError(APIError):
    """403: the caller's roles do not allow this here."""


class NotFoundError(APIError):
    """404: nothing of that name is visible to the caller (another unit's data looks absent)."""


class ConflictError(APIError):
    """409: the request clashes with the current state (duplicate code, wrong case state)."""


class GoneError(APIError):
    """410: the thing existed and is gone for good."""


class PreconditionFailedError(APIError):
    """412: someone changed the resource since you read it (for a case: another official acted
    first). Read it again, decide again, and retry with the new ETag."""


class PayloadTooLargeError(APIError):
    """413: the body or upload is over the service's limit."""


class PreconditionRequiredError(APIError):
    """428: the request needs ``If-Match``."""


class ValidationError(APIError):
    """422: the input is invalid; ``errors`` names each offending field by JSON Pointer."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is how many seconds to wait."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.response.headers.get("retry-after"))


class ServerError(APIError):
    """5xx: the service failed (already retried with backoff where that was safe)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 410: GoneError, 412: PreconditionFailedError,
    413: PayloadTooLargeError, 422: ValidationError, 428: PreconditionRequiredError,
    429: RateLimitError,
}


def error_for(response: httpx.Response) -> APIError:
    """The exception for an error response, its problem document parsed when there is one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {
        "title": response.reason_phrase, "detail": response.text[:500] or None}
    if "code" not in problem and "error" in problem:
        # OAuth endpoints answer RFC 6749 errors: {"error": ..., "error_description": ...}.
        problem = {"code": problem["error"], "detail": problem.get("error_description"),
                   **problem}
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(response, problem)


class CaseChangedError(PreconditionFailedError):
    """Another official acted on the case since you read it; nothing was done. Read the case
    again (``client.cases.get``), decide again, and act on the fresh copy."""

    def _message(self) -> str:
        return ("412 case-changed: someone else acted on this case since you read it; "
                "read it again and decide again" + (f" ({self.detail})" if self.detail else ""))
