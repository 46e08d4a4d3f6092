"""Checking that a form variant only narrows its parent form.

A tenant may publish a *variant* of a form an ancestor publishes: it may add fields, narrow
what a field accepts, and change labels, help texts, widgets, sections and order, but it may
not remove a field of the parent nor accept data the parent refuses.
:func:`check_variant` explains every violation, with a JSON Pointer into the variant.

Design goal: soundness. Every submission the variant accepts, restricted to the parent's
fields (the top-level properties of its schema), is accepted by the parent: the variant can
never let through data that its parent would refuse. The check is structural and
conservative; it may refuse a variant that only narrows in a way it cannot prove, but it never
accepts one it has not proved.

How it proves it, place by place (recursively through ``properties``, ``patternProperties``,
``additionalProperties``, ``items`` and ``prefixItems``):

- A variant value list (``enum``/``const``) is checked value by value with the server's own
  validator against the parent's subschema, so any subset of what the parent accepts passes.
- Otherwise the variant must keep, or tighten, each of the parent's ``type``, ``enum``,
  ``const``, ``format``, ``pattern`` (kept identical: regular expressions are not compared
  with each other), length, item, property and numeric bounds (``minimum`` and
  ``exclusiveMinimum`` may stand for each other), ``multipleOf``, ``uniqueItems``,
  ``required`` and ``additionalProperties``. It may add any keyword (a ``pattern``, a
  ``format``, an ``allOf`` entry...): a conjunction only narrows.
- Keyword families only matter for the types the variant allows: ``maxLength`` need not be
  kept on a field the variant turned from ``["string", "null"]`` into ``null``.
- ``$ref`` is followed on both sides (``#/$defs/...``, other JSON pointers, ``$anchor`` and
  embedded ``$id`` resources), so a variant may narrow a shared definition or point to
  another one; errors then point into the variant's ``$defs``. Recursive definitions are
  compared coinductively.
- Anything else (``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else``,
  ``contains``, ``propertyNames``, ``dependent*``, ``$dynamicRef``, ``unevaluated*`` next
  to in-place applicators, unknown keywords) must be kept *equal* to the parent's, after
  resolving references and ignoring annotations such as ``title`` or ``description``: the
  message asks to keep the parent's definition. ``allOf`` may gain entries, since every
  entry the parent has is kept.
- No object may lose a property, nor turn it into ``false``, even where that would only
  narrow: a variant keeps every field of its parent. A nested object may not gain a property
  where the parent's ``additionalProperties`` refuses it. Top-level fields differ: the
  variant's own
  fields are dropped when its data is restricted to the parent's, so it may add them, unless
  the parent's rules mention a field of that name or depend on the whole set of fields
  (``minProperties``, or ``additionalProperties`` in a condition), as the restriction would
  then change what those rules see. For the same reason the parent's top-level
  ``additionalProperties`` and ``unevaluatedProperties`` do not bind the variant: every field
  left after the restriction is one the parent declares.

Visibility (``ui_schema.fields``), for each field of the parent:

- A field the parent always shows and requires may not gain ``visible_when``: a hidden field
  must be absent, so the field would either stop being collected or make the form impossible
  to submit. An always-shown optional field may gain a condition (absent when hidden is only
  narrower), and ``required_when_visible`` with it.
- A conditional field must keep its condition. Dropping it is a widening whether or not the
  field is required when visible: the parent refuses any data in the field while it is
  hidden, the variant would accept it. ``required_when_visible`` must be kept when the parent
  sets it, with the identical condition. A field the parent does not require when visible may
  instead use a condition that provably implies the parent's (it is shown less often).

Policy beyond soundness:

- ``allow_unknown_fields``: a parent that refuses unknown fields binds its variants, since
  collecting undeclared data defeats the parent's data minimisation; a variant declares the
  fields it adds instead. A parent that allows unknown fields leaves the choice to the
  variant. (Unknown fields fall outside the restriction above, so soundness alone does not
  decide this.)
- ``personal_data`` may be raised but never lowered: it drives masking (Decree 13/2023).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.forms.definitions import FieldError, effective_schema, json_pointer

__all__ = ["check_variant"]

Path = tuple[str | int, ...]

# The base URI given to the effective schema while checking; the server validates it without
# one, which resolves its relative references within it just the same.
_WRAPPER_URI = "urn:nentang:form-variant"
# Where effective_schema() puts the form's own data schema.
_DATA_SCHEMA: Path = ("allOf", 0)

_ANNOTATIONS = frozenset({
    "title", "description", "$comment", "default", "examples", "deprecated", "readOnly",
    "writeOnly", "contentMediaType", "contentEncoding", "contentSchema", "$schema", "$id",
    "$anchor", "$defs"})
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_SINGLES = frozenset({
    "items", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "not", "if",
    "then", "else", "contains", "propertyNames", "contentSchema"})
# Applicators whose annotations unevaluatedProperties/unevaluatedItems take into account.
_IN_PLACE = frozenset({
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef",
    "dependentSchemas"})

_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
_FAMILIES: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "number": frozenset({"number", "integer"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
}
# Keywords whose narrowing this module proves.
_HANDLED = frozenset({
    "type", "enum", "const", "$ref", "format", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "prefixItems",
    "minItems", "maxItems", "uniqueItems", "properties", "patternProperties",
    "additionalProperties", "required", "minProperties", "maxProperties"})
# Keywords that must be kept equal, by the instance type they apply to ("" for any); a group
# is compared as a whole. Any other keyword is kept equal on its own, whatever the type.
_KEPT: dict[str, tuple[str, tuple[str, ...]]] = {
    "if": ("", ("if", "then", "else")),
    "then": ("", ("if", "then", "else")),
    "else": ("", ("if", "then", "else")),
    "contains": ("array", ("contains", "minContains", "maxContains")),
    "minContains": ("array", ("contains", "minContains", "maxContains")),
    "maxContains": ("array", ("contains", "minContains", "maxContains")),
    "propertyNames": ("object", ("propertyNames",)),
    "dependentRequired": ("object", ("dependentRequired",)),
    "dependentSchemas": ("object", ("dependentSchemas",)),
}
# Keywords of a condition over the whole submission that look at which fields it has.
_KEY_SET_KEYWORDS = ("additionalProperties", "unevaluatedProperties", "propertyNames",
                     "patternProperties", "minProperties", "maxProperties")
_PERSONAL_DATA = {"none": 0, "basic": 1, "sensitive": 2}
_PERSONAL_DATA_VI = {"none": "không phải dữ liệu cá nhân", "basic": "dữ liệu cá nhân cơ bản",
                     "sensitive": "dữ liệu cá nhân nhạy cảm"}


def check_variant(parent: dict[str, Any], variant: dict[str, Any]) -> list[FieldError]:
    """Every way ``variant`` fails to narrow ``parent`` (both already passed
    :func:`app.forms.definitions.check`); an empty list means the variant may be published.
    Each error has a JSON Pointer into the variant, a Vietnamese and an English message, and
    a ``variant-*`` keyword."""
    checker = _Checker(_Document(parent), _Document(variant))
    errors = [*checker.schema(), *checker.added_fields(), *checker.visibility(),
              *checker.policy()]
    unique: dict[tuple[str, str, str], FieldError] = {}
    for error in errors:
        unique.setdefault((error.pointer, error.keyword, error.en), error)
    return list(unique.values())


@dataclass(frozen=True)
class _Node:
    """A subschema and where it sits in its document (the effective schema)."""

    value: Any
    path: Path

    def at(self, *keys: str | int) -> _Node:
        value = self.value
        for key in keys:
            value = value[key]
        return _Node(value, self.path + keys)

    def get(self, keyword: str) -> _Node:
        """The subschema under ``keyword``; ``true`` (anything) when absent."""
        value = self.value.get(keyword, True) if isinstance(self.value, dict) else True
        return _Node(value, (*self.path, keyword))

    def without(self, *keywords: str) -> _Node:
        return _Node({k: v for k, v in self.value.items() if k not in keywords}, self.path)


class _Document:
    """A definition's effective schema, indexed to resolve references the way the server
    does."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.root: dict[str, Any] = {"$id": _WRAPPER_URI, **effective_schema(definition)}
        self.fields: dict[str, Any] = definition["ui_schema"]["fields"]
        self.resources: dict[str, _Node] = {}
        self.anchors: dict[tuple[str, str], _Node] = {}
        self.bases: dict[Path, str] = {}
        self.dynamic: list[str] = []
        self._index(self.root, "", ())
        self.conditions: dict[str, _Node] = {}
        for index, rule in enumerate(self.root["allOf"][1:], start=1):
            for name, field in self.fields.items():
                if field.get("visible_when") is rule["if"]:
                    self.conditions[name] = _Node(rule["if"], ("allOf", index, "if"))
        self.registry: Registry[Any] = Registry().with_resource(
            _WRAPPER_URI, Resource.from_contents(self.root, default_specification=DRAFT202012)
        ).crawl()
        self.data = _Node(self.root["allOf"][0], _DATA_SCHEMA)
        self.properties: dict[str, Any] = definition["schema"].get("properties", {})

    def _index(self, node: Any, base: str, path: Path) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                base = urldefrag(urljoin(base, node["$id"])).url
                self.resources.setdefault(base, _Node(node, path))
            self.bases[path] = base
            for keyword in ("$anchor", "$dynamicAnchor"):
                if isinstance(node.get(keyword), str):
                    self.anchors.setdefault((base, node[keyword]), _Node(node, path))
            if "$dynamicAnchor" in node:
                self.dynamic.append(json.dumps(node, sort_keys=True, ensure_ascii=False))
            for key, value in node.items():
                if key not in _DATA_KEYWORDS:
                    self._index(value, base, (*path, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self._index(item, base, (*path, index))

    def resolve(self, node: _Node, keyword: str = "$ref") -> _Node | None:
        """The target of ``node``'s reference, or None if it cannot be found."""
        ref = node.value.get(keyword)
        if not isinstance(ref, str):
            return None
        base = self.bases.get(node.path, _WRAPPER_URI)
        if ref.startswith("#"):
            uri, fragment = base, ref[1:]
        else:
            uri, fragment = urldefrag(urljoin(base, ref))
        fragment = unquote(fragment)
        start = self.resources.get(uri)
        if start is None:
            return None
        if fragment and not fragment.startswith("/"):
            return self.anchors.get((uri, fragment))
        target = start
        for token in fragment.split("/")[1:]:
            key = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target.value, dict) and key in target.value:
                target = target.at(key)
            elif isinstance(target.value, list) and key.isdigit() and int(key) < len(
                    target.value):
                target = target.at(int(key))
            else:
                return None
        return target

    def accepts(self, node: _Node, value: Any) -> bool:
        """Whether the server's validator accepts ``value`` at ``node``."""
        pointer = json_pointer(node.path)
        validator = Draft202012Validator(
            {"$ref": f"{_WRAPPER_URI}#{pointer}"}, registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER)
        return bool(validator.is_valid(value))

    def pointer(self, path: Path) -> str:
        """A pointer into the definition for a path in the effective schema."""
        if path[:2] == _DATA_SCHEMA:
            return json_pointer(("schema", *path[2:]))
        for name, condition in self.conditions.items():
            if path[:3] == condition.path:
                return json_pointer(("ui_schema", "fields", name, "visible_when", *path[3:]))
        return json_pointer(path)


class _Checker:
    def __init__(self, parent: _Document, variant: _Document) -> None:
        self.p = parent
        self.v = variant
        # Pairs of definitions being compared, and those compared already (whose errors, if
        # any, are in the result): each pair is reported once, and recursion ends.
        self._narrowing: set[tuple[Path, Path, bool]] = set()
        self._narrowed: set[tuple[Path, Path, bool]] = set()
        self._comparing: set[tuple[Path, Path]] = set()

    # --- the data schema ---------------------------------------------------------------

    def schema(self) -> list[FieldError]:
        return self.narrow(self.p.data, self.v.data, None, root=True)

    def narrow(self, p: _Node, v: _Node, subject: str | None, *,
               root: bool = False) -> list[FieldError]:
        """Why ``v`` may accept an instance ``p`` refuses (nothing if it cannot). At the
        root, instances are the submission restricted to the parent's fields."""
        if _trivial(p.value) is True or v.value is False:
            return []
        if p.value is False:
            vi, en = _subject(subject)
            return [self.error(v, "variant-widened",
                               f"{vi}: biểu mẫu cấp trên không chấp nhận giá trị nào ở đây.",
                               f"{en}: the parent accepts no value here; neither may the "
                               "variant.")]
        if v.value is True:
            v = _Node({}, v.path)
        p_target = self.p.resolve(p)
        v_target = self.v.resolve(v)
        if p_target is None and v_target is None:
            return self._narrow_node(p, v, subject, root)
        if p_target is not None:
            rest = self.narrow(p.without("$ref"), v.without("$ref") if v_target else v,
                               subject, root=root)
            return [*self._visit(p_target, v_target or v, subject, root), *rest]
        assert v_target is not None
        # v accepts no more than its target, nor more than its own other keywords: either
        # may prove it. A proof abandoned must not count its pairs as compared.
        before = set(self._narrowed)
        found = self._visit(p, v_target, subject, root)
        if not found:
            return []
        after = set(self._narrowed)
        if not self.narrow(p, v.without("$ref"), subject, root=root):
            self._narrowed = before
            return []
        self._narrowed = after
        return found

    def _visit(self, p: _Node, v: _Node, subject: str | None, root: bool) -> list[FieldError]:
        key = (p.path, v.path, root)
        if key in self._narrowing or key in self._narrowed:
            return []  # compared already, or recursive: assumed to narrow until shown otherwise
        self._narrowing.add(key)
        try:
            return self.narrow(p, v, subject, root=root)
        finally:
            self._narrowing.discard(key)
            self._narrowed.add(key)

    def _narrow_node(self, p: _Node, v: _Node, subject: str | None,
                     root: bool) -> list[FieldError]:
        if root:
            # Moot on the restricted submission: the parent's properties evaluate every field.
            p = p.without("unevaluatedProperties", "unevaluatedItems")
        p_node = _normalised(p)
        if p_node is None:
            if self.same(p, v):
                return []
            vi, en = _subject(subject)
            return [self.error(v, "variant-changed",
                               f"{vi}: phải giữ nguyên định nghĩa của biểu mẫu cấp trên.",
                               f"{en}: keep the parent's definition of this schema unchanged "
                               "(its unevaluated* keywords depend on its other rules).")]
        p = p_node
        v = _normalised(v) or v.without("unevaluatedProperties", "unevaluatedItems")
        values = _values(v.value)
        if values is not None:
            return self._values(p, v, values, subject)
        errors: list[FieldError] = []
        if "const" in p.value or "enum" in p.value:
            keyword = "enum" if "enum" in p.value else "const"
            allowed = p.value.get("enum", [p.value.get("const")])
            vi, en = _subject(subject)
            errors.append(self.error(
                v.get(keyword), "variant-widened",
                f"{vi}: biểu mẫu cấp trên chỉ chấp nhận {_show(allowed)}; biến thể chỉ được "
                "giữ nguyên hoặc thu hẹp danh sách này.",
                f"{en}: the parent accepts only {_show(allowed)}; the variant must keep these "
                "values or a subset of them."))
        errors += self._type(p, v, subject)
        v_types = instance_types(v.value)

        def applies(family: str) -> bool:
            return not family or v_types is None or bool(v_types & _FAMILIES[family])

        if applies("string"):
            errors += self._string(p, v, subject)
        if applies("number"):
            errors += self._numbers(p, v, subject, v_types)
        if applies("array"):
            errors += self._arrays(p, v, subject)
        if applies("object"):
            errors += self._objects(p, v, subject, root)
        errors += self._kept(p, v, subject, applies)
        return errors

    def _values(self, p: _Node, v: _Node, values: list[Any],
                subject: str | None) -> list[FieldError]:
        refused = [value for value in values if not self.p.accepts(p, value)]
        if not refused:
            return []
        vi, en = _subject(subject)
        return [self.error(
            v.get("const" if "const" in v.value else "enum"), "variant-widened",
            f"{vi}: biểu mẫu cấp trên không chấp nhận {_show(refused)}; biến thể chỉ được "
            "giữ nguyên hoặc thu hẹp các giá trị được phép.",
            f"{en}: the parent does not accept {_show(refused)}; a variant may only keep or "
            "narrow the values the parent accepts.")]

    def _type(self, p: _Node, v: _Node, subject: str | None) -> list[FieldError]:
        if "type" not in p.value:
            return []
        allowed = instance_types(p.value) or _TYPES
        v_types = instance_types(v.value)
        extra = (_TYPES if v_types is None else v_types) - allowed
        if not extra:
            return []
        vi, en = _subject(subject)
        declared = p.value["type"]
        names = ", ".join([declared] if isinstance(declared, str) else declared)
        more_vi = "kiểu khác" if v_types is None else "kiểu " + ", ".join(sorted(extra))
        more_en = "any type" if v_types is None else ", ".join(sorted(extra))
        return [self.error(v.get("type"), "variant-widened",
                           f"{vi}: biểu mẫu cấp trên chỉ chấp nhận kiểu {names}; biến thể "
                           f"không được chấp nhận thêm {more_vi}.",
                           f"{en}: the parent accepts only type {names}; the variant must not "
                           f"also accept {more_en}.")]

    def _string(self, p: _Node, v: _Node, subject: str | None) -> list[FieldError]:
        errors: list[FieldError] = []
        vi, en = _subject(subject)
        if "format" in p.value and v.value.get("format") != p.value["format"]:
            fmt = p.value["format"]
            errors.append(self.error(
                v.get("format"), "variant-widened",
                f"{vi}: phải giữ định dạng (format) '{fmt}' như biểu mẫu cấp trên.",
                f"{en}: the parent requires format '{fmt}'; the variant must keep it."))
        if "pattern" in p.value and v.value.get("pattern") != p.value["pattern"]:
            pattern = p.value["pattern"]
            errors.append(self.error(
                v.get("pattern"), "variant-widened",
                f"{vi}: phải giữ nguyên mẫu (pattern) {pattern!r} của biểu mẫu cấp trên.",
                f"{en}: the parent requires the pattern {pattern!r}; the variant must keep "
                "the same pattern."))
        errors += self._bound(p, v, subject, "minLength", upper=False)
        errors += self._bound(p, v, subject, "maxLength", upper=True)
        return errors

    def _numbers(self, p: _Node, v: _Node, subject: str | None,
                 v_types: frozenset[str] | None) -> list[FieldError]:
        errors: list[FieldError] = []
        for inclusive, exclusive, upper in (("minimum", "exclusiveMinimum", False),
                                            ("maximum", "exclusiveMaximum", True)):
            v_inclusive, v_exclusive = v.value.get(inclusive), v.value.get(exclusive)

            def tighter(a: Any, b: Any, upper: bool = upper) -> bool:
                return a is not None and (a <= b if upper else a >= b)

            def strictly(a: Any, b: Any, upper: bool = upper) -> bool:
                return a is not None and (a < b if upper else a > b)

            for keyword in (inclusive, exclusive):
                if keyword not in p.value:
                    continue
                bound = p.value[keyword]
                if keyword == inclusive:
                    kept = tighter(v_inclusive, bound) or tighter(v_exclusive, bound)
                else:
                    kept = tighter(v_exclusive, bound) or strictly(v_inclusive, bound)
                if not kept:
                    errors.append(self._bound_error(v, subject, keyword, bound,
                                                    v.value.get(keyword), upper))
        if "multipleOf" in p.value:
            step = p.value["multipleOf"]
            own = v.value.get("multipleOf")
            integers = v_types is not None and v_types <= {"integer"}
            if not ((own is not None and _multiple(own, step))
                    or (integers and _multiple(1, step))):
                vi, en = _subject(subject)
                errors.append(self.error(
                    v.get("multipleOf"), "variant-widened",
                    f"{vi}: biểu mẫu cấp trên yêu cầu giá trị là bội số của {step}; biến thể "
                    f"phải đặt multipleOf là bội số của {step}.",
                    f"{en}: the parent requires a multiple of {step}; the variant's "
                    f"multipleOf must be a multiple of {step}."))
        return errors

    def _arrays(self, p: _Node, v: _Node, subject: str | None) -> list[FieldError]:
        errors = [*self._bound(p, v, subject, "minItems", upper=False),
                  *self._bound(p, v, subject, "maxItems", upper=True)]
        if p.value.get("uniqueItems") is True and v.value.get("uniqueItems") is not True:
            vi, en = _subject(subject)
            errors.append(self.error(
                v.get("uniqueItems"), "variant-widened",
                f"{vi}: biểu mẫu cấp trên không cho phép các mục trùng nhau; biến thể phải "
                "giữ uniqueItems.",
                f"{en}: the parent refuses duplicate items; the variant must keep "
                "uniqueItems."))
        p_prefix = p.value.get("prefixItems", [])
        v_prefix = v.value.get("prefixItems", [])
        for index in range(max(len(p_prefix), len(v_prefix))):
            p_item = p.at("prefixItems", index) if index < len(p_prefix) else p.get("items")
            v_item = v.at("prefixItems", index) if index < len(v_prefix) else v.get("items")
            errors += self.narrow(p_item, v_item, f"{subject or ''}[{index}]")
        errors += self.narrow(p.get("items"), v.get("items"), f"{subject or ''}[]")
        return errors

    def _objects(self, p: _Node, v: _Node, subject: str | None,
                 root: bool) -> list[FieldError]:
        errors: list[FieldError] = []
        p_required = p.value.get("required", [])
        v_required = v.value.get("required", [])
        for name in p_required:
            if name not in v_required:
                vi, en = _subject(_join(subject, name))
                errors.append(self.error(
                    v.get("required"), "variant-optional",
                    f"{vi} là bắt buộc ở biểu mẫu cấp trên; biến thể phải giữ trường này "
                    "trong danh sách bắt buộc (required).",
                    f"{en} is required by the parent form; the variant must keep it in "
                    "'required'."))
        p_props: dict[str, Any] = p.value.get("properties", {})
        v_props: dict[str, Any] = v.value.get("properties", {})
        for name, schema in p_props.items():
            if name not in v_props or (v_props[name] is False and schema is not False):
                vi, en = _subject(_join(subject, name))
                errors.append(self.error(
                    _Node(None, (*v.path, "properties", name)), "variant-removed-field",
                    f"{vi} của biểu mẫu cấp trên bị lược bỏ; biến thể phải giữ lại mọi "
                    "trường của biểu mẫu cấp trên.",
                    f"{en} of the parent form is missing; a variant must keep every field "
                    "of its parent."))
            else:
                errors += self.narrow(p.at("properties", name), v.at("properties", name),
                                      _join(subject, name))
        p_patterns: dict[str, Any] = p.value.get("patternProperties", {})
        v_patterns: dict[str, Any] = v.value.get("patternProperties", {})
        for pattern in p_patterns:
            if pattern in v_patterns:
                errors += self.narrow(p.at("patternProperties", pattern),
                                      v.at("patternProperties", pattern), subject)
            else:
                errors.append(self._keep(v.get("patternProperties"), subject,
                                         "patternProperties"))
        extra = p.get("additionalProperties")
        if not root and _trivial(extra.value) is not True:
            # A property the variant adds (not under one of the parent's patterns) and what
            # the variant's own additionalProperties admits are, in the parent, governed by
            # the parent's additionalProperties.
            added = [(name, v.at("properties", name)) for name in v_props
                     if name not in p_props
                     and not any(_search(pattern, name) for pattern in p_patterns)]
            added += [(pattern, v.at("patternProperties", pattern)) for pattern in v_patterns
                      if pattern not in p_patterns]
            for name, node in [*added, (None, v.get("additionalProperties"))]:
                errors += self._additional(extra, node, subject, name)
        errors += self._bound(p, v, subject, "minProperties", upper=False)
        errors += self._bound(p, v, subject, "maxProperties", upper=True)
        return errors

    def _additional(self, p_extra: _Node, v: _Node, subject: str | None,
                    name: str | None) -> list[FieldError]:
        """Whether ``v`` (a property or pattern the variant adds, or its own
        additionalProperties when ``name`` is None) narrows the parent's
        additionalProperties."""
        if p_extra.value is not False:
            return self.narrow(p_extra, v, _join(subject, name or "*"))
        if v.value is False:
            return []
        vi, en = _subject(subject)
        if name is None:
            return [self.error(
                v, "variant-widened",
                f"{vi}: biểu mẫu cấp trên không chấp nhận thuộc tính ngoài danh sách "
                "(additionalProperties: false); biến thể phải giữ quy định này.",
                f"{en}: the parent refuses properties it does not list "
                "(additionalProperties: false); the variant must keep that.")]
        return [self.error(
            v, "variant-widened",
            f"{vi}: biểu mẫu cấp trên không cho phép thuộc tính '{name}' tại đây; biến thể "
            "không được bổ sung thuộc tính này.",
            f"{en}: the parent admits no property '{name}' here (additionalProperties: "
            "false); a variant cannot add it.")]

    def _kept(self, p: _Node, v: _Node, subject: str | None,
              applies: Callable[[str], bool]) -> list[FieldError]:
        """The keywords that must stay as the parent has them."""
        errors: list[FieldError] = []
        done: set[str] = set()
        for keyword in p.value:
            if keyword in _ANNOTATIONS or keyword in _HANDLED or keyword in done:
                continue
            if keyword == "allOf":
                errors += self._all_of(p, v, subject)
                continue
            family, group = _KEPT.get(keyword, ("", (keyword,)))
            done.update(group)
            if not applies(family):
                continue
            p_part = {k: p.value[k] for k in group if k in p.value}
            v_part = {k: v.value[k] for k in group if k in v.value}
            if not self.same(_Node(p_part, p.path), _Node(v_part, v.path)):
                errors.append(self._keep(v.get(keyword), subject, "/".join(p_part)))
        if "$ref" in p.value and self.p.resolve(p) is None and (
                v.value.get("$ref") != p.value["$ref"]):
            errors.append(self._keep(v.get("$ref"), subject, "$ref"))
        return errors

    def _all_of(self, p: _Node, v: _Node, subject: str | None) -> list[FieldError]:
        v_rules = v.value.get("allOf", [])
        errors = []
        for index in range(len(p.value["allOf"])):
            rule = p.at("allOf", index)
            if not any(self.same(rule, v.at("allOf", j)) for j in range(len(v_rules))):
                vi, en = _subject(subject)
                errors.append(self.error(
                    v.get("allOf"), "variant-changed",
                    f"{vi}: phải giữ nguyên quy tắc allOf[{index}] của biểu mẫu cấp trên "
                    "(biến thể chỉ được bổ sung quy tắc).",
                    f"{en}: keep the parent's definition of allOf[{index}] unchanged; a "
                    "variant may only add rules to allOf."))
        return errors

    def _keep(self, v: _Node, subject: str | None, what: str) -> FieldError:
        vi, en = _subject(subject)
        return self.error(v, "variant-changed",
                          f"{vi}: phải giữ nguyên định nghĩa '{what}' của biểu mẫu cấp trên.",
                          f"{en}: keep the parent's definition of '{what}' unchanged; a "
                          "change to it cannot be proved to only narrow the form.")

    def _bound(self, p: _Node, v: _Node, subject: str | None, keyword: str,
               upper: bool) -> list[FieldError]:
        if keyword not in p.value:
            return []
        bound, own = p.value[keyword], v.value.get(keyword)
        if own is not None and (own <= bound if upper else own >= bound):
            return []
        return [self._bound_error(v, subject, keyword, bound, own, upper)]

    def _bound_error(self, v: _Node, subject: str | None, keyword: str, bound: Any,
                     own: Any, upper: bool) -> FieldError:
        vi, en = _subject(subject)
        side_vi = "không lớn hơn" if upper else "không nhỏ hơn"
        side_en = "at most" if upper else "at least"
        has_vi = "chưa quy định" if own is None else f"đang là {own}"
        has_en = "it has none" if own is None else f"it has {own}"
        return self.error(v.get(keyword), "variant-widened",
                          f"{vi}: biểu mẫu cấp trên quy định {keyword} = {bound}; biến thể "
                          f"phải giữ giá trị {side_vi} {bound} ({has_vi}).",
                          f"{en}: the parent sets {keyword} {bound}; the variant must keep "
                          f"a {keyword} of {side_en} {bound} ({has_en}).")

    # --- equality, for what cannot be proved --------------------------------------------

    def same(self, p: _Node, v: _Node) -> bool:
        """Whether two subschemas are the same rules: annotations aside, equal keywords,
        with references compared by what they resolve to."""
        p_trivial, v_trivial = _trivial(p.value), _trivial(v.value)
        if p_trivial is not None or v_trivial is not None:
            return p_trivial == v_trivial
        if not isinstance(p.value, dict) or not isinstance(v.value, dict):
            return _json_equal(p.value, v.value)
        keys = {k for k in p.value if k not in _ANNOTATIONS}
        if keys != {k for k in v.value if k not in _ANNOTATIONS}:
            return False
        return all(self._same_keyword(p, v, keyword) for keyword in keys)

    def _same_keyword(self, p: _Node, v: _Node, keyword: str) -> bool:
        p_value, v_value = p.value[keyword], v.value[keyword]
        if keyword in ("$ref", "$dynamicRef"):
            if keyword == "$dynamicRef" and (p_value != v_value or self.p.dynamic
                                             != self.v.dynamic):
                return False
            p_target, v_target = self.p.resolve(p, keyword), self.v.resolve(v, keyword)
            if p_target is None or v_target is None:
                return p_target is v_target and p_value == v_value
            key = (p_target.path, v_target.path)
            if key in self._comparing:
                return True
            self._comparing.add(key)
            try:
                return self.same(p_target, v_target)
            finally:
                self._comparing.discard(key)
        if keyword in ("enum", "required", "type") and isinstance(p_value, list) and isinstance(
                v_value, list):
            return _same_members(p_value, v_value) and _same_members(v_value, p_value)
        if keyword in _SCHEMA_MAPS and isinstance(p_value, dict) and isinstance(v_value, dict):
            return set(p_value) == set(v_value) and all(
                self.same(p.at(keyword, k), v.at(keyword, k)) for k in p_value)
        if keyword in _SCHEMA_LISTS and isinstance(p_value, list) and isinstance(v_value, list):
            return len(p_value) == len(v_value) and all(
                self.same(p.at(keyword, i), v.at(keyword, i)) for i in range(len(p_value)))
        if keyword in _SCHEMA_SINGLES:
            return self.same(p.at(keyword), v.at(keyword))
        return _json_equal(p_value, v_value)

    # --- top-level fields, visibility and policy ----------------------------------------

    def added_fields(self) -> list[FieldError]:
        added = [name for name in self.v.properties if name not in self.p.properties]
        if not added:
            return []
        names, key_set = self._mentioned()
        errors = []
        for name in added:
            node = _Node(None, (*self.v.data.path, "properties", name))
            if name in names:
                errors.append(self.error(
                    node, "variant-added-field",
                    f"Quy tắc của biểu mẫu cấp trên có nhắc đến trường '{name}' (không được "
                    "khai báo); biến thể không được bổ sung trường trùng tên này.",
                    f"The parent's rules refer to a field named '{name}' that it does not "
                    "declare; the variant cannot add a field with that name."))
            elif key_set:
                errors.append(self.error(
                    node, "variant-added-field",
                    f"Quy tắc của biểu mẫu cấp trên phụ thuộc vào toàn bộ các trường được "
                    f"gửi ({key_set}); biến thể không được bổ sung trường '{name}'.",
                    f"The parent's rules depend on the whole set of fields submitted "
                    f"({key_set}); the variant cannot add field '{name}'."))
        return errors

    def _mentioned(self) -> tuple[set[str], str]:
        """Field names the parent's rules over the whole submission refer to, and a keyword
        of theirs that looks at the set of fields (or "")."""
        names: set[str] = set()
        key_set = "minProperties" if "minProperties" in self.p.data.value else ""
        seen: set[Path] = set()
        stack = [self.p.data, *self.p.conditions.values()]
        while stack:
            node = stack.pop()
            if node.path in seen or not isinstance(node.value, dict):
                continue
            seen.add(node.path)
            value = node.value
            names.update(value.get("properties", {}))
            names.update(n for n in value.get("required", []) if isinstance(n, str))
            for name, needed in value.get("dependentRequired", {}).items():
                names.add(name)
                names.update(needed)
            names.update(value.get("dependentSchemas", {}))
            if node.path != self.p.data.path:
                key_set = key_set or next((k for k in _KEY_SET_KEYWORDS if k in value), "")
            stack += _in_place(node)
            for keyword in ("$ref", "$dynamicRef"):
                target = self.p.resolve(node, keyword)
                if target is not None:
                    stack.append(target)
        return names, key_set

    def visibility(self) -> list[FieldError]:
        errors: list[FieldError] = []
        p_required = self.p.definition["schema"].get("required", [])
        v_required = self.v.definition["schema"].get("required", [])
        for name, p_field in self.p.fields.items():
            if name not in self.v.fields or self.v.properties.get(name, False) is False:
                continue  # reported as a removed field
            v_field = self.v.fields[name]
            where = ("ui_schema", "fields", name)
            p_condition = self.p.conditions.get(name)
            v_condition = self.v.conditions.get(name)
            if p_condition is None:
                if v_condition is not None and name in p_required:
                    errors.append(_error(
                        (*where, "visible_when"), "variant-visibility",
                        f"Trường '{name}' luôn hiển thị và bắt buộc ở biểu mẫu cấp trên; "
                        "biến thể không được đặt điều kiện hiển thị (visible_when).",
                        f"Field '{name}' is always shown and required by the parent; the "
                        "variant must not make it conditional (visible_when)."))
            elif v_condition is None:
                errors.append(_error(
                    (*where, "visible_when"), "variant-visibility",
                    f"Trường '{name}' chỉ hiển thị khi thỏa điều kiện của biểu mẫu cấp trên "
                    "và phải để trống khi bị ẩn; biến thể phải giữ điều kiện hiển thị này.",
                    f"Field '{name}' is shown only under the parent's condition and must be "
                    "empty otherwise; the variant must keep that visibility condition."))
            elif p_field.get("required_when_visible"):
                if not self.same(p_condition, v_condition):
                    errors.append(_error(
                        (*where, "visible_when"), "variant-visibility",
                        f"Trường '{name}' bắt buộc khi hiển thị; biến thể phải giữ nguyên "
                        "điều kiện hiển thị của biểu mẫu cấp trên.",
                        f"Field '{name}' is required when shown; keep the parent's "
                        "visibility condition (visible_when) unchanged."))
                elif not v_field.get("required_when_visible") and name not in v_required:
                    errors.append(_error(
                        (*where, "required_when_visible"), "variant-optional",
                        f"Trường '{name}' là bắt buộc khi hiển thị ở biểu mẫu cấp trên; "
                        "biến thể phải giữ required_when_visible.",
                        f"Field '{name}' is required whenever the parent shows it; the "
                        "variant must keep required_when_visible."))
            elif not self.same(p_condition, v_condition) and _Checker(self.p, self.v).narrow(
                    p_condition, v_condition, name):
                errors.append(_error(
                    (*where, "visible_when"), "variant-visibility",
                    f"Trường '{name}': phải giữ điều kiện hiển thị của biểu mẫu cấp trên "
                    "hoặc một điều kiện hẹp hơn.",
                    f"Field '{name}': keep the parent's visibility condition (visible_when), "
                    "or one that provably implies it."))
        return errors

    def policy(self) -> list[FieldError]:
        errors = []
        if not self.p.definition.get("allow_unknown_fields", False) and (
                self.v.definition.get("allow_unknown_fields", False)):
            errors.append(_error(
                ("allow_unknown_fields",), "variant-unknown-fields",
                "Biểu mẫu cấp trên không nhận trường ngoài khai báo; biến thể phải giữ "
                "allow_unknown_fields là false và khai báo các trường bổ sung.",
                "The parent refuses fields it does not declare; the variant must keep "
                "allow_unknown_fields false and declare the fields it adds."))
        for name, p_field in self.p.fields.items():
            v_field = self.v.fields.get(name)
            if v_field is None:
                continue
            p_class = p_field.get("personal_data", "none")
            v_class = v_field.get("personal_data", "none")
            if _PERSONAL_DATA[v_class] < _PERSONAL_DATA[p_class]:
                errors.append(_error(
                    ("ui_schema", "fields", name, "personal_data"), "variant-personal-data",
                    f"Trường '{name}' là {_PERSONAL_DATA_VI[p_class]} ở biểu mẫu cấp trên; "
                    "biến thể không được hạ mức phân loại.",
                    f"Field '{name}' is '{p_class}' personal data in the parent; the variant "
                    f"may not lower it to '{v_class}'."))
        return errors

    def error(self, v: _Node, keyword: str, vi: str, en: str) -> FieldError:
        return FieldError(self.v.pointer(v.path), vi, en, keyword)


def _error(path: Path, keyword: str, vi: str, en: str) -> FieldError:
    return FieldError(json_pointer(path), vi, en, keyword)


def _subject(subject: str | None) -> tuple[str, str]:
    if subject is None:
        return "Biểu mẫu", "The form"
    return f"Trường '{subject}'", f"Field '{subject}'"


def _join(subject: str | None, name: str) -> str:
    return name if subject is None else f"{subject}.{name}"


def _show(values: list[Any]) -> str:
    shown = ", ".join(json.dumps(value, ensure_ascii=False) for value in values[:8])
    return shown + (", …" if len(values) > 8 else "")


def _in_place(node: _Node) -> Iterator[_Node]:
    """The subschemas that apply to the same instance as ``node`` (references aside)."""
    for keyword in ("allOf", "anyOf", "oneOf"):
        for index in range(len(node.value.get(keyword, []))):
            yield node.at(keyword, index)
    for keyword in ("not", "if", "then", "else"):
        if keyword in node.value:
            yield node.at(keyword)
    for name in node.value.get("dependentSchemas", {}):
        yield node.at("dependentSchemas", name)


def _normalised(node: _Node) -> _Node | None:
    """``node`` with ``unevaluatedProperties``/``unevaluatedItems`` rewritten as the
    ``additionalProperties``/``items`` they amount to when no in-place applicator adds
    annotations; None when they cannot be."""
    value = node.value
    if "unevaluatedProperties" not in value and "unevaluatedItems" not in value:
        return node
    if any(keyword in value for keyword in _IN_PLACE):
        return None
    rewritten = dict(value)
    if "unevaluatedProperties" in rewritten:
        rewritten.setdefault("additionalProperties", rewritten["unevaluatedProperties"])
        del rewritten["unevaluatedProperties"]
    if "unevaluatedItems" in rewritten:
        if "contains" in rewritten:
            return None
        rewritten.setdefault("items", rewritten["unevaluatedItems"])
        del rewritten["unevaluatedItems"]
    return _Node(rewritten, node.path)


def _values(schema: dict[str, Any]) -> list[Any] | None:
    """The only values ``schema`` can accept, if it lists them or its types are finite."""
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ["any"])
    if types <= {"boolean", "null"}:
        return [True, False] * ("boolean" in types) + [None] * ("null" in types)
    return None


def instance_types(schema: dict[str, Any]) -> frozenset[str] | None:
    """The instance types ``schema`` allows, None for any."""
    declared = schema.get("type")
    if declared is None:
        values = _values(schema)
        return None if values is None else frozenset(_json_type(v) for v in values)
    types = frozenset([declared] if isinstance(declared, str) else declared)
    return types | {"integer"} if "number" in types else types


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values as JSON Schema sees it: ``1 == 1.0`` but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _same_members(a: list[Any], b: list[Any]) -> bool:
    return all(any(_json_equal(x, y) for y in b) for x in a)


def _trivial(schema: Any) -> bool | None:
    """``True``/``False`` for a schema that accepts everything/nothing (a boolean, or a
    schema of annotations only), None for any other."""
    if schema is True or (isinstance(schema, dict) and _ANNOTATIONS.issuperset(schema)):
        return True
    if schema is False:
        return False
    return None


def _multiple(value: Any, step: Any) -> bool:
    ratio = Fraction(Decimal(str(value))) / Fraction(Decimal(str(step)))
    return ratio.denominator == 1


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return True
