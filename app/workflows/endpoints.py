"""Workflow definitions under ``/api/v1/tenants/{tenant}/workflows``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from app.core.problems import Problem, negotiate_language
from app.definitions.endpoints import add_definition_routes
from app.definitions.lifecycle import field_problem
from app.forms import service as forms
from app.forms import submissions
from app.forms.schemas import FieldErrorOut
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access, needs
from app.identity.permissions import Permission
from app.workflows import diagram as diagrams
from app.workflows import service
from app.workflows.engine import Simulation
from app.workflows.schemas import (
    Refusal,
    SimulatedTransition,
    SimulateIn,
    SimulateOut,
    WorkflowDiff,
    WorkflowOut,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["workflows"])
WorkflowsRead = Annotated[Access, needs(Permission.WORKFLOWS_READ)]
WorkflowsWrite = Annotated[Access, needs(Permission.WORKFLOWS_WRITE)]

add_definition_routes(router, lifecycle=service.WORKFLOWS, plural="workflows",
                      read=WorkflowsRead, write=WorkflowsWrite, out=WorkflowOut,
                      publish=service.publish, diff=service.diff, diff_model=WorkflowDiff)


def _simulation_out(number: int, body: SimulateIn, result: Simulation,
                    problems: list[FieldErrorOut]) -> SimulateOut:
    refused = None
    if result.refused is not None:
        index, refusal = result.refused
        refused = Refusal(step=index, status=refusal.status, code=refusal.code,
                          detail=refusal.en, detail_vi=refusal.vi,
                          errors=[FieldErrorOut(**e.as_dict()) for e in refusal.errors])
    return SimulateOut(
        version=number, path=result.path, state=result.state, refused=refused,
        problems=problems,
        steps=[SimulatedTransition(
            action=o.action, actor=step.actor.id, source=o.source,
            target=o.target, moved=o.moved, vote=o.vote.vote if o.vote else None,
            seat=o.vote.role if o.vote else None, changes=dict(o.changes),
            hooks=[{"when": h.when, "state": h.state, **h.hook} for h in o.hooks])
            for o, step in zip(result.outcomes, body.steps, strict=False)])


@router.post("/workflows/{key}/simulate", response_model=SimulateOut,
             response_model_by_alias=True,
             summary="Run a version against sample data and a sequence of actions; nothing "
             "is stored")
async def simulate(access: WorkflowsRead, key: str, body: SimulateIn,
                   session: ScopedSession) -> SimulateOut:
    head = await service.WORKFLOWS.resolve(session, access.tenant, key)
    version = await service.WORKFLOWS.version_to_check(session, head, access.tenant,
                                                       body.version)
    document = version.definition
    try:
        form = await forms.usable_version(session, access.tenant, document["form"], None)
    except Problem:
        form = None
    if form is not None:
        errors = submissions.field_errors(form, body.data)
        if errors:
            raise Problem(422, "invalid-sample", "Dữ liệu mẫu không hợp lệ",
                          "Invalid sample data", detail=f"The sample data does not fit form "
                          f"'{document['form']}' version {form.number}; see errors.",
                          errors=[{**e.as_dict(), "pointer": "/data" + e.pointer}
                                  for e in errors])
    problems = await service.problems_at(session, access.tenant, document)
    blocking = [e for e in problems if e.keyword in service.UNRUNNABLE]
    if blocking:
        raise field_problem(422, "workflow-not-runnable", "Quy trình chưa chạy thử được",
                            "Workflow cannot run", "The workflow's states and actions do not "
                            "form a process yet; fix these first.", blocking)
    result = service.simulate(document, body.data, [s.model_dump() for s in body.steps])
    return _simulation_out(version.number, body, result,
                           [FieldErrorOut(**e.as_dict()) for e in problems])


@router.post("/workflows/diagram", response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}},
                              "description": "The diagram (SVG)."}},
             summary="Draw a definition, even an unfinished draft, as an SVG diagram; nothing "
             "is stored")
async def diagram(access: WorkflowsRead, request: Request,
                  definition: Annotated[dict[str, Any], Body(
                      description="A workflow definition (workflows/workflow.schema.json), "
                      "possibly unfinished.")]) -> Response:
    try:
        svg = diagrams.render(definition, negotiate_language(request))
    except diagrams.DiagramError as exc:
        raise field_problem(422, "invalid-diagram", "Không vẽ được sơ đồ",
                            "Cannot draw the diagram", "The body is not a list of states "
                            "and actions; see errors.", exc.errors) from None
    return Response(svg, media_type="image/svg+xml", headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'"})
