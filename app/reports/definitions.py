"""Report definitions (``reports/report.schema.json``): their shape, and what they mean for the
form they count.

A definition is checked in two steps. :func:`check_shape` holds it to the JSON Schema.
:func:`plan` then reads it against the form as the running tenant sees it: every field path
must name a field that one of the form's visible versions declares, ``sum``/``avg``/``min``/
``max`` need number fields, and a filter's value must have its field's type. Each step
reports every problem at once, each with a JSON Pointer into the definition; :func:`plan`
returns the :class:`Plan` that :mod:`app.reports.service` compiles to one SQL statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry

from app.core.problems import Problem
from app.forms.definitions import FieldError, json_pointer
from app.forms.service import field_problem
from app.forms.submissions import personal_fields
from app.forms.variants import instance_types

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "reports" / "report.schema.json"
TENANT = "$tenant"
MONTH = "$month"
NUMERIC_FUNCTIONS = frozenset({"sum", "avg", "min", "max"})
_MAX_REF_HOPS = 16


class Kind(StrEnum):
    """What a field holds, as far as a report is concerned."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    # Scalars of several types (across versions, or by the schema), or a schema that does
    # not say: compared and grouped by its text.
    ANY = "any"
    # Objects and lists: a report can only ask whether one is there.
    STRUCTURE = "structure"


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]
    kind: Kind
    personal: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Filter:
    field: Field
    op: str
    value: Any


@dataclass(frozen=True)
class Aggregate:
    fn: str
    field: Field | None

    @property
    def column(self) -> str:
        return self.fn if self.field is None else f"{self.fn}({self.field.name})"


@dataclass(frozen=True)
class Plan:
    """A checked definition, ready to compile. ``groups`` holds :data:`TENANT`,
    :data:`MONTH` or a :class:`Field`; with rollup ``children`` it starts with
    :data:`TENANT`."""

    form: str
    status: str
    filters: tuple[Filter, ...]
    groups: tuple[Field | str, ...]
    aggregates: tuple[Aggregate, ...]
    rollup: str
    min_group_size: int
    limit: int

    @property
    def columns(self) -> list[str]:
        return [g if isinstance(g, str) else g.name for g in self.groups] + [
            a.column for a in self.aggregates]

    @property
    def personal(self) -> list[str]:
        """The personal-data fields the report filters, groups or aggregates by."""
        used = [f.field for f in self.filters] + [a.field for a in self.aggregates] + [
            g for g in self.groups if isinstance(g, Field)]
        return sorted({f.name for f in used if f is not None and f.personal})


# ---- shape -------------------------------------------------------------------------------


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # An empty registry retrieves nothing: the schema's references stay inside it.
    return Draft202012Validator(schema, registry=Registry())


def _invalid(errors: list[FieldError]) -> Problem:
    return field_problem(422, "invalid-report", "Định nghĩa báo cáo không hợp lệ",
                         "Invalid report definition",
                         "The report definition has problems; see errors.", errors)


def check_shape(definition: Any) -> dict[str, Any]:
    """``definition`` if it satisfies the JSON Schema, else a 422 listing every problem."""
    errors = [FieldError(json_pointer(e.absolute_path), "Định nghĩa báo cáo không hợp lệ.",
                         e.message, str(e.validator))
              for e in _validator().iter_errors(definition)]
    if errors:
        raise _invalid(sorted(errors, key=lambda e: e.pointer))
    return dict(definition)


# ---- the form's fields -------------------------------------------------------------------


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    """Follow local ``$ref``s (``#/$defs/...``); a form's references stay inside it."""
    for _ in range(_MAX_REF_HOPS):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        node = target
    return node


def _types(node: Any) -> set[str]:
    """The JSON types a field's schema allows, integers counting as numbers."""
    allowed = instance_types(node) if isinstance(node, dict) else None
    names = {"number" if t == "integer" else t for t in allowed or ()} - {"null"}
    return names or {Kind.ANY.value}


def _kind(types: set[str]) -> Kind:
    if types <= {"object", "array"}:
        return Kind.STRUCTURE
    if len(types) == 1 and types <= {"string", "number", "boolean"}:
        return Kind(types.pop())
    return Kind.ANY


class FormFields:
    """The fields of a form as a tenant sees it: those any of its visible versions declares
    (versions are immutable, so a field once declared stays reportable)."""

    def __init__(self, definitions: Iterable[dict[str, Any]]) -> None:
        documents = list(definitions)
        self._schemas = [d["schema"] for d in documents]
        self._personal: set[str] = set()
        for document in documents:
            self._personal |= set(personal_fields(document))

    def find(self, path: str) -> Field | None:
        parts = tuple(path.split("."))
        types: set[str] = set()
        found = False
        for schema in self._schemas:
            node: Any = schema
            for part in parts:
                node = _resolve(node, schema)
                properties = node.get("properties") if isinstance(node, dict) else None
                if not isinstance(properties, dict) or part not in properties:
                    break
                node = properties[part]
            else:
                found = True
                types |= _types(_resolve(node, schema))
        if not found:
            return None
        return Field(parts, _kind(types), parts[0] in self._personal)


# ---- meaning -----------------------------------------------------------------------------


def value_kind(value: Any) -> Kind:
    if isinstance(value, bool):
        return Kind.BOOLEAN
    return Kind.NUMBER if isinstance(value, (int, float)) else Kind.STRING


class _Checker:
    def __init__(self, form: str, fields: FormFields) -> None:
        self.form = form
        self.fields = fields
        self.errors: list[FieldError] = []

    def error(self, pointer: str, vi: str, en: str, keyword: str) -> None:
        self.errors.append(FieldError(pointer, vi, en, keyword))

    def field(self, path: str, pointer: str) -> Field | None:
        found = self.fields.find(path)
        if found is None:
            self.error(pointer, f"Biểu mẫu '{self.form}' không có trường '{path}'.",
                       f"Form '{self.form}' has no field '{path}'.", "unknown-field")
        return found

    def scalar(self, field: Field, pointer: str, en: str, vi: str) -> bool:
        """Whether the field holds single values (what ``en``/``vi`` needs)."""
        if field.kind is Kind.STRUCTURE:
            self.error(pointer, f"Không thể {vi} '{field.name}': đó là đối tượng hoặc danh sách.",
                       f"Cannot {en} '{field.name}': it is an object or a list.", "field-type")
            return False
        return True

    def value(self, field: Field, value: Any, pointer: str, kinds: set[Kind]) -> None:
        """A filter value must have the field's type (and one of ``kinds``)."""
        kind = value_kind(value)
        expected = kinds if field.kind is Kind.ANY else {field.kind} & kinds
        if kind not in expected:
            wanted = " or ".join(sorted(expected)) or "nothing"
            self.error(pointer, f"Giá trị phải có kiểu {wanted} như trường '{field.name}'.",
                       f"The value must be a {wanted}, like the field '{field.name}'.",
                       "value-type")

    def filter(self, index: int, item: dict[str, Any]) -> Filter | None:
        at = f"/filters/{index}"
        field = self.field(item["field"], f"{at}/field")
        op, value = item["op"], item.get("value", True)
        if field is None:
            return None
        if op == "exists":
            return Filter(field, op, value)
        if not self.scalar(field, f"{at}/field", "compare", "so sánh"):
            return None
        if op in ("gt", "gte", "lt", "lte"):
            if field.kind is Kind.BOOLEAN:
                self.error(f"{at}/op", "Không thể so sánh lớn nhỏ giá trị đúng/sai.",
                           f"'{op}' compares numbers or strings; '{field.name}' is a boolean.",
                           "field-type")
                return None
            self.value(field, value, f"{at}/value", {Kind.NUMBER, Kind.STRING})
        elif op == "in":
            for position, each in enumerate(value):
                self.value(field, each, f"{at}/value/{position}", set(Kind))
        else:
            self.value(field, value, f"{at}/value", set(Kind))
        return Filter(field, op, value)

    def group(self, index: int, item: str) -> Field | str | None:
        if item in (TENANT, MONTH):
            return item
        field = self.field(item, f"/group_by/{index}")
        if field is None or not self.scalar(field, f"/group_by/{index}", "group by", "nhóm theo"):
            return None
        return field

    def aggregate(self, index: int, item: dict[str, Any]) -> Aggregate | None:
        fn, path = item["fn"], item.get("field")
        if path is None:
            return Aggregate(fn, None)
        at = f"/aggregates/{index}/field"
        field = self.field(path, at)
        if field is None:
            return None
        if fn in NUMERIC_FUNCTIONS and field.kind is not Kind.NUMBER:
            self.error(at, f"Hàm {fn} cần một trường số; '{field.name}' không phải là số.",
                       f"{fn} needs a number field; '{field.name}' holds {field.kind} values.",
                       "field-type")
            return None
        if fn == "distinct" and not self.scalar(field, at, "count the values of",
                                                "đếm giá trị của"):
            return None
        return Aggregate(fn, field)


def plan(definition: dict[str, Any], fields: FormFields | None) -> Plan:
    """What a shape-checked definition means for the form's ``fields`` (None: the running
    tenant has no such form), or a 422 listing every problem."""
    form = definition["form"]
    if fields is None:
        raise _invalid([FieldError("/form", f"Không có biểu mẫu '{form}' dùng được ở đây.",
                                   f"No form '{form}' is usable here.", "unknown-form")])
    checker = _Checker(form, fields)
    filters = [checker.filter(i, f) for i, f in enumerate(definition.get("filters", []))]
    groups = [checker.group(i, g) for i, g in enumerate(definition.get("group_by", []))]
    aggregates = [checker.aggregate(i, a) for i, a in enumerate(definition["aggregates"])]
    if checker.errors:
        raise _invalid(checker.errors)
    rollup = definition.get("rollup", "none")
    kept = [g for g in groups if g is not None]
    if rollup == "children" and TENANT not in kept:
        kept.insert(0, TENANT)
    return Plan(form=form, status=definition.get("status", "submitted"),
                filters=tuple(f for f in filters if f is not None), groups=tuple(kept),
                aggregates=tuple(a for a in aggregates if a is not None), rollup=rollup,
                min_group_size=definition.get("min_group_size", 1),
                limit=definition.get("limit", 1000))
