"""Self-service reports under ``/api/v1/tenants/{tenant}``: save, list, run and export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from starlette.responses import StreamingResponse

from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.forms.exports import MEDIA_TYPES, ExportFormat
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.reports import exports, service
from app.reports.models import Report
from app.reports.schemas import ReportOut, ResultOut, RunIn

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["reports"])
Definition = Annotated[dict[str, Any], Body(description="A report definition "
                                            "(reports/report.schema.json).")]

ReportsRead = Annotated[Access, needs(Permission.REPORTS_READ)]
ReportsWrite = Annotated[Access, needs(Permission.REPORTS_WRITE)]


def _report_out(report: Report, *, with_definition: bool = True) -> ReportOut:
    return ReportOut(key=report.key, form=report.form_key, title=report.definition["title"],
                     created_by=report.created_by, created_at=report.created_at,
                     updated_at=report.updated_at,
                     definition=report.definition if with_definition else None)


def _result_out(result: service.Result) -> ResultOut:
    return ResultOut(columns=result.columns, rows=result.rows,
                     generated_at=result.generated_at, tenant=result.tenant,
                     report=result.report, rollup=result.rollup,
                     min_group_size=result.min_group_size, truncated=result.truncated)


@router.post("/reports", status_code=201, response_model=ReportOut,
             summary="Save a report definition (409 if the key is taken here)")
async def create_report(access: ReportsWrite, definition: Definition,
                        session: ScopedSession) -> ReportOut:
    return _report_out(await service.create(session, caller=access.principal,
                                            tenant=access.tenant, definition=definition))


@router.get("/reports", response_model=Page[ReportOut],
            summary="The reports saved at this tenant, by key")
async def list_reports(access: ReportsRead, session: ScopedSession, cursor: str | None = None,
                       limit: Limit = DEFAULT_LIMIT) -> Page[ReportOut]:
    after = decode_cursor(cursor, str)
    rows = await service.list_page(session, access.tenant, after=after[0] if after else None,
                                   limit=limit + 1)
    page, next_cursor = split_page(rows, limit, lambda r: [r.key])
    return Page[ReportOut](items=[_report_out(r, with_definition=False) for r in page],
                           next_cursor=next_cursor)


@router.post("/reports/run", response_model=ResultOut,
             summary="Run a definition without saving it (the report builder's preview)")
async def preview_report(access: ReportsWrite, definition: Definition,
                         session: ScopedSession) -> ResultOut:
    return _result_out(await service.run(session, caller=access.principal,
                                         tenant=access.tenant, definition=definition))


@router.get("/reports/{key}", response_model=ReportOut)
async def read_report(access: ReportsRead, key: str, session: ScopedSession) -> ReportOut:
    return _report_out(await service.get(session, access.tenant, key))


@router.put("/reports/{key}", response_model=ReportOut,
            summary="Replace a saved report's definition (its key stays)")
async def replace_report(access: ReportsWrite, key: str, definition: Definition,
                         session: ScopedSession) -> ReportOut:
    return _report_out(await service.replace(session, caller=access.principal,
                                             tenant=access.tenant, key=key,
                                             definition=definition))


@router.delete("/reports/{key}", status_code=204)
async def delete_report(access: ReportsWrite, key: str, session: ScopedSession) -> Response:
    await service.delete(session, caller=access.principal, tenant=access.tenant, key=key)
    return Response(status_code=204)


@router.post("/reports/{key}/run", response_model=ResultOut,
             summary="Run a saved report over this tenant and every unit below it")
async def run_report(access: ReportsRead, key: str, session: ScopedSession,
                     body: Annotated[RunIn | None, Body()] = None) -> ResultOut:
    report = await service.get(session, access.tenant, key)
    return _result_out(await service.run(
        session, caller=access.principal, tenant=access.tenant, definition=report.definition,
        rollup=body.rollup if body else None, report=report.key))


@router.get("/reports/{key}/export", response_class=StreamingResponse,
            summary="Run a saved report and download the result as CSV or XLSX",
            responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}})
async def export_report(access: ReportsRead, key: str, session: ScopedSession,
                        format: Annotated[ExportFormat, Query()] = ExportFormat.CSV,
                        ) -> StreamingResponse:
    report = await service.get(session, access.tenant, key)
    result = await service.run(session, caller=access.principal, tenant=access.tenant,
                               definition=report.definition, report=report.key)
    await service.record_export(session, caller=access.principal, report=report,
                                file_format=format.value)
    stamp = result.generated_at.strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="{report.key}-{result.tenant}-'
                                      f'{stamp}.{format.value}"',
               "Cache-Control": "private, no-store"}
    if format is ExportFormat.XLSX:
        chunks, size = await exports.xlsx_chunks(result)
        headers["Content-Length"] = str(size)
    else:
        chunks = exports.csv_chunks(result)
    return StreamingResponse(chunks, headers=headers, media_type=MEDIA_TYPES[format])
