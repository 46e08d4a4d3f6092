"""The workflow lifecycle (:mod:`app.definitions.lifecycle`) bound to the workflow tables, plus
what only workflows have: publication checked against the roles and forms usable at the
tenant, one workflow per form, simulation, and the diff by state and action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonpatch
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import Problem
from app.definitions.lifecycle import Lifecycle, Parent, Words, field_problem, variant_problem
from app.definitions.models import VersionStatus
from app.forms import service as forms
from app.forms.definitions import FieldError, declared_fields
from app.identity import roles
from app.identity.callers import Caller
from app.tenancy.models import Tenant
from app.workflows import definitions, engine
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.variants import check_variant

WORKFLOWS: Lifecycle[Workflow, WorkflowVersion] = Lifecycle(
    head=Workflow, version=WorkflowVersion, head_column=WorkflowVersion.workflow_id,
    words=Words(kind="workflow", en="workflow", vi="quy trình"),
    check=definitions.check_shape)


async def context_at(session: AsyncSession, tenant: Tenant,
                     document: dict[str, Any]) -> definitions.Context:
    """The roles usable at ``tenant`` and the fields of the form the definition binds."""
    usable = frozenset(r.key for r in await roles.usable_at(session, tenant))
    try:
        form = await forms.usable_version(session, tenant, document["form"], None)
    except Problem:
        return definitions.Context(roles=usable, form_fields=None)
    return definitions.Context(roles=usable, form_fields=declared_fields(form.definition),
                               form_schema=form.definition["schema"])


async def problems_at(session: AsyncSession, tenant: Tenant,
                      document: dict[str, Any]) -> list[FieldError]:
    return definitions.meaning_problems(document, await context_at(session, tenant, document))


async def _publishable(session: AsyncSession, tenant: Tenant, document: dict[str, Any],
                       parent: Parent[Any, Any] | None) -> None:
    problems = await problems_at(session, tenant, document)
    if not problems and parent is not None:
        violations = check_variant(parent.version.definition, document)
        if violations:
            raise variant_problem(
                "quy trình", "workflow", document["key"], parent, "A variant may add local "
                "steps and narrow who acts, but keeps every state, action, check, signature "
                "and time limit of the parent.", violations)
    if problems:
        raise field_problem(
            422, "workflow-not-publishable", "Quy trình chưa thể ban hành",
            "Workflow cannot be published",
            f"Workflow '{document['key']}' has problems that would strand or misroute cases; "
            "each error names the state or action at fault.", problems)
    bound = (await session.execute(
        select(Workflow.key)
        .join(WorkflowVersion, and_(WorkflowVersion.tenant_id == Workflow.tenant_id,
                                    WorkflowVersion.workflow_id == Workflow.id,
                                    WorkflowVersion.number == Workflow.latest_version))
        .where(Workflow.tenant_id == tenant.id, Workflow.form_key == document["form"],
               Workflow.key != document["key"],
               WorkflowVersion.status == VersionStatus.PUBLISHED.value))).scalars().first()
    if bound is not None:
        raise Problem(409, "form-already-bound", "Biểu mẫu đã gắn với quy trình khác",
                      "Form already bound", detail=f"Form '{document['form']}' already opens "
                      f"cases of workflow '{bound}' here; deprecate that workflow's current "
                      "version first.", errors=[{"pointer": "/form", "detail": f"bound to "
                                                 f"'{bound}'"}])


async def publish(session: AsyncSession, *, caller: Caller, tenant: Tenant, key: str,
                  number: int) -> tuple[WorkflowVersion, int]:
    """Publish a draft once every publish-time check passes."""
    published, flagged = await WORKFLOWS.publish(session, caller=caller, tenant=tenant,
                                                 key=key, number=number, check=_publishable)
    head = await WORKFLOWS.own(session, tenant, key)
    head.form_key = published.definition["form"]
    await session.flush()
    return published, flagged


# ---- simulation ----------------------------------------------------------------------------

# Problems that leave no process to run: a simulation needs a start and real states.
UNRUNNABLE = frozenset({"start", "unknown-state"})


def _actor(step: dict[str, Any]) -> engine.Actor:
    actor = step["actor"]
    held = engine.jurisdictions_up_to(actor.get("at", "case"))
    return engine.Actor(id=actor["id"], roles={r: held for r in actor.get("roles", [])},
                        is_applicant="applicant" in actor.get("roles", []),
                        is_system="system" in actor.get("roles", []))


def simulate(document: dict[str, Any], data: dict[str, Any],
             steps: Sequence[dict[str, Any]]) -> engine.Simulation:
    """Run ``steps`` (already shape-checked) against a fresh case of ``document``."""
    workflow = definitions.compile_workflow(document)
    return engine.simulate(workflow, data, [
        engine.Step(_actor(s), engine.Request(
            s["action"], fields=s.get("fields", {}), comment=s.get("comment"),
            signed=s.get("signed", False), seat=s.get("seat")))
        for s in steps])


# ---- comparing -----------------------------------------------------------------------------


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    return {"added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(n for n in set(before) & set(after) if before[n] != after[n])}


def diff(a: WorkflowVersion, b: WorkflowVersion) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: states and actions by name, and an RFC 6902 patch."""
    return {
        "from": a.number, "to": b.number, "same": a.digest == b.digest,
        "states": _changes(_by_name(a.definition["states"]), _by_name(b.definition["states"])),
        "actions": _changes(_by_name(a.definition["actions"]),
                            _by_name(b.definition["actions"])),
        "patch": jsonpatch.make_patch(a.definition, b.definition).patch,
    }
