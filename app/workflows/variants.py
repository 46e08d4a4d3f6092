"""Whether a workflow variant only narrows its parent.

A ministry publishes a process; a province or commune may publish a variant with the same
key, for example with an extra local review step. The rule mirrors form variants: *every way a
case can go through the variant, seen through the parent's states, is a way the parent
allows, and every step is at least as strict.* Concretely a variant

* keeps every parent state (same type and outcome) and every parent action (same name);
* may add states, but no new ending, and no new place where the clock stops;
* routes each parent action to its parent target, or into new states that lead back only to
  that target or to the state the action left (a local loop);
* may narrow who acts (fewer roles, a higher jurisdiction), never widen it;
* keeps each guard, or requires it and more (``{"allOf": [parent guard, ...]}``);
* keeps required fields, required comments, signatures and their signer, approval seats and
  quorum (or raises them), SLAs (or shortens them), breach rules and hooks.

Each violation is a :class:`~app.forms.definitions.FieldError` pointing into the variant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from app.forms.definitions import FieldError
from app.workflows.calendar import parse_duration
from app.workflows.definitions import JURISDICTIONS, error


def _named(document: Mapping[str, Any], section: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """``section``'s items by name (the first of duplicates), with their index."""
    return {x["name"]: (i, x) for i, x in reversed(list(enumerate(document[section])))}


_NOUNS = {"states": ("bước", "state"), "actions": ("thao tác", "action")}


def _kept(parent: Mapping[str, Any], variant: Mapping[str, Any], section: str,
          dropped: list[FieldError]) -> Iterator[tuple[str, dict[str, Any], int, dict[str, Any]]]:
    """The parent's states or actions with their counterpart in the variant; those missing
    there go to ``dropped``."""
    vi, en = _NOUNS[section]
    found = _named(variant, section)
    for name, (_, p) in _named(parent, section).items():
        if name not in found:
            dropped.append(error([section], f"Biến thể bỏ mất {vi} '{name}' của quy trình gốc.",
                                 f"The variant drops the parent's {en} '{name}'.", "removed"))
            continue
        i, v = found[name]
        yield name, p, i, v


def _sources(action: Mapping[str, Any]) -> set[str]:
    value = action["from"]
    return {value} if isinstance(value, str) else set(value)


def _rank(at: str | None) -> int:
    return JURISDICTIONS.index(at or "case")


def _exits(variant: Mapping[str, Any], start: str, parent_states: set[str]) -> set[str]:
    """Parent states reached from ``start`` through new states only (``start`` itself if it
    is a parent state)."""
    if start in parent_states:
        return {start}
    seen, stack, exits = {start}, [start], set()
    while stack:
        current = stack.pop()
        for action in variant["actions"]:
            if current not in _sources(action):
                continue
            target = action["to"]
            if target in parent_states:
                exits.add(target)
            elif target not in seen:
                seen.add(target)
                stack.append(target)
    return exits


def _guard_kept(parent: Any, variant: Any) -> bool:
    if parent is None or variant == parent:
        return True
    return isinstance(variant, dict) and parent in variant.get("allOf", [])


def _sla_kept(parent: Mapping[str, Any] | None, variant: Mapping[str, Any] | None) -> bool:
    if parent is None:
        return True
    if variant is None:
        return False
    p_days, v_days = parent.get("days", "working"), variant.get("days", "working")
    if p_days == "calendar" and v_days == "working":
        return False  # a working day is never shorter than a calendar day
    rules = variant.get("on_breach", [])
    return (parse_duration(variant["duration"]) <= parse_duration(parent["duration"])
            and all(rule in rules for rule in parent.get("on_breach", [])))


def _hooks_kept(parent: Mapping[str, Any], variant: Mapping[str, Any]) -> bool:
    return all(hook in variant.get(when, []) for when in ("on_enter", "on_leave")
               for hook in parent.get(when, []))


def _state_problems(parent: Mapping[str, Any], variant: Mapping[str, Any]) -> Iterator[FieldError]:
    dropped: list[FieldError] = []
    for name, p, i, v in _kept(parent, variant, "states", dropped):
        at = ["states", i]
        if (v["type"], v.get("outcome")) != (p["type"], p.get("outcome")):
            yield error([*at, "type"], f"Bước '{name}' phải giữ loại và kết quả như quy trình "
                        "gốc.", f"State '{name}' must keep the parent's type and outcome.",
                        "type")
        if v.get("waits_on_applicant", False) and not p.get("waits_on_applicant", False):
            yield error([*at, "waits_on_applicant"], "Biến thể không được dừng đồng hồ ở bước "
                        "này.", "A variant may not stop the clock in this state.", "pause")
        if not _sla_kept(p.get("sla"), v.get("sla")):
            yield error([*at, "sla"], "Thời hạn không được dài hơn, và giữ mọi xử lý khi quá "
                        "hạn của quy trình gốc.", "The time limit may not be longer, and the "
                        "parent's breach rules stay.", "sla")
        if not _hooks_kept(p, v):
            yield error(at, "Biến thể phải giữ các móc sự kiện của quy trình gốc.",
                        "The variant must keep the parent's hooks.", "hooks")
        yield from _approval_problems(p.get("approval"), v.get("approval"), at)
    yield from dropped
    parent_states = {s["name"] for s in parent["states"]}
    for i, v in enumerate(variant["states"]):
        if v["name"] in parent_states:
            continue
        if v["type"] in ("terminal", "start"):
            yield error(["states", i, "type"], "Biến thể không được thêm điểm bắt đầu hay kết "
                        "thúc mới.", "A variant may not add a new start or ending.", "ending")
        if v.get("waits_on_applicant", False):
            yield error(["states", i, "waits_on_applicant"], "Bước mới không được dừng đồng hồ.",
                        "A new state may not stop the clock.", "pause")


def _approval_problems(parent: Mapping[str, Any] | None, variant: Mapping[str, Any] | None,
                       at: list[Any]) -> Iterator[FieldError]:
    if parent is None or variant is None:
        return
    seats = list(variant["seats"])
    missing = False
    for seat in parent["seats"]:
        if seat in seats:
            seats.remove(seat)
        else:
            missing = True

    def needed(a: Mapping[str, Any]) -> int:
        return int({"all": len(a["seats"]), "any": 1}.get(a["mode"], a.get("quorum", 0)))

    if missing or needed(variant) < needed(parent) or _rank(variant.get("at")) < _rank(
            parent.get("at")):
        yield error([*at, "approval"], "Phê duyệt phải giữ mọi ghế, số phiếu cần đạt và cấp "
                    "của quy trình gốc (có thể tăng).", "Approval must keep the parent's seats, "
                    "quorum and level (or raise them).", "approval")


def _action_problems(parent: Mapping[str, Any],
                     variant: Mapping[str, Any]) -> Iterator[FieldError]:
    parent_states = {s["name"] for s in parent["states"]}
    allowed = {(s, a["to"]) for a in parent["actions"] for s in _sources(a)}
    dropped: list[FieldError] = []
    for _name, p, i, v in _kept(parent, variant, "actions", dropped):
        at = ["actions", i]
        if _sources(v) & parent_states != _sources(p):
            yield error([*at, "from"], "Thao tác phải thực hiện được ở đúng các bước như quy "
                        "trình gốc.", "The action must leave exactly the parent's states.",
                        "from")
        if not set(v["roles"]) <= set(p["roles"]) or _rank(v.get("at")) < _rank(p.get("at")):
            yield error([*at, "roles"], "Biến thể chỉ được thu hẹp người thực hiện.",
                        "A variant may only narrow who takes the action.", "roles")
        if v.get("vote") != p.get("vote"):
            yield error([*at, "vote"], "Phải giữ kiểu biểu quyết.", "The vote must stay.",
                        "vote")
        if not _guard_kept(p.get("guard"), v.get("guard")):
            yield error([*at, "guard"], "Điều kiện phải giữ nguyên, hoặc là allOf gồm điều kiện "
                        "gốc.", "The guard must stay, or be an allOf that includes the "
                        "parent's guard.", "guard")
        for field, spec in p.get("fields", {}).items():
            kept = v.get("fields", {}).get(field)
            if kept is None or kept["schema"] != spec["schema"] or (
                    spec.get("required") and not kept.get("required")):
                yield error([*at, "fields", field], f"Phải giữ trường '{field}' như quy trình "
                            "gốc.", f"Field '{field}' must stay as in the parent.", "fields")
        if p.get("comment") == "required" and v.get("comment") != "required":
            yield error([*at, "comment"], "Ý kiến vẫn phải bắt buộc.",
                        "The comment must stay required.", "comment")
        p_sign, v_sign = p.get("signature") or {}, v.get("signature") or {}
        if p_sign.get("required") and (not v_sign.get("required")
                                       or v_sign.get("role") != p_sign.get("role")):
            yield error([*at, "signature"], "Phải giữ yêu cầu ký số và vai trò ký.",
                        "The signature and its signer must stay.", "signature")
    yield from dropped
    for i, v in enumerate(variant["actions"]):
        for source in _sources(v) & parent_states:
            for target in _exits(variant, v["to"], parent_states):
                if target != source and (source, target) not in allowed:
                    yield error(["actions", i, "to"], f"Biến thể cho phép đi từ '{source}' đến "
                                f"'{target}', quy trình gốc không cho phép.", f"The variant "
                                f"lets a case go from '{source}' to '{target}', which the "
                                "parent does not.", "path")


def check_variant(parent: Mapping[str, Any], variant: Mapping[str, Any]) -> list[FieldError]:
    """Every way ``variant`` loosens ``parent`` (both well-formed definitions)."""
    problems = list(_state_problems(parent, variant)) + list(_action_problems(parent, variant))
    if variant["form"] != parent["form"]:
        problems.append(error(["form"], "Biến thể phải dùng cùng biểu mẫu.",
                              "A variant binds the same form as its parent.", "form"))
    if not _sla_kept(parent.get("sla"), variant.get("sla")):
        problems.append(error(["sla"], "Thời hạn hồ sơ không được dài hơn quy trình gốc.",
                              "The case's time limit may not be longer than the parent's.",
                              "sla"))
    return sorted(problems, key=lambda e: e.pointer)
