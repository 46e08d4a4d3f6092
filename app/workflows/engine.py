"""The workflow interpreter: pure functions from (workflow, case, actor, request) to an outcome.

Nothing here touches the database, the clock or the network; the service loads a case, asks
the engine what taking an action means, and stores the outcome (history entry, new state,
outbox events) in one transaction. That keeps every rule (roles and jurisdiction, claims,
guards, required fields and comment, signatures, parallel approval counting) testable on its
own, and lets ``POST .../simulate`` run a definition without storing anything.

Parallel approval. An approval state has seats, each a role; a person fills at most one seat.
With ``n`` seats and ``k`` approvals needed (all: n, any: 1, quorum: q), the case leaves by the
approving action once ``k`` seats approve and by the rejecting action as soon as more than
``n - k`` seats reject, i.e. once approval can no longer be reached; until then each vote is
recorded and the case stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from app.forms.definitions import FieldError, json_pointer, schema_errors
from app.workflows.definitions import (
    APPLICANT,
    JURISDICTIONS,
    SYSTEM,
    Action,
    Jurisdiction,
    State,
    Workflow,
)


@dataclass(frozen=True)
class Actor:
    """Who acts. ``roles`` maps each role the actor holds over the case to the jurisdictions it
    is held at (see :data:`app.workflows.definitions.JURISDICTIONS`)."""

    id: str
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    is_applicant: bool = False
    is_system: bool = False
    # Officials this one stands in for (delegation while absent): their claims count as its.
    acting_for: frozenset[str] = frozenset()

    def is_or_stands_in_for(self, principal: str | None) -> bool:
        return principal is not None and (principal == self.id or principal in self.acting_for)

    def holds(self, role: str, at: str) -> bool:
        if role == APPLICANT:
            return self.is_applicant
        if role == SYSTEM:
            return self.is_system
        return at in self.roles.get(role, frozenset())


def jurisdictions_up_to(at: Jurisdiction) -> frozenset[str]:
    """The jurisdictions a grant held ``at`` covers: itself and every lower one."""
    return frozenset(JURISDICTIONS[: JURISDICTIONS.index(at) + 1])


@dataclass(frozen=True)
class Vote:
    seat: int
    role: str
    actor: str
    vote: Literal["approve", "reject"]


@dataclass(frozen=True)
class Extra:
    """Holders of ``role`` at ``at`` may also act on the case (an escalation or reassignment
    after an SLA breach): while it stays in ``state``, or for its whole life when ``state`` is
    None (a breach of the case's own SLA)."""

    role: str
    at: Jurisdiction
    state: str | None = None


@dataclass(frozen=True)
class Case:
    state: str
    data: Mapping[str, Any]
    votes: tuple[Vote, ...] = ()
    assignee: str | None = None
    extra: tuple[Extra, ...] = ()


@dataclass(frozen=True)
class Request:
    action: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    comment: str | None = None
    signed: bool = False
    seat: str | None = None


@dataclass(frozen=True)
class Hook:
    when: Literal["on_leave", "on_enter"]
    state: str
    hook: Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    case: Case
    action: str
    source: str
    target: str
    moved: bool
    vote: Vote | None
    changes: Mapping[str, Any]
    hooks: tuple[Hook, ...]


class Refused(Exception):
    """The action cannot be taken; ``code`` is stable, ``status`` the HTTP status to answer."""

    def __init__(self, status: int, code: str, en: str, vi: str,
                 errors: Sequence[FieldError] = ()) -> None:
        super().__init__(en)
        self.status, self.code, self.en, self.vi, self.errors = status, code, en, vi, list(errors)


def open_case(workflow: Workflow, data: Mapping[str, Any]) -> tuple[Case, tuple[Hook, ...]]:
    """A new case in the start state, and the start state's entry hooks."""
    start = workflow.states[workflow.start]
    return Case(state=start.name, data=dict(data)), _entering(start)


def _entering(state: State) -> tuple[Hook, ...]:
    return tuple(Hook("on_enter", state.name, h) for h in state.on_enter)


def _leaving(state: State) -> tuple[Hook, ...]:
    return tuple(Hook("on_leave", state.name, h) for h in state.on_leave)


def may_take(action: Action, case: Case, actor: Actor) -> bool:
    """Whether ``actor``'s roles, jurisdiction and any extra eligibility allow ``action``."""
    if any(actor.holds(role, action.at) for role in action.roles):
        return True
    human = any(r not in (APPLICANT, SYSTEM) for r in action.roles)
    return human and action.vote is None and any(actor.holds(e.role, e.at) for e in case.extra)


def _escalated(case: Case, actor: Actor) -> bool:
    return any(actor.holds(e.role, e.at) for e in case.extra)


def available(workflow: Workflow, case: Case, actor: Actor) -> list[Action]:
    """The actions ``actor`` may try now (guards and fields are checked when taken)."""
    state = workflow.states[case.state]
    found = []
    for action in workflow.leaving(case.state):
        if not may_take(action, case, actor):
            continue
        if _needs_claim(state, action, case, actor):
            continue
        if action.vote and (_voted(case, actor) or _seat(state, case, actor, None) is None):
            continue
        found.append(action)
    return found


def _needs_claim(state: State, action: Action, case: Case, actor: Actor) -> bool:
    """In a claim state, only the claimant (or someone the case was escalated to) acts."""
    if state.assignment != "claim" or actor.is_applicant or actor.is_system:
        return False
    if set(action.roles) <= {APPLICANT, SYSTEM}:
        return False
    return not actor.is_or_stands_in_for(case.assignee) and not _escalated(case, actor)


def _voted(case: Case, actor: Actor) -> bool:
    return any(v.actor == actor.id for v in case.votes)


def _seat(state: State, case: Case, actor: Actor, wanted: str | None) -> int | None:
    """The first free seat the actor may fill (of role ``wanted`` if given)."""
    assert state.approval is not None
    taken = {v.seat for v in case.votes}
    for index, role in enumerate(state.approval.seats):
        if index in taken or (wanted is not None and role != wanted):
            continue
        if actor.holds(role, state.approval.at):
            return index
    return None


def _refuse_fields(action: Action, request: Request) -> None:
    errors = [replace(e, pointer="/fields" + e.pointer)
              for e in schema_errors(action.fields_validator, dict(request.fields))]
    if errors:
        raise Refused(422, "fields-invalid", f"The values for action '{action.name}' are "
                      "missing or invalid; see errors.", f"Dữ liệu của thao tác '{action.name}' "
                      "thiếu hoặc không hợp lệ.", sorted(errors, key=lambda e: e.pointer))


def _refuse_comment(action: Action, request: Request) -> None:
    comment = (request.comment or "").strip()
    if action.comment == "required" and not comment:
        raise Refused(422, "comment-required", f"Action '{action.name}' needs a comment.",
                      f"Thao tác '{action.name}' cần có ý kiến.",
                      [FieldError("/comment", "Cần nhập ý kiến.", "A comment is required.",
                                  "required")])
    if action.comment == "none" and comment:
        raise Refused(422, "comment-not-allowed", f"Action '{action.name}' takes no comment.",
                      f"Thao tác '{action.name}' không nhận ý kiến.",
                      [FieldError("/comment", "Thao tác này không nhận ý kiến.",
                                  "This action takes no comment.", "none")])


def _refuse_guard(action: Action, data: Mapping[str, Any]) -> None:
    if action.guard_validator is None or action.guard_validator.is_valid(dict(data)):
        return
    message = action.guard_message or {}
    raise Refused(422, "guard-failed",
                  message.get("en", f"The case does not meet the condition of action "
                              f"'{action.name}'."),
                  message.get("vi", f"Hồ sơ chưa đáp ứng điều kiện của thao tác "
                              f"'{action.name}'."),
                  [FieldError(json_pointer(["data", *e.absolute_path]),
                              "Hồ sơ chưa đáp ứng điều kiện.", "The case data does not meet "
                              "the action's condition.", str(e.validator))
                   for e in action.guard_validator.iter_errors(dict(data))])


def take(workflow: Workflow, case: Case, actor: Actor, request: Request) -> Outcome:
    """Take ``request.action`` on ``case`` as ``actor``; raise :class:`Refused` if it may not
    be taken. Checks run in a fixed order so a refusal names the first thing to fix."""
    action = workflow.actions.get(request.action)
    if action is None:
        raise Refused(404, "unknown-action", f"The workflow has no action '{request.action}'.",
                      f"Quy trình không có thao tác '{request.action}'.")
    state = workflow.states[case.state]
    if case.state not in action.sources:
        raise Refused(409, "not-in-state", f"Action '{action.name}' cannot be taken while the "
                      f"case is in '{case.state}'.", f"Không thể thực hiện '{action.name}' khi "
                      f"hồ sơ đang ở bước '{case.state}'.")
    if not may_take(action, case, actor):
        raise Refused(403, "not-allowed", f"You hold none of the roles that may take "
                      f"'{action.name}' ({', '.join(action.roles)}, at {action.at}).",
                      f"Bạn không có vai trò được thực hiện '{action.name}'.")
    if _needs_claim(state, action, case, actor):
        raise Refused(409, "not-claimed", "Claim the case before acting on it"
                      + (f" (it is claimed by {case.assignee})." if case.assignee else "."),
                      "Cần nhận xử lý hồ sơ trước khi thao tác.")
    seat = None
    if action.vote:
        if _voted(case, actor):
            raise Refused(409, "already-voted", "You have already voted on this case here.",
                          "Bạn đã biểu quyết hồ sơ này ở bước này.")
        seat = _seat(state, case, actor, request.seat)
        if seat is None:
            raise Refused(403, "not-allowed", "No free approval seat you may fill"
                          + (f" as '{request.seat}'." if request.seat else "."),
                          "Không còn ghế biểu quyết nào bạn được ngồi.")
    if action.signer is not None and not actor.holds(action.signer, action.at):
        raise Refused(403, "not-allowed", f"Action '{action.name}' must be signed by a holder "
                      f"of '{action.signer}'.", f"Thao tác '{action.name}' phải do người có "
                      f"vai trò '{action.signer}' ký.")
    _refuse_fields(action, request)
    _refuse_comment(action, request)
    data = {**case.data, **request.fields}
    _refuse_guard(action, data)
    if action.needs_signature and not request.signed:
        raise Refused(428, "signature-required", f"Action '{action.name}' takes effect only "
                      "with a digital signature.", f"Thao tác '{action.name}' cần chữ ký số.")
    return _outcome(workflow, state, case, actor, action, data, dict(request.fields), seat)


def _outcome(workflow: Workflow, state: State, case: Case, actor: Actor, action: Action,
             data: dict[str, Any], changes: dict[str, Any], seat: int | None) -> Outcome:
    vote = None
    if action.vote and state.approval is not None:
        assert seat is not None
        vote = Vote(seat, state.approval.seats[seat], actor.id, action.vote)
        votes = (*case.votes, vote)
        decided = decide(state, votes)
        if decided is None:
            return Outcome(case=replace(case, data=data, votes=votes), action=action.name,
                           source=state.name, target=state.name, moved=False, vote=vote,
                           changes=changes, hooks=())
    # A vote decides only in its own direction, so a deciding vote's action is the way out.
    entered = workflow.states[action.target]
    moved = Case(state=entered.name, data=data,
                 extra=tuple(e for e in case.extra if e.state is None))
    return Outcome(case=moved, action=action.name, source=state.name, target=entered.name,
                   moved=True, vote=vote, changes=changes,
                   hooks=_leaving(state) + _entering(entered))


def decide(state: State, votes: Sequence[Vote]) -> Literal["approve", "reject"] | None:
    """Whether the votes decide the approval state (see the module docstring)."""
    assert state.approval is not None
    seats, needed = len(state.approval.seats), state.approval.needed
    approvals = sum(1 for v in votes if v.vote == "approve")
    rejections = sum(1 for v in votes if v.vote == "reject")
    if approvals >= needed:
        return "approve"
    if rejections > seats - needed:
        return "reject"
    return None


# ---- assignment ------------------------------------------------------------------------------


def claim(case: Case, actor: Actor, workflow: Workflow) -> Case:
    """``actor`` takes the case for themselves (they must be able to act in its state)."""
    state = workflow.states[case.state]
    if state.type in ("terminal", "approval"):
        raise Refused(409, "not-claimable", f"A case in '{state.name}' ({state.type}) is not "
                      "claimed.", "Hồ sơ ở bước này không nhận xử lý riêng.")
    if not any(may_take(a, case, actor) for a in workflow.leaving(case.state)):
        raise Refused(403, "not-allowed", "You may not act on this case in its current state.",
                      "Bạn không được xử lý hồ sơ ở bước hiện tại.")
    if case.assignee is not None and not actor.is_or_stands_in_for(case.assignee):
        raise Refused(409, "already-claimed", f"The case is claimed by {case.assignee}.",
                      "Hồ sơ đã có người nhận xử lý.")
    return replace(case, assignee=actor.id)


def assign(case: Case, assignee: Actor, workflow: Workflow) -> Case:
    """Give the case to ``assignee`` (who must be able to act in its state)."""
    state = workflow.states[case.state]
    if state.type in ("terminal", "approval"):
        raise Refused(409, "not-claimable", f"A case in '{state.name}' ({state.type}) is not "
                      "assigned.", "Hồ sơ ở bước này không giao xử lý riêng.")
    if not any(may_take(a, case, assignee) for a in workflow.leaving(case.state)):
        raise Refused(422, "assignee-not-eligible", "The assignee may not act on this case "
                      "in its current state.", "Người được giao không được xử lý hồ sơ ở "
                      "bước hiện tại.", [FieldError("/assignee", "Không đủ điều kiện.",
                                                    "Not eligible.", "eligible")])
    return replace(case, assignee=assignee.id)


def release(case: Case) -> Case:
    return replace(case, assignee=None)


def breach(case: Case, rule: Mapping[str, Any], *, whole_case: bool) -> Case:
    """Apply an escalation or reassignment rule of an SLA breach to the case; ``whole_case``
    for a breach of the case's SLA (the extra eligibility then outlives the current state)."""
    scope = None if whole_case else case.state
    if rule["type"] == "escalate":
        return replace(case, extra=(*case.extra,
                                    Extra(rule["role"], rule.get("at", "parent"), scope)))
    if rule["type"] == "reassign":
        return replace(case, assignee=None,
                       extra=(*case.extra, Extra(rule["role"], rule.get("at", "case"), scope)))
    return case


# ---- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    actor: Actor
    request: Request


@dataclass(frozen=True)
class Simulation:
    path: list[str]
    state: str
    outcomes: list[Outcome]
    refused: tuple[int, Refused] | None


def simulate(workflow: Workflow, data: Mapping[str, Any], steps: Sequence[Step]) -> Simulation:
    """Run ``steps`` from a new case; stop at the first refusal. ``path`` lists every state
    the case was in, one entry per transition."""
    case, _hooks = open_case(workflow, data)
    path, outcomes = [case.state], list[Outcome]()
    for index, step in enumerate(steps):
        try:
            outcome = take(workflow, case, step.actor, step.request)
        except Refused as refusal:
            return Simulation(path, case.state, outcomes, (index, refusal))
        outcomes.append(outcome)
        case = outcome.case
        if outcome.moved:
            path.append(case.state)
    return Simulation(path, case.state, outcomes, None)


# ---- moving a running case to another version ---------------------------------------------


def migration_target(new: Workflow, case: Case, mapping: Mapping[str, str]) -> str:
    """The state a running case takes in ``new``: ``mapping[state]``, else the same name.
    Raises :class:`Refused` (code says why) when the case cannot move."""
    target = mapping.get(case.state, case.state)
    if target not in new.states:
        raise Refused(422, "state-not-mapped", f"State '{case.state}' has no counterpart in "
                      f"the new version; map it to one of its states.",
                      f"Bước '{case.state}' không có trong phiên bản mới; cần ánh xạ.")
    if new.states[target].type == "terminal":
        raise Refused(422, "maps-to-terminal", f"'{case.state}' maps to the terminal state "
                      f"'{target}'; a migration never closes a case.",
                      "Không chuyển hồ sơ vào bước kết thúc khi đổi phiên bản.")
    if case.votes:
        raise Refused(409, "votes-in-progress", f"Votes are being cast in '{case.state}'; "
                      "move the case once the vote is decided.",
                      "Hồ sơ đang được biểu quyết; chuyển sau khi có kết quả.")
    return target
