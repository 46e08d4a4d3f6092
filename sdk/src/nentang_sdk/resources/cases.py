"""Cases (one per submitted application, moving through its workflow) and the caller's own
work: tasks across units and delegations."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from nentang_sdk._core import Call, M, Resource, Steps, body, flow, op, paged, parse_answer
from nentang_sdk.errors import CaseChangedError, PreconditionFailedError
from nentang_sdk.models import Case, CaseSummary, Delegation, History, Signature, Task
from nentang_sdk.resources._types import ID

CASE = "GET /api/v1/tenants/{tenant}/cases/{case_id}"


class Cases(Resource[M]):
    @paged("GET /api/v1/tenants/{tenant}/cases")
    def list(self, tenant: str, /, *, status: str | None = None, workflow: str | None = None,
             state: str | None = None, limit: int | None = None) -> Call[CaseSummary]:
        """Cases of this unit, most recently changed first; filter by ``status`` ("open",
        "closed"), ``workflow`` key or ``state``."""
        return Call(CaseSummary, tenant, params={"status": status, "workflow": workflow,
                                                 "state": state, "limit": limit})

    @op(CASE)
    def get(self, tenant: str, case_id: ID, /) -> Call[Case]:
        """The case with its data (personal fields masked unless you may see them), the
        actions you may take now, and its ``etag``."""
        return Call(Case, tenant, case_id)

    @op("GET /api/v1/tenants/{tenant}/cases/{case_id}/history")
    def history(self, tenant: str, case_id: ID, /) -> Call[builtins.list[History]]:
        return Call(builtins.list[History], tenant, case_id)

    @flow("POST /api/v1/tenants/{tenant}/cases/{case_id}/actions/{action}")
    def act(self, tenant: str, case: Case | ID, action: str, /, *,
            fields: Mapping[str, Any] | None = None, comment: str | None = None,
            seat: str | None = None) -> Steps[Case | Signature]:
        """Take ``action`` on a case, conditionally on the version you decided on.

        Pass the :class:`Case` you read: its ETag goes in ``If-Match``, so if another official
        acted since, nothing happens and :class:`~nentang_sdk.errors.CaseChangedError` is
        raised. Given only an ID, the case is read first and its current ETag used.

        Returns the updated case, or, for an action that needs a digital signature, the
        pending :class:`Signature` (the case moves once the signature arrives).
        """
        if isinstance(case, Case):
            case_id, etag = case.id, case.etag
        else:
            current: Case = yield Call(Case, tenant, case, route=CASE)
            case_id, etag = current.id, current.etag
        try:
            answer: httpx.Response = yield Call(
                httpx.Response, tenant, case_id, action, expect=(200, 202),
                json=body(fields=dict(fields) if fields is not None else None, comment=comment,
                          seat=seat),
                headers={"If-Match": etag})
        except PreconditionFailedError as error:
            raise CaseChangedError(error.response, error.problem) from error
        if answer.status_code == 202:
            pending: Signature = parse_answer(Signature, answer)
            return pending
        updated: Case = parse_answer(Case, answer)
        return updated

    @op("POST /api/v1/tenants/{tenant}/cases/{case_id}/claim")
    def claim(self, tenant: str, case_id: ID, /) -> Call[Case]:
        """Take an unassigned case from your role's queue."""
        return Call(Case, tenant, case_id)

    @op("POST /api/v1/tenants/{tenant}/cases/{case_id}/release")
    def release(self, tenant: str, case_id: ID, /) -> Call[Case]:
        """Put a case you hold back in the queue."""
        return Call(Case, tenant, case_id)

    @op("POST /api/v1/tenants/{tenant}/cases/{case_id}/assign")
    def assign(self, tenant: str, case_id: ID, /, *, assignee: ID) -> Call[Case]:
        """Give a case to a user or API client (supervisors)."""
        return Call(Case, tenant, case_id, json={"assignee": str(assignee)})


class Tasks(Resource[M]):
    @paged("GET /api/v1/me/tasks")
    def list(self, *, tenant: str | None = None, workflow: str | None = None,
             sla: str | None = None, limit: int | None = None) -> Call[Task]:
        """The caller's inbox across every unit it works in, most urgent first; ``sla`` is
        "overdue", "due_soon", "on_time" or "paused"."""
        return Call(Task, params={"tenant": tenant, "workflow": workflow, "sla": sla,
                                  "limit": limit})

    @op("GET /api/v1/me/delegations")
    def delegations(self) -> Call[builtins.list[Delegation]]:
        """Delegations given by or to the caller."""
        return Call(builtins.list[Delegation])

    @op("POST /api/v1/me/delegations")
    def delegate(self, *, delegate: ID, starts_at: datetime, ends_at: datetime,
                 reason: str | None = None) -> Call[Delegation]:
        """Let a colleague act on your tasks between two moments (leave, travel)."""
        return Call(Delegation, json=body(delegate=str(delegate), starts_at=starts_at.isoformat(),
                                          ends_at=ends_at.isoformat(), reason=reason))

    @op("POST /api/v1/me/delegations/{delegation_id}/end")
    def end_delegation(self, delegation_id: ID, /) -> Call[Delegation]:
        return Call(Delegation, delegation_id)
