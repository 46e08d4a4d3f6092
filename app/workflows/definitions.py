"""Workflow definitions: their shape, and the checks that decide whether one may be published.

A definition (``workflows/workflow.schema.json``) names states and the actions between them.
Its *shape* is checked whenever a draft is saved, so an official can save half-built work;
its *meaning* is checked when it is published: every state reachable and able to finish,
every role, form and field known, guards naming only fields that exist, signature steps with a
signer. Every problem points (JSON Pointer) at the state or action at fault.

:func:`compile_workflow` turns a checked definition into the immutable :class:`Workflow` the
engine (:mod:`app.workflows.engine`) interprets; it is built once per version digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from app.forms.definitions import (
    DefinitionError,
    FieldError,
    json_pointer,
    regex_problems,
)
from app.workflows.calendar import DurationError, parse_duration

META_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflows" / "workflow.schema.json"

APPLICANT, SYSTEM = "applicant", "system"
PSEUDO_ROLES = frozenset({APPLICANT, SYSTEM})
Jurisdiction = Literal["case", "parent", "province", "ministry"]
# A grant higher up the tree covers every lower jurisdiction: a province official holding a
# role "at parent" of a commune's case also holds it "at case".
JURISDICTIONS: tuple[Jurisdiction, ...] = ("case", "parent", "province", "ministry")


def error(path: Iterable[Any], vi: str, en: str, keyword: str) -> FieldError:
    return FieldError(json_pointer(path), vi, en, keyword)


# ---- the compiled form the engine runs -----------------------------------------------------


@dataclass(frozen=True)
class Sla:
    duration: timedelta
    days: Literal["working", "calendar"]
    due_soon: timedelta | None
    on_breach: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Approval:
    mode: Literal["all", "any", "quorum"]
    seats: tuple[str, ...]
    at: Jurisdiction
    needed: int


@dataclass(frozen=True)
class State:
    index: int
    name: str
    type: Literal["start", "task", "approval", "terminal"]
    title: Mapping[str, str]
    sla: Sla | None
    waits_on_applicant: bool
    assignment: Literal["pool", "claim"]
    approval: Approval | None
    outcome: str | None
    on_enter: tuple[Mapping[str, Any], ...]
    on_leave: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Action:
    index: int
    name: str
    title: Mapping[str, str]
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    at: Jurisdiction
    vote: Literal["approve", "reject"] | None
    guard: Any
    guard_message: Mapping[str, str] | None
    fields: Mapping[str, Mapping[str, Any]]
    required_fields: frozenset[str]
    comment: Literal["required", "optional", "none"]
    signer: str | None
    fields_validator: Draft202012Validator = field(compare=False, repr=False)
    guard_validator: Draft202012Validator | None = field(compare=False, repr=False)
    # The signed step issues a document: a sealed PDF receipt (app.signing.receipts).
    receipt: bool = False

    @property
    def needs_signature(self) -> bool:
        return self.signer is not None


@dataclass(frozen=True)
class Workflow:
    key: str
    form: str
    sla: Sla | None
    states: Mapping[str, State]
    actions: Mapping[str, Action]
    start: str

    def leaving(self, state: str) -> list[Action]:
        """The actions that may be taken in ``state``, in definition order."""
        return [a for a in self.actions.values() if state in a.sources]


def _sla(document: Mapping[str, Any] | None) -> Sla | None:
    if document is None:
        return None
    soon = document.get("due_soon")
    return Sla(duration=parse_duration(document["duration"]),
               days=document.get("days", "working"),
               due_soon=parse_duration(soon) if soon else None,
               on_breach=tuple(document.get("on_breach", ())))


def _sources(action: Mapping[str, Any]) -> tuple[str, ...]:
    value = action["from"]
    return (value,) if isinstance(value, str) else tuple(value)


def _needed(approval: Mapping[str, Any]) -> int:
    seats = len(approval["seats"])
    return int({"all": seats, "any": 1}.get(approval["mode"], approval.get("quorum", seats)))


def _fields_schema(action: Mapping[str, Any]) -> dict[str, Any]:
    fields = action.get("fields", {})
    return {"type": "object", "additionalProperties": False,
            "properties": {n: f["schema"] for n, f in fields.items()},
            "required": sorted(n for n, f in fields.items() if f.get("required"))}


def _validator(schema: Any) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _compile(document: Mapping[str, Any]) -> Workflow:
    states: dict[str, State] = {}
    for index, s in enumerate(document["states"]):
        approval = s.get("approval")
        states.setdefault(s["name"], State(
            index=index, name=s["name"], type=s["type"], title=s["title"], sla=_sla(s.get("sla")),
            waits_on_applicant=s.get("waits_on_applicant", False),
            assignment=s.get("assignment", "pool"),
            approval=Approval(mode=approval["mode"], seats=tuple(approval["seats"]),
                              at=approval.get("at", "case"), needed=_needed(approval))
            if approval else None,
            outcome=s.get("outcome"), on_enter=tuple(s.get("on_enter", ())),
            on_leave=tuple(s.get("on_leave", ()))))
    actions: dict[str, Action] = {}
    for index, a in enumerate(document["actions"]):
        signature = a.get("signature") or {}
        guard = a.get("guard")
        actions.setdefault(a["name"], Action(
            index=index, name=a["name"], title=a["title"], sources=_sources(a), target=a["to"],
            roles=tuple(a["roles"]), at=a.get("at", "case"), vote=a.get("vote"), guard=guard,
            guard_message=a.get("guard_message"), fields=a.get("fields", {}),
            required_fields=frozenset(n for n, f in a.get("fields", {}).items()
                                      if f.get("required")),
            comment=a.get("comment", "optional"),
            signer=(signature.get("role") or "") if signature.get("required") else None,
            fields_validator=_validator(_fields_schema(a)),
            guard_validator=_validator(guard) if guard is not None else None,
            receipt=bool(signature.get("required") and signature.get("receipt"))))
    starts = [s.name for s in states.values() if s.type == "start"]
    return Workflow(key=document["key"], form=document["form"],
                    sla=_sla(document.get("sla")), states=states, actions=actions,
                    start=starts[0] if starts else "")


@lru_cache(maxsize=512)
def _compiled(text: str) -> Workflow:
    return _compile(json.loads(text))


def compile_workflow(document: Mapping[str, Any]) -> Workflow:
    """The engine's view of a definition whose shape is valid (see :func:`check_shape`).
    Compiled workflows are cached by content, so each version is compiled once per process."""
    return _compiled(json.dumps(document, sort_keys=True, ensure_ascii=False))


# ---- shape -----------------------------------------------------------------------------------


@cache
def _meta_validator() -> Draft202012Validator:
    schema = json.loads(META_SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _embedded_schemas(document: Mapping[str, Any]) -> Iterator[tuple[Any, list[Any]]]:
    """The JSON Schemas inside a definition (guards and action fields), with their paths."""
    for i, action in enumerate(document["actions"]):
        if "guard" in action:
            yield action["guard"], ["actions", i, "guard"]
        for name, spec in action.get("fields", {}).items():
            yield spec["schema"], ["actions", i, "fields", name, "schema"]


def _references(node: Any, path: list[Any]) -> Iterator[list[Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef"):
                yield [*path, key]
            elif key not in ("const", "enum", "default", "examples"):
                yield from _references(value, [*path, key])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, [*path, index])


def _durations(document: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    slas = [(document.get("sla"), ["sla"])] + [
        (s.get("sla"), ["states", i, "sla"]) for i, s in enumerate(document["states"])]
    for sla, path in slas:
        if sla:
            yield from ((sla[k], [*path, k]) for k in ("duration", "due_soon") if k in sla)


def check_shape(definition: Any) -> dict[str, Any]:
    """Return ``definition`` if it is well-formed (what a draft must be), else raise
    :class:`DefinitionError` listing every problem."""
    shape = [error(e.absolute_path, "Định nghĩa quy trình không đúng cấu trúc.", e.message,
                   str(e.validator))
             for e in _meta_validator().iter_errors(definition)]
    if shape:
        raise DefinitionError(sorted(shape, key=lambda e: e.pointer))
    problems: list[FieldError] = []
    for schema, path in _embedded_schemas(definition):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append(error([*path, *exc.absolute_path], "Lược đồ JSON không hợp lệ.",
                                  f"Invalid JSON Schema: {exc.message}", "schema"))
            continue
        problems += [error(p, "Điều kiện và trường dữ liệu của quy trình không được dùng "
                           "tham chiếu ($ref).", "Guards and action fields may not use "
                           "references ($ref); write the condition out.", "$ref")
                     for p in _references(schema, path)]
    problems += regex_problems(_embedded_schemas(definition))
    for text, path in _durations(definition):
        try:
            parse_duration(text)
        except DurationError as exc:
            problems.append(error(path, "Thời hạn không hợp lệ.", str(exc), "duration"))
    if problems:
        raise DefinitionError(problems)
    return dict(definition)


# ---- meaning (publish time) ----------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a definition is checked against at the publishing tenant.

    ``roles``: role names usable there (built-in and custom); ``form_fields``: the top-level
    fields of the bound form's current version, or None when no such form is usable there;
    ``form_schema``: that version's JSON Schema, for the nested fields guards name.
    """

    roles: frozenset[str]
    form_fields: frozenset[str] | None
    form_schema: Mapping[str, Any] | None = None


def _reachable(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def graph_problems(document: Mapping[str, Any]) -> list[FieldError]:
    """Names, the start state, and whether every state is reachable and can finish."""
    problems: list[FieldError] = []
    names: dict[str, int] = {}
    for i, s in enumerate(document["states"]):
        if s["name"] in names:
            problems.append(error(["states", i, "name"], f"Trùng tên bước '{s['name']}'.",
                                  f"Duplicate state name '{s['name']}'.", "duplicate"))
        names.setdefault(s["name"], i)
    seen_actions: set[str] = set()
    for i, a in enumerate(document["actions"]):
        if a["name"] in seen_actions:
            problems.append(error(["actions", i, "name"], f"Trùng tên thao tác '{a['name']}'.",
                                  f"Duplicate action name '{a['name']}'.", "duplicate"))
        seen_actions.add(a["name"])
    starts = [i for i, s in enumerate(document["states"]) if s["type"] == "start"]
    if not starts:
        problems.append(error(["states"], "Quy trình cần đúng một bước bắt đầu.",
                              "A workflow needs exactly one start state.", "start"))
    problems += [error(["states", i, "type"], "Quy trình chỉ có một bước bắt đầu.",
                       "A workflow has only one start state.", "start") for i in starts[1:]]
    if not any(s["type"] == "terminal" for s in document["states"]):
        problems.append(error(["states"], "Quy trình cần ít nhất một bước kết thúc.",
                              "A workflow needs at least one terminal state.", "terminal"))

    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for i, a in enumerate(document["actions"]):
        sources = _sources(a)
        for j, source in enumerate(sources):
            where = ["actions", i, "from"] + ([j] if isinstance(a["from"], list) else [])
            if source not in names:
                problems.append(error(where, f"Không có bước '{source}'.",
                                      f"No state named '{source}'.", "unknown-state"))
            elif document["states"][names[source]]["type"] == "terminal":
                problems.append(error(where, f"Bước kết thúc '{source}' không có thao tác.",
                                      f"'{source}' is a terminal state: no action leaves it.",
                                      "terminal"))
        if a["to"] not in names:
            problems.append(error(["actions", i, "to"], f"Không có bước '{a['to']}'.",
                                  f"No state named '{a['to']}'.", "unknown-state"))
        for source in sources:
            forward.setdefault(source, set()).add(a["to"])
            backward.setdefault(a["to"], set()).add(source)
    if starts:
        reached = _reachable(document["states"][starts[0]]["name"], forward)
        finishing: set[str] = set()
        for s in document["states"]:
            if s["type"] == "terminal":
                finishing |= _reachable(s["name"], backward)
        for name, i in names.items():
            if name not in reached:
                problems.append(error(["states", i], f"Không thể đến được bước '{name}' từ "
                                      "bước bắt đầu.", f"State '{name}' cannot be reached from "
                                      "the start state.", "unreachable"))
            elif name not in finishing:
                problems.append(error(["states", i], f"Từ bước '{name}' không thể đi đến bước "
                                      "kết thúc.", f"State '{name}' has no path to a terminal "
                                      "state.", "no-way-out"))
    return problems


def _roles_used(document: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    def breaches(sla: Any, path: list[Any]) -> Iterator[tuple[str, list[Any]]]:
        for k, b in enumerate((sla or {}).get("on_breach", ())):
            if "role" in b:
                yield b["role"], [*path, "on_breach", k, "role"]
            for r, role in enumerate(b.get("roles", ())):
                yield role, [*path, "on_breach", k, "roles", r]

    yield from breaches(document.get("sla"), ["sla"])
    for i, s in enumerate(document["states"]):
        yield from breaches(s.get("sla"), ["states", i, "sla"])
        for j, seat in enumerate((s.get("approval") or {}).get("seats", ())):
            yield seat, ["states", i, "approval", "seats", j]
    for i, a in enumerate(document["actions"]):
        for j, role in enumerate(a["roles"]):
            yield role, ["actions", i, "roles", j]
        if (a.get("signature") or {}).get("role"):
            yield a["signature"]["role"], ["actions", i, "signature", "role"]


def _named_fields(node: Any, path: list[Any],
                  prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    """The data fields a guard names, as paths of names (``*`` for any item of an array):
    its ``properties`` (and, inside them, the nested fields they test), ``required`` and
    ``dependentRequired`` entries, also under the combinators that test the same object."""
    if not isinstance(node, dict):
        return
    for name, sub in node["properties"].items() if isinstance(node.get("properties"),
                                                               dict) else ():
        yield (*prefix, name), [*path, "properties", name]
        yield from _named_fields(sub, [*path, "properties", name], (*prefix, name))
    for j, name in enumerate(node.get("required", [])):
        yield (*prefix, name), [*path, "required", j]
    for name, needed in (node.get("dependentRequired") or {}).items():
        yield (*prefix, name), [*path, "dependentRequired", name]
        yield from (((*prefix, n), [*path, "dependentRequired", name, k])
                    for k, n in enumerate(needed))
    for keyword in ("items", "contains"):
        yield from _named_fields(node.get(keyword), [*path, keyword], (*prefix, "*"))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for j, child in enumerate(node.get(keyword, [])):
            yield from _named_fields(child, [*path, keyword, j], prefix)
    for keyword in ("not", "if", "then", "else"):
        if keyword in node:
            yield from _named_fields(node[keyword], [*path, keyword], prefix)


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    """A local ``$ref`` (``#/$defs/x``) inside ``root``; None for any other."""
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _alternatives(nodes: list[Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The schemas that describe the same value as ``nodes``: themselves, what they ``$ref``,
    and their applicators. An unresolvable reference stands as ``{}`` (anything)."""
    found: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        if isinstance(node.get("$ref"), str):
            target = _resolve(node["$ref"], root)
            stack.append(target if target is not None else {})
        for keyword in ("allOf", "anyOf", "oneOf"):
            stack.extend(node.get(keyword, []) if isinstance(node.get(keyword), list) else [])
        stack.extend(node[k] for k in ("if", "then", "else") if k in node)
        if isinstance(node.get("dependentSchemas"), Mapping):
            stack.extend(node["dependentSchemas"].values())
    return found


def _declared(names: tuple[str, ...], start: Mapping[str, Any],
              root: Mapping[str, Any]) -> bool:
    """Whether the schema ``start`` declares the nested field ``names``. Where it leaves the
    value open (an object declaring no properties, or a schema for extra properties), no
    name can be proven missing, so it counts as declared."""
    nodes: list[Any] = [start]
    for name in names:
        alternatives = _alternatives(nodes, root)
        if name == "*":
            nodes = [n[k] for n in alternatives for k in ("items", "contains")
                     if isinstance(n.get(k), Mapping)]
            nodes += [i for n in alternatives for i in n.get("prefixItems", [])
                      if isinstance(n.get("prefixItems"), list)]
            if not nodes:
                return not any("type" in n for n in alternatives)
            continue
        nodes = [n["properties"][name] for n in alternatives
                 if isinstance(n.get("properties"), Mapping) and name in n["properties"]]
        if not nodes:
            return not any(isinstance(n.get("properties"), Mapping) or n.get("type") not in
                           (None, "object") for n in alternatives) or any(
                isinstance(n.get(k), Mapping) for n in alternatives
                for k in ("patternProperties", "additionalProperties"))
    return True


def _guard_problems(action: Mapping[str, Any], at: list[Any], context: Context,
                    action_fields: Mapping[str, Any]) -> list[FieldError]:
    """Fields a guard names that neither the form nor an action declares: top-level names
    always, nested ones (``dia_chi.tinh``, ``nganh_nghe[].ma_nganh``) against their schemas."""
    problems: list[FieldError] = []
    form_fields = context.form_fields or frozenset()
    form_schema = context.form_schema
    for names, path in _named_fields(action.get("guard"), [*at, "guard"]):
        top = names[0]
        if top not in form_fields and top not in action_fields:
            if len(names) == 1:
                problems.append(error(path, f"Điều kiện nhắc đến trường '{top}' không có "
                                      "trong biểu mẫu hay thao tác nào.", f"The guard names "
                                      f"'{top}', which is neither a form field nor an action "
                                      "field.", "unknown-field"))
            continue
        if len(names) == 1:
            continue
        if top in form_fields:
            if form_schema is None or not _declared((top,), form_schema, form_schema):
                continue
            start, root = form_schema, form_schema
        else:
            root = action_fields[top]
            start = {"properties": {top: root}}
        if not _declared(names, start, root):
            shown = ".".join(names).replace(".*", "[]")
            problems.append(error(path, f"Điều kiện nhắc đến trường '{shown}' mà biểu mẫu và "
                                  "thao tác không khai báo.", f"The guard names '{shown}', "
                                  "which neither the form nor an action declares.",
                                  "unknown-field"))
    return problems


def _action_problems(document: Mapping[str, Any], context: Context) -> list[FieldError]:
    problems: list[FieldError] = []
    states = {s["name"]: s for s in document["states"]}
    form_fields = context.form_fields or frozenset()
    action_fields = {n: f.get("schema", {}) for a in document["actions"]
                     for n, f in a.get("fields", {}).items()}
    for i, a in enumerate(document["actions"]):
        at = ["actions", i]
        for name in a.get("fields", {}):
            if name in form_fields:
                problems.append(error([*at, "fields", name], f"Trường '{name}' đã có trong biểu "
                                      "mẫu; thao tác không được ghi đè dữ liệu người nộp.",
                                      f"'{name}' is a field of the form; an action may not "
                                      "overwrite the applicant's data.", "field-clash"))
        problems += _guard_problems(a, at, context, action_fields)
        signature = a.get("signature") or {}
        if signature.get("required"):
            signer = signature.get("role")
            if not signer:
                problems.append(error([*at, "signature"], f"Thao tác '{a['name']}' cần ký số "
                                      "nhưng chưa chỉ định vai trò ký.", f"Action '{a['name']}' "
                                      "requires a signature but names no signer role.",
                                      "signer"))
            elif signer not in a["roles"] or signer in PSEUDO_ROLES - {APPLICANT}:
                problems.append(error([*at, "signature", "role"], "Vai trò ký phải là một vai "
                                      "trò được thực hiện thao tác.", "The signer role must be "
                                      "one of the roles that may take the action.", "signer"))
        if SYSTEM in a["roles"] and (a.get("comment") == "required" or any(
                f.get("required") for f in a.get("fields", {}).values())):
            problems.append(error([*at, "roles"], "Thao tác tự động không thể có ý kiến hay "
                                  "trường bắt buộc.", "An action the system may take cannot "
                                  "require a comment or fields.", "system"))
        sources = _sources(a)
        if "vote" in a:
            kinds = {states[s]["type"] for s in sources if s in states}
            if len(sources) != 1 or kinds != {"approval"}:
                problems.append(error([*at, "vote"], "Thao tác biểu quyết phải xuất phát từ "
                                      "đúng một bước phê duyệt.", "A vote action must leave "
                                      "exactly one approval state.", "vote"))
    for i, s in enumerate(document["states"]):
        approval = s.get("approval")
        if not approval:
            continue
        if approval["mode"] == "quorum" and approval.get("quorum", 0) > len(approval["seats"]):
            problems.append(error(["states", i, "approval", "quorum"], "Số phiếu cần đạt "
                                  "vượt quá số ghế.", "The quorum is larger than the number "
                                  "of seats.", "quorum"))
        votes = {a.get("vote") for a in document["actions"] if s["name"] in _sources(a)}
        if "approve" not in votes:
            problems.append(error(["states", i], f"Bước phê duyệt '{s['name']}' cần một thao "
                                  "tác biểu quyết đồng ý (vote: approve).", f"Approval state "
                                  f"'{s['name']}' needs an action with vote 'approve'.", "vote"))
    return problems


def _breach_problems(document: Mapping[str, Any]) -> list[FieldError]:
    problems: list[FieldError] = []
    actions = {a["name"]: a for a in document["actions"]}
    slas = [(document.get("sla"), ["sla"], None)] + [
        (s.get("sla"), ["states", i, "sla"], s["name"]) for i, s in enumerate(document["states"])]
    for sla, path, state in slas:
        for k, b in enumerate((sla or {}).get("on_breach", ())):
            if b["type"] != "action":
                continue
            action = actions.get(b["action"])
            where = [*path, "on_breach", k, "action"]
            if action is None:
                problems.append(error(where, f"Không có thao tác '{b['action']}'.",
                                      f"No action named '{b['action']}'.", "unknown-action"))
            elif SYSTEM not in action["roles"]:
                problems.append(error(where, "Thao tác tự động phải cho phép vai trò 'system'.",
                                      "An automatic action must list 'system' among its roles.",
                                      "system"))
            elif state is not None and state not in _sources(action):
                problems.append(error(where, f"Thao tác '{b['action']}' không thực hiện được "
                                      f"ở bước '{state}'.", f"Action '{b['action']}' cannot be "
                                      f"taken in state '{state}'.", "not-in-state"))
    return problems


def meaning_problems(document: Mapping[str, Any], context: Context) -> list[FieldError]:
    """Every reason the (well-formed) definition cannot be published at the context's tenant."""
    problems = graph_problems(document)
    if context.form_fields is None:
        problems.append(error(["form"], f"Không có biểu mẫu '{document['form']}' đã ban hành "
                              "dùng được ở đơn vị này.", f"No published form "
                              f"'{document['form']}' is usable at this tenant.", "unknown-form"))
    known = context.roles | PSEUDO_ROLES
    problems += [error(path, f"Không có vai trò '{role}'.", f"No role named '{role}' is "
                       "usable at this tenant.", "unknown-role")
                 for role, path in _roles_used(document) if role not in known]
    problems += _action_problems(document, context) + _breach_problems(document)
    return sorted(problems, key=lambda e: e.pointer)


def check_publishable(definition: Any, context: Context) -> dict[str, Any]:
    """Return ``definition`` if it may be published, else raise :class:`DefinitionError`."""
    document = check_shape(definition)
    problems = meaning_problems(document, context)
    if problems:
        raise DefinitionError(problems)
    return document
