"""Compiled validators for form versions, cached, with a fast path that agrees with the
reference.

:class:`app.forms.definitions.FormValidator` (the ``jsonschema`` library) is the reference:
its verdicts and its error messages are the project's. :func:`compiled` builds, once per
distinct definition, a :class:`CompiledForm` whose :meth:`~CompiledForm.is_valid` runs on
``jsonschema-rs`` when that is installed and the form can be expressed there exactly, and whose
:meth:`~CompiledForm.errors` is always the reference's.

The fast validator is configured so that it gives the reference's verdict, not merely a
standard one (``tests/test_validator_differential.py`` checks this on the official test suite
and on the catalogue):

* **Nothing is fetched.** Its retriever refuses every URI, as the reference's closed
  registry does; only the meta-schemas both libraries ship resolve.
* **``format`` and ``multipleOf`` are the reference's own code.** They are custom keywords that
  call ``Draft202012Validator.VALIDATORS`` with the reference's ``FORMAT_CHECKER``, so every
  format the reference checks (date, date-time, email, uri, uuid and the others its optional
  dependencies enable) is checked the same way, and unknown formats pass on both sides.
  jsonschema-rs's own checks differ (its ``email`` is far stricter; its ``multipleOf`` accepts
  ``19.99`` for ``0.01``, which the reference's float division rejects).
* **Regular expressions keep Python's meaning.** jsonschema-rs reads ``pattern`` as ECMA-262
  (ASCII ``\\d``/``\\w``, its own ``\\s``, ``$`` only at the very end), the reference as
  Python's ``re`` (Unicode classes; ``$`` also before a final newline). Each pattern is
  translated from Python's parse of it into an equivalent expression for the linear-time
  ``regex`` engine (:func:`rust_pattern`); a form with a pattern outside what translates
  exactly, or with a pattern-like entry outside a schema position, keeps the reference for
  ``is_valid`` too.
* **``dependencies`` is dropped.** Draft 2020-12 replaced it (``dependentRequired``,
  ``dependentSchemas``) and the reference ignores it; jsonschema-rs still applies it.
* **Only plain JSON goes to it.** Values that JSON cannot carry but Python's ``json`` module
  produces or a caller might pass go to the reference: NaN and infinities (which
  jsonschema-rs neither counts as numbers nor holds to ``maximum``), tuples, ``Decimal``,
  subclasses, and strings with lone surrogates (which it cannot encode).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser as _regex_parser  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from jsonschema import Draft202012Validator
from referencing import Registry

from app.forms.definitions import FieldError, FormValidator, effective_schema

if TYPE_CHECKING:
    import jsonschema_rs
else:
    try:
        import jsonschema_rs
    except ImportError:  # the reference alone still validates everything
        jsonschema_rs = None

FAST_AVAILABLE = jsonschema_rs is not None
CACHE_SIZE = 256
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

Json = Any


class RemoteReferenceRefused(LookupError):
    """A schema named a resource outside itself; the server never fetches one."""


def _refuse(uri: str) -> NoReturn:
    raise RemoteReferenceRefused(f"{uri!r} is not part of the form; schemas are never fetched")


def reference_validator(schema: dict[str, Any] | bool) -> Draft202012Validator:
    """The reference validator exactly as :class:`FormValidator` builds it: draft 2020-12,
    ``FORMAT_CHECKER``, and a registry that retrieves nothing."""
    return Draft202012Validator(schema, registry=Registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


# Keyword functions of the reference only look at the validator's type and format checkers.
_REFERENCE = reference_validator({})


class _ReferenceKeyword:
    """A jsonschema-rs custom keyword that runs the reference's implementation of it."""

    keyword: ClassVar[str]

    def __init__(self, parent_schema: dict[str, Any], value: Any,
                 schema_path: list[str | int]) -> None:
        self._value = value
        self._schema = parent_schema
        self._check = Draft202012Validator.VALIDATORS[self.keyword]

    def validate(self, instance: Any) -> None:
        for error in self._check(_REFERENCE, self._value, instance, self._schema):
            raise ValueError(error.message)


class _Format(_ReferenceKeyword):
    keyword = "format"


class _MultipleOf(_ReferenceKeyword):
    keyword = "multipleOf"


_KEYWORDS: dict[str, type[_ReferenceKeyword]] = {"format": _Format, "multipleOf": _MultipleOf}


# --- Python regular expressions as Rust ``regex`` expressions ---------------------------------

_CATEGORY_SOURCES = {"CATEGORY_DIGIT": r"\d", "CATEGORY_SPACE": r"\s", "CATEGORY_WORD": r"\w"}
_ALLOWED_FLAGS = _sre.SRE_FLAG_UNICODE | _sre.SRE_FLAG_VERBOSE  # VERBOSE only changes parsing


class _Untranslatable(Exception):
    """The pattern uses something :func:`rust_pattern` does not translate exactly."""


Ranges = list[tuple[int, int]]


def _merge(ranges: Ranges) -> Ranges:
    """Sorted, disjoint, non-adjacent ranges without surrogates: a Rust string cannot hold
    one, so a string with one never reaches jsonschema-rs (see :meth:`CompiledForm.is_valid`)."""
    merged: Ranges = []
    for low, high in sorted(ranges):
        pieces = ([(low, min(high, _SURROGATES[0] - 1)), (max(low, _SURROGATES[1] + 1), high)]
                  if low <= _SURROGATES[1] and high >= _SURROGATES[0] else [(low, high)])
        for start, end in pieces:
            if start > end:
                continue
            if merged and start <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    result: Ranges = []
    start = 0
    for low, high in _merge(ranges):
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return _merge(result)


@cache
def _categories() -> dict[str, tuple[tuple[int, int], ...]]:
    """The code points Python's ``re`` puts in ``\\d``, ``\\s`` and ``\\w``, found by asking
    ``re`` itself over every code point (once per process, about a quarter of a second)."""
    code_points = array("I", range(_SURROGATES[0]))
    code_points.extend(range(_SURROGATES[1] + 1, _MAX_CODE_POINT + 1))
    everything = code_points.tobytes().decode(f"utf-32-{sys.byteorder[0]}e")
    return {name: tuple(_merge([(ord(c), ord(c)) for c in re.sub(f"[^{source}]+", "",
                                                                    everything)]))
            for name, source in _CATEGORY_SOURCES.items()}


def _category_ranges(name: str) -> Ranges:
    if name in _CATEGORY_SOURCES:
        return list(_categories()[name])
    positive = name.replace("CATEGORY_NOT_", "CATEGORY_")
    if positive != name and positive in _CATEGORY_SOURCES:
        return _complement(list(_categories()[positive]))
    raise _Untranslatable(name)


def _char(code: int) -> str:
    if not 0 <= code <= _MAX_CODE_POINT or _SURROGATES[0] <= code <= _SURROGATES[1]:
        raise _Untranslatable("surrogate")
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\x{{{code:X}}}"


def _class(ranges: Ranges) -> str:
    """A Rust class for exactly ``ranges`` (negation is already applied)."""
    merged = _merge(ranges)
    if not merged:
        return f"[^\\x{{0}}-\\x{{{_MAX_CODE_POINT:X}}}]"  # matches nothing, as Python's [^\s\S]
    return "[" + "".join(_char(low) if low == high else f"{_char(low)}-{_char(high)}"
                         for low, high in merged) + "]"


def _in(items: list[tuple[Any, Any]]) -> str:
    ranges: Ranges = []
    negate = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append((av[0], av[1]))
        elif name == "CATEGORY":
            ranges.extend(_category_ranges(str(av)))
        else:
            raise _Untranslatable(name)
    return _class(_complement(ranges) if negate else ranges)


def _translate(items: Any, *, tail: bool) -> str:
    """Rust syntax for a parsed sequence. ``tail``: nothing can follow the sequence, so a
    final ``$`` may consume the newline it allows (``\\n?\\z``) instead of looking ahead,
    which the linear-time engine cannot."""
    out = []
    items = list(items)
    for index, (op, av) in enumerate(items):
        name, last = str(op), tail and index == len(items) - 1
        if name == "LITERAL":
            out.append(_char(av))
        elif name == "NOT_LITERAL":
            out.append(_class(_complement([(av, av)])))
        elif name == "ANY":  # no DOTALL: anything but a newline
            out.append(_class(_complement([(10, 10)])))
        elif name == "IN":
            out.append(_in(av))
        elif name == "CATEGORY":
            out.append(_class(_category_ranges(str(av))))
        elif name == "BRANCH":
            out.append("(?:" + "|".join(_translate(b, tail=last) for b in av[1]) + ")")
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                raise _Untranslatable("inline flags")
            out.append("(?:" + _translate(body, tail=last) + ")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, body = av
            bound = "" if high == _sre.MAXREPEAT else str(high)
            lazy = "?" if name == "MIN_REPEAT" else ""
            out.append(f"(?:{_translate(body, tail=False)}){{{low},{bound}}}{lazy}")
        elif name == "AT":
            out.append(_anchor(str(av), last=last))
        else:  # back-references, look-around, atomic groups, possessive repeats, ...
            raise _Untranslatable(name)
    return "".join(out)


def _anchor(name: str, *, last: bool) -> str:
    if name in ("AT_BEGINNING", "AT_BEGINNING_STRING"):  # ^ without MULTILINE, \A
        return "\\A"
    if name == "AT_END_STRING":  # \Z
        return "\\z"
    if name == "AT_END" and last:  # $: at the end, or before a newline that ends the string
        return "(?:\\n?\\z)"
    raise _Untranslatable(name)  # $ before more pattern, \b, \B


@lru_cache(maxsize=4096)
def rust_pattern(pattern: str) -> str | None:
    """An expression for Rust's ``regex`` engine that matches, with ``is_match``, exactly the
    strings Python's ``re.search(pattern, ...)`` matches (strings without lone surrogates), or
    None where this translation does not cover the pattern."""
    try:
        parsed = _regex_parser.parse(pattern)
        if parsed.state.flags & ~_ALLOWED_FLAGS:
            return None
        return _translate(parsed, tail=True)
    except (_Untranslatable, re.error, RecursionError, OverflowError):
        return None


# --- Rewriting a schema for jsonschema-rs ------------------------------------------------------

_SUBSCHEMA = ("additionalProperties", "contains", "contentSchema", "else", "if", "items", "not",
              "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("$defs", "dependentSchemas", "properties", "patternProperties")


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every object schema in a draft 2020-12 schema, by keyword."""
    if not isinstance(node, dict):
        return
    yield node
    for keyword in _SUBSCHEMA:
        yield from _schemas(node.get(keyword))
    for keyword in _SUBSCHEMA_LISTS:
        if isinstance(node.get(keyword), list):
            for item in node[keyword]:
                yield from _schemas(item)
    for keyword in _SUBSCHEMA_MAPS:
        if isinstance(node.get(keyword), dict):
            for item in node[keyword].values():
                yield from _schemas(item)


def _rewritten_holders(node: Any) -> Iterator[dict[str, Any]]:
    """Every object anywhere in the document holding something :func:`rust_schema` rewrites,
    schema or not (``const`` values; unknown keywords, which a ``$ref`` may still point
    into)."""
    if isinstance(node, dict):
        if (isinstance(node.get("pattern"), str)
                or isinstance(node.get("patternProperties"), dict) or "dependencies" in node):
            yield node
        for value in node.values():
            yield from _rewritten_holders(value)
    elif isinstance(node, list):
        for item in node:
            yield from _rewritten_holders(item)


def rust_schema(schema: dict[str, Any] | bool) -> dict[str, Any] | bool | None:
    """A copy of ``schema`` for jsonschema-rs: every regular expression translated by
    :func:`rust_pattern`, and every ``dependencies`` removed (jsonschema-rs applies this draft 7
    keyword in draft 2020-12 too; the reference ignores it, as the draft does). None if a
    pattern does not translate, or if a ``pattern``, ``patternProperties`` or ``dependencies``
    sits where the keyword walk does not reach (it might still be used through a ``$ref``)."""
    if isinstance(schema, bool):
        return schema
    schema = copy.deepcopy(schema)
    # A dict can sit in several places (the copy keeps the caller's sharing): rewrite it once.
    nodes = list({id(node): node for node in _schemas(schema)}.values())
    seen = {id(node) for node in nodes}
    if any(id(holder) not in seen for holder in _rewritten_holders(schema)):
        return None
    for node in nodes:
        node.pop("dependencies", None)
        if isinstance(node.get("pattern"), str):
            translated = rust_pattern(node["pattern"])
            if translated is None:
                return None
            node["pattern"] = translated
        if isinstance(node.get("patternProperties"), dict):
            renamed = {rust_pattern(key): value
                       for key, value in node["patternProperties"].items()}
            if None in renamed or len(renamed) != len(node["patternProperties"]):
                return None
            node["patternProperties"] = renamed
    return schema


def fast_validator(schema: dict[str, Any] | bool) -> jsonschema_rs.Validator | None:
    """The jsonschema-rs validator for ``schema``, configured to agree with
    :func:`reference_validator`, or None when jsonschema-rs is missing or the schema cannot
    be expressed there exactly (see the module docstring)."""
    if jsonschema_rs is None:
        return None
    translated = rust_schema(schema)
    if translated is None:
        return None
    try:
        return jsonschema_rs.Draft202012Validator(
            translated, validate_formats=False, retriever=_refuse,
            pattern_options=jsonschema_rs.RegexOptions(), keywords=dict(_KEYWORDS))
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
        # A reference outside the document, or an expression over the engine's size limit.
        return None


def _plain_json(value: Any) -> bool:
    """Whether ``value`` is made only of what JSON carries, with finite numbers. (Scalars are
    tested inline, before any call: this runs on every submission.)"""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if not (kind is str or kind is int or kind is bool or item is None
                    or _plain_json(item)):
                return False
        return True
    if kind is list:
        for item in value:
            kind = type(item)
            if not (kind is str or kind is int or kind is bool or item is None
                    or _plain_json(item)):
                return False
        return True
    if kind is str or kind is int or kind is bool or value is None:
        return True
    return kind is float and math.isfinite(value)


# --- Compiled forms and their cache ------------------------------------------------------------

def digest(definition: dict[str, Any]) -> str:
    """SHA-256 of the definition's canonical JSON (sorted keys, no spaces, UTF-8): equal
    definitions share a validator."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CompiledForm:
    """The validators of one form version. Build through :func:`compiled`."""

    def __init__(self, definition: dict[str, Any], key: str) -> None:
        self.digest = key
        self.definition = definition
        self._reference = FormValidator(definition)
        schema = effective_schema(definition)
        self._reference_is_valid: Callable[[Any], bool] = reference_validator(schema).is_valid
        self._fast = fast_validator(schema)

    @property
    def fast(self) -> bool:
        """Whether :meth:`is_valid` runs on jsonschema-rs for this form."""
        return self._fast is not None

    def is_valid(self, data: Json) -> bool:
        """Whether ``data`` is a valid submission: the hot path, equal to
        ``not self.errors(data)``."""
        if self._fast is not None:
            try:
                if _plain_json(data):
                    return self._fast.is_valid(data)
            except (ValueError, RecursionError):
                pass  # a string jsonschema-rs cannot encode (a lone surrogate); deep nesting
        return self._reference_is_valid(data)

    def errors(self, data: Json) -> list[FieldError]:
        """The reference's errors (pointers and messages); call when :meth:`is_valid` is
        False."""
        return self._reference.errors(data)


_cache: OrderedDict[str, CompiledForm] = OrderedDict()
_lock = threading.Lock()


def uncached(definition: dict[str, Any]) -> CompiledForm:
    """A :class:`CompiledForm` for a definition that is not stored (the builder's preview): not
    kept, so editing a form never pushes stored versions' validators out of the cache."""
    return CompiledForm(definition, "unsaved")


def compiled(definition: dict[str, Any], *, key: str | None = None) -> CompiledForm:
    """The :class:`CompiledForm` for a checked definition (see
    :func:`app.forms.definitions.check`), from a cache of the :data:`CACHE_SIZE` most recently
    used, keyed by :func:`digest`.

    Hashing the definition costs more than validating a submission does on the hot path, so a
    caller that already knows the digest (a published form version stores it, and cannot
    change) passes it as ``key``; it must be :func:`digest` of this very definition."""
    if key is None:
        key = digest(definition)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    form = CompiledForm(copy.deepcopy(definition), key)
    with _lock:
        form = _cache.setdefault(key, form)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return form


def cache_clear() -> None:
    with _lock:
        _cache.clear()


def cache_len() -> int:
    with _lock:
        return len(_cache)
