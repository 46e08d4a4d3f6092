"""RFC 9457 problem details for every error the service returns.

Each problem has a stable ``code`` (also the last segment of ``type``), an HTTP status, and a
title in Vietnamese and English chosen by ``Accept-Language`` (Vietnamese by default).
Validation errors list each offending field in ``errors`` with a JSON Pointer into the
request body (``pointer``) or the name of the query/path/header parameter (``parameter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from app.core.requests import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(eq=False)
class Problem(Exception):
    status: int
    code: str
    title_vi: str
    title_en: str
    detail: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, lang: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title_en if lang == "en" else self.title_vi,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            doc["detail"] = self.detail
        if self.errors:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc


def not_found(what: str, key: str) -> Problem:
    return Problem(404, f"{what}-not-found", f"Không tìm thấy {what}", f"{what} not found",
                   detail=f"No {what} '{key}' is visible to the caller.")


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Không có quyền thực hiện", "Forbidden", detail=detail)


def conflict(code: str, detail: str) -> Problem:
    return Problem(409, code, "Xung đột dữ liệu", "Conflict", detail=detail)


def precondition_failed(detail: str) -> Problem:
    return Problem(412, "version-mismatch", "Dữ liệu đã bị thay đổi", "Precondition failed",
                   detail=detail)


def invalid(pointer: str, detail: str, code: str = "validation-failed") -> Problem:
    return Problem(422, code, "Dữ liệu không hợp lệ", "Invalid request", detail=detail,
                   errors=[{"pointer": pointer, "detail": detail}])


def negotiate_language(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    for part in accept.split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("vi"):
            return "vi"
        if tag.startswith("en"):
            return "en"
    return "vi"


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    lang = negotiate_language(request)
    body = problem.body(lang)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    headers = {"Content-Language": lang, **problem.headers}
    return JSONResponse(body, status_code=problem.status, headers=headers,
                        media_type=PROBLEM_MEDIA_TYPE)


def _pointer(loc: tuple[Any, ...]) -> dict[str, str]:
    if loc and loc[0] == "body":
        parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc[1:]]
        return {"pointer": "/" + "/".join(parts) if parts else ""}
    if len(loc) >= 2:
        return {"parameter": str(loc[1]), "in": str(loc[0])}
    return {"pointer": ""}


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = []
    for err in exc.errors():
        entry = _pointer(tuple(err.get("loc", ())))
        entry["detail"] = str(err.get("msg", "invalid"))
        entry["type"] = str(err.get("type", "invalid"))
        errors.append(entry)
    return Problem(422, "validation-failed", "Dữ liệu không hợp lệ", "Invalid request",
                   detail="The request has invalid fields; see errors.", errors=errors)


_STATUS_TITLES_VI = {
    400: "Yêu cầu không hợp lệ",
    401: "Chưa xác thực",
    403: "Không có quyền thực hiện",
    404: "Không tìm thấy",
    405: "Phương thức không được hỗ trợ",
    406: "Không chấp nhận định dạng",
    409: "Xung đột dữ liệu",
    412: "Điều kiện tiên quyết không đúng",
    413: "Yêu cầu quá lớn",
    415: "Định dạng không được hỗ trợ",
    428: "Thiếu điều kiện tiên quyết",
    429: "Quá nhiều yêu cầu",
}


def http_problem(exc: StarletteHTTPException) -> Problem:
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "-").replace("'", "")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    return Problem(exc.status_code, code, _STATUS_TITLES_VI.get(exc.status_code, phrase), phrase,
                   detail=detail, headers=dict(exc.headers or {}))


def install_problem_handlers(app: FastAPI) -> None:
    """Unhandled exceptions are turned into problems by the request-context middleware."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(request, validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(request, http_problem(exc))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
