"""eForm definitions: checking a definition, compiling it, and validating data against it.

A definition (``forms/form.schema.json``) pairs a JSON Schema (draft 2020-12) for the data
with a UI schema. Conditional visibility is a JSON Schema condition over the submission, so
the server enforces exactly what the browser shows: :func:`effective_schema` turns every
``visible_when`` into ``if``/``then``/``else`` — a visible field marked
``required_when_visible`` must be present, a hidden field must be absent — and, unless the form
allows them, refuses unknown fields with ``unevaluatedProperties: false``.

Schemas never reach outside the document: a ``$ref`` or ``$dynamicRef`` must resolve to the
document itself or to a resource embedded in it (its own ``$id``), and the validator's
registry retrieves nothing, so no schema is ever fetched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from re import _parser as _regex_parser  # type: ignore[attr-defined]
from typing import Any, cast
from urllib.parse import urldefrag, urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry

META_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "forms" / "form.schema.json"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
FORMATS = ("date", "date-time", "email", "uri", "uuid")
# Where a form's schema lives unless it names itself with its own "$id".
FORM_BASE_URI = "https://form.nentang.invalid/schema"


@dataclass(frozen=True)
class FieldError:
    """One problem, at a JSON Pointer into the checked document, in Vietnamese and English."""

    pointer: str
    vi: str
    en: str
    keyword: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.en, "detail_vi": self.vi,
                "keyword": self.keyword}


class DefinitionError(Exception):
    """A definition that cannot be used, with every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.pointer}: {e.en}" for e in errors))
        self.errors = errors


@cache
def _meta_validator() -> Draft202012Validator:
    schema = json.loads(META_SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=_closed_registry())


def _closed_registry() -> Registry[Any]:
    """A registry that knows only what it is given (its default ``retrieve`` refuses every
    URI): nothing is ever fetched."""
    return Registry()


def json_pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _walk_refs(node: Any, base: str, path: list[Any]) -> Iterator[tuple[str, str, list[Any]]]:
    """Every ``$ref``/``$dynamicRef`` with the base URI it resolves against."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        for keyword in ("$ref", "$dynamicRef"):
            if isinstance(node.get(keyword), str):
                yield node[keyword], base, [*path, keyword]
        for key, value in node.items():
            if key not in ("const", "enum", "default", "examples"):
                yield from _walk_refs(value, base, [*path, key])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk_refs(item, base, [*path, index])


def _embedded_ids(node: Any, base: str) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
            found.add(urldefrag(base).url)
        for key, value in node.items():
            if key not in ("const", "enum", "default", "examples"):
                found |= _embedded_ids(value, base)
    elif isinstance(node, list):
        for item in node:
            found |= _embedded_ids(item, base)
    return found


def _target(base: str, ref: str) -> str:
    """The resource a reference names (a bare fragment stays in the current resource, which
    ``urljoin`` cannot express for non-hierarchical ids such as ``urn:``)."""
    return urldefrag(base).url if ref.startswith("#") else urldefrag(urljoin(base, ref)).url


def _external_refs(schema: dict[str, Any]) -> list[FieldError]:
    known = _embedded_ids(schema, FORM_BASE_URI) | {FORM_BASE_URI}
    errors = []
    for ref, base, path in _walk_refs(schema, FORM_BASE_URI, []):
        target = _target(base, ref)
        if target not in known:
            text = f"'{ref}' points outside the form; only references inside it are allowed."
            errors.append(FieldError(json_pointer(["schema", *path]),
                                     f"'{ref}' trỏ ra ngoài biểu mẫu; chỉ được tham chiếu "
                                     "bên trong biểu mẫu.", text, "$ref"))
    return errors


_UNBOUNDED = 100  # a repeat allowing more than this many counts as unbounded


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` may not be used, or None. Refuses patterns that do not compile and
    nested unbounded repeats such as ``(a+)+``, whose backtracking grows exponentially with
    the input: a submission must never be able to stall a worker."""
    try:
        parsed = _regex_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return "It is not a valid regular expression."

    if _nested_unbounded(parsed, inside=False):
        return ("Nested unbounded repeats (such as (a+)+) can take exponential time; "
                "rewrite the pattern without them.")
    return None


_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _children(op: str, arg: Any) -> list[Any]:
    """The sub-sequences of a parsed regex node that can hold repeats."""
    if op == "SUBPATTERN":
        return [arg[-1]]
    if op == "BRANCH":
        return list(arg[1])
    if op in ("ASSERT", "ASSERT_NOT", "ATOMIC_GROUP"):
        return [arg[-1]]
    return []


_SINGLE_CHARACTERS = frozenset({"LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY"})


def _delimited(body: Any) -> bool:
    """Whether each pass of a repeat must consume a character outside any inner repeat (as
    the ``-`` in ``(-[0-9]+)*``), which keeps the passes from splitting the input in
    exponentially many ways. A heuristic: it does not look at which characters."""
    for op, arg in body:
        name = str(op)
        if name in _SINGLE_CHARACTERS:
            return True
        if name == "SUBPATTERN" and _delimited(arg[-1]):
            return True
    return False


def _nested_unbounded(items: Any, *, inside: bool) -> bool:
    """An unbounded repeat inside another undelimited unbounded repeat (``(a+)+``,
    ``(\\w+\\s?)*``): the classic exponential backtracking shape."""
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _low, high, body = arg
            unbounded = high == _regex_parser.MAXREPEAT or high > _UNBOUNDED
            if unbounded and inside:
                return True
            if _nested_unbounded(body, inside=inside or (unbounded and not _delimited(body))):
                return True
        elif any(_nested_unbounded(child, inside=inside) for child in _children(name, arg)):
            return True
    return False


def _patterns(node: Any, path: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Every regular expression in a schema: ``pattern`` values and ``patternProperties``
    keys."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"], [*path, "pattern"]
        if isinstance(node.get("patternProperties"), dict):
            for key in node["patternProperties"]:
                yield key, [*path, "patternProperties", key]
        for key, value in node.items():
            if key not in ("const", "enum", "default", "examples"):
                yield from _patterns(value, [*path, key])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _patterns(item, [*path, index])


def regex_problems(sources: Iterable[tuple[Any, list[Any]]]) -> list[FieldError]:
    """Problems with the regular expressions in schemas given as ``(schema, path to it)``."""
    errors = []
    for node, base in sources:
        for pattern, path in _patterns(node, base):
            problem = regex_problem(pattern)
            if problem:
                errors.append(FieldError(json_pointer(path), "Biểu thức chính quy không được phép: "
                                         "có thể làm treo hệ thống hoặc không hợp lệ.",
                                         problem, "pattern"))
    return errors


def _regex_problems(definition: dict[str, Any]) -> list[FieldError]:
    return regex_problems([(definition["schema"], ["schema"])] + [
        (field["visible_when"], ["ui_schema", "fields", name, "visible_when"])
        for name, field in definition["ui_schema"]["fields"].items() if "visible_when" in field])


def _properties(definition: dict[str, Any]) -> dict[str, Any]:
    props = definition["schema"].get("properties", {})
    return props if isinstance(props, dict) else {}


def _ui_consistency(definition: dict[str, Any]) -> list[FieldError]:
    props = set(_properties(definition))
    ui = definition["ui_schema"]
    errors = []
    for name in sorted(props - set(ui["fields"])):
        errors.append(FieldError(
            f"/ui_schema/fields/{name}", f"Trường '{name}' chưa có nhãn hiển thị.",
            f"Field '{name}' has no UI entry (label).", "ui"))
    for name in sorted(set(ui["fields"]) - props):
        errors.append(FieldError(
            f"/ui_schema/fields/{name}", f"'{name}' không phải là trường của dữ liệu.",
            f"'{name}' is not a property of the data schema.", "ui"))
    listed = [("order", i, n) for i, n in enumerate(ui.get("order", []))] + [
        (f"sections/{s}/fields", i, n) for s, section in enumerate(ui.get("sections", []))
        for i, n in enumerate(section["fields"])]
    for where, index, name in listed:
        if name not in props:
            errors.append(FieldError(
                f"/ui_schema/{where}/{index}", f"'{name}' không phải là trường của dữ liệu.",
                f"'{name}' is not a property of the data schema.", "ui"))
    placed: set[str] = set()
    for where, index, name in listed:
        if where.startswith("sections/"):
            if name in placed:
                errors.append(FieldError(
                    f"/ui_schema/{where}/{index}", f"Trường '{name}' đã thuộc một mục khác.",
                    f"'{name}' is already in another section.", "ui"))
            placed.add(name)
    errors += _option_label_problems(definition)
    for name, field in ui["fields"].items():
        condition = field.get("visible_when")
        if condition is None:
            continue
        try:
            Draft202012Validator.check_schema(condition)
        except SchemaError as exc:
            errors.append(FieldError(f"/ui_schema/fields/{name}/visible_when",
                                     "Điều kiện hiển thị không hợp lệ.",
                                     f"Invalid condition: {exc.message}", "visible_when"))
    return errors


def _enum_values(schema: Any, root: dict[str, Any]) -> list[Any] | None:
    """The values a field (or each item of an array field) may take, when the schema lists
    them directly or through a local ``$ref``; None when it does not say."""
    for _ in range(8):
        if not isinstance(schema, dict):
            return None
        if "enum" in schema and isinstance(schema["enum"], list):
            return list(schema["enum"])
        if "const" in schema:
            return [schema["const"]]
        if schema.get("type") == "array" and "items" in schema:
            schema = schema["items"]
        elif isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
            target: Any = root
            for part in schema["$ref"][2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            schema = target
        else:
            return None
    return None


def _option_label_problems(definition: dict[str, Any]) -> list[FieldError]:
    """A field with option labels has one for every value it allows (so a mistyped key shows
    up as a missing label). Labels of values the field no longer allows are ignored: a variant
    that narrows the options may keep its parent's labels."""
    errors = []
    properties = _properties(definition)
    for name, field in definition["ui_schema"]["fields"].items():
        labels = field.get("option_labels")
        if not labels or name not in properties:
            continue
        values = _enum_values(properties[name], definition["schema"])
        if values is None:
            continue
        allowed = {v if isinstance(v, str) else json.dumps(v) for v in values}
        for value in sorted(allowed - set(labels)):
            errors.append(FieldError(
                f"/ui_schema/fields/{name}/option_labels",
                f"Giá trị '{value}' của trường '{name}' chưa có nhãn.",
                f"Value '{value}' of field '{name}' has no label.", "ui"))
    return errors


def check(definition: Any) -> dict[str, Any]:
    """Return ``definition`` if it can be used, else raise :class:`DefinitionError` listing
    every problem: its shape, the data schema itself, references leaving the document, and
    the UI schema's agreement with the data schema."""
    shape = [FieldError(json_pointer(e.absolute_path), "Định nghĩa biểu mẫu không hợp lệ.",
                        e.message, str(e.validator))
             for e in _meta_validator().iter_errors(definition)]
    if shape:
        raise DefinitionError(sorted(shape, key=lambda e: e.pointer))
    try:
        Draft202012Validator.check_schema(definition["schema"])
    except SchemaError as exc:
        raise DefinitionError([FieldError(
            json_pointer(["schema", *exc.absolute_path]), "Lược đồ dữ liệu không hợp lệ.",
            f"Invalid JSON Schema: {exc.message}", "schema")]) from None
    problems = (_external_refs(definition["schema"]) + _ui_consistency(definition)
                + _regex_problems(definition))
    if problems:
        raise DefinitionError(problems)
    return dict(definition)


def effective_schema(definition: dict[str, Any]) -> dict[str, Any]:
    """The schema the server validates submissions with (see the module docstring)."""
    rules: list[dict[str, Any]] = []
    for name, field in definition["ui_schema"]["fields"].items():
        condition = field.get("visible_when")
        if condition is None:
            continue
        rule: dict[str, Any] = {"if": condition, "else": {"not": {"required": [name]}}}
        if field.get("required_when_visible"):
            rule["then"] = {"required": [name]}
        rules.append(rule)
    # The form's schema keeps its own identity inside the wrapper, so its "#/$defs/..."
    # references still mean the form's own definitions.
    data_schema = {"$id": FORM_BASE_URI, **definition["schema"]}
    effective: dict[str, Any] = {"$schema": DRAFT_2020_12, "allOf": [data_schema, *rules]}
    if not definition.get("allow_unknown_fields", False):
        effective["unevaluatedProperties"] = False
    return effective


class FormValidator:
    """A compiled validator for one form version (build once, reuse for every submission)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self._declared = declared_fields(definition)
        self._validator = Draft202012Validator(
            effective_schema(definition), registry=_closed_registry(),
            format_checker=Draft202012Validator.FORMAT_CHECKER)

    def errors(self, data: Any) -> list[FieldError]:
        """Every problem with ``data``, one per pointer and keyword, sorted by pointer."""
        found = {(e.pointer, e.keyword): e for e in schema_errors(self._validator, data)}
        if any(e.keyword != "unknown-field" for e in found.values()):
            # A subschema that fails drops its annotations (JSON Schema 2020-12 §7.7.1.1), so
            # unevaluatedProperties then also names fields the form does declare: keep only
            # the truly unknown ones.
            found = {k: e for k, e in found.items() if e.keyword != "unknown-field"
                     or e.pointer.count("/") > 1 or e.pointer[1:] not in self._declared}
        return sorted(found.values(), key=lambda e: (e.pointer, e.keyword))


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[FieldError]:
    """What is wrong with ``instance``, explained per field (first per pointer and keyword),
    in Vietnamese and English, never quoting the value."""
    found: dict[tuple[str, str], FieldError] = {}
    for error in validator.iter_errors(instance):
        for item in _explain(error):
            found.setdefault((item.pointer, item.keyword), item)
    return list(found.values())


def declared_fields(definition: dict[str, Any]) -> frozenset[str]:
    """Top-level property names the form declares, in its root or root-level applicators."""
    names = set(definition["ui_schema"]["fields"])
    stack: list[Any] = [definition["schema"]]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        names.update(node.get("properties", {}) if isinstance(node.get("properties"), dict)
                     else ())
        for keyword in ("allOf", "anyOf", "oneOf"):
            stack.extend(node.get(keyword, []) if isinstance(node.get(keyword), list) else [])
        stack.extend(node[k] for k in ("if", "then", "else") if k in node)
        if isinstance(node.get("dependentSchemas"), dict):
            stack.extend(node["dependentSchemas"].values())
    return frozenset(names)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: those under combinators (allOf, if/then/else)."""
    if error.context and error.validator in ("allOf", "anyOf", "oneOf"):
        for child in error.context:
            yield from _leaves(child)
    else:
        yield error


def _explain(error: ValidationError) -> Iterator[FieldError]:
    for leaf in _leaves(error):
        path = list(leaf.absolute_path)
        keyword = str(leaf.validator)
        if keyword == "required":
            instance = leaf.instance if isinstance(leaf.instance, dict) else {}
            for name in cast(list[str], leaf.validator_value):
                if name not in instance:
                    yield FieldError(json_pointer([*path, name]), "Trường này là bắt buộc.",
                                     "This field is required.", "required")
        elif keyword in ("unevaluatedProperties", "additionalProperties") and (
                leaf.validator_value is False):
            for name in _unexpected(leaf):
                yield FieldError(json_pointer([*path, name]), "Biểu mẫu không có trường này.",
                                 "The form has no such field.", "unknown-field")
        elif keyword == "not" and isinstance(leaf.validator_value, dict) and list(
                leaf.validator_value) == ["required"]:
            for name in leaf.validator_value["required"]:
                yield FieldError(json_pointer([*path, name]),
                                 "Trường này đang bị ẩn nên không được có dữ liệu.",
                                 "This field is hidden here and must be empty.", "hidden")
        else:
            vi, en = _message(leaf)
            yield FieldError(json_pointer(path), vi, en, keyword)


def _unexpected(error: ValidationError) -> list[str]:
    """The properties an ``unevaluatedProperties``/``additionalProperties`` error is about:
    jsonschema names them (quoted) in its message, and only there."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(name for name in instance if repr(name) in error.message)


_MESSAGES: dict[str, tuple[str, str]] = {
    "type": ("Sai kiểu dữ liệu (cần {value}).", "Wrong type (expected {value})."),
    "enum": ("Giá trị không nằm trong danh sách cho phép.", "Not one of the allowed values."),
    "const": ("Giá trị không đúng.", "Not the expected value."),
    "format": ("Sai định dạng {value}.", "Not a valid {value}."),
    "pattern": ("Giá trị không đúng mẫu quy định.", "Does not match the required pattern."),
    "minLength": ("Cần ít nhất {value} ký tự.", "At least {value} characters."),
    "maxLength": ("Tối đa {value} ký tự.", "At most {value} characters."),
    "minimum": ("Giá trị nhỏ nhất là {value}.", "The smallest allowed value is {value}."),
    "maximum": ("Giá trị lớn nhất là {value}.", "The largest allowed value is {value}."),
    "exclusiveMinimum": ("Giá trị phải lớn hơn {value}.", "Must be greater than {value}."),
    "exclusiveMaximum": ("Giá trị phải nhỏ hơn {value}.", "Must be less than {value}."),
    "minItems": ("Cần ít nhất {value} mục.", "At least {value} items."),
    "maxItems": ("Tối đa {value} mục.", "At most {value} items."),
    "uniqueItems": ("Các mục không được trùng nhau.", "Items must not repeat."),
    "multipleOf": ("Giá trị phải là bội số của {value}.", "Must be a multiple of {value}."),
    "minProperties": ("Cần ít nhất {value} trường.", "At least {value} fields."),
    "maxProperties": ("Tối đa {value} trường.", "At most {value} fields."),
}


def _message(error: ValidationError) -> tuple[str, str]:
    """Messages name the rule, never the submitted value: a value may be personal data, and
    errors travel to clients and may be kept in their logs."""
    keyword, value = str(error.validator), error.validator_value
    vi, en = _MESSAGES.get(keyword, ("Giá trị không hợp lệ.",
                                     f"Invalid value (rule '{keyword}')."))
    shown = value if isinstance(value, (int, float, str)) and len(str(value)) <= 40 else "…"
    return vi.format(value=shown), en.format(value=shown)
