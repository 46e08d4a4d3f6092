"""The hot-path validator (jsonschema-rs, configured in :mod:`app.forms.validators`) against
the reference (the ``jsonschema`` library), case by case.

1. Every draft 2020-12 case of the official JSON-Schema-Test-Suite (vendored under
   ``tests/json_schema_test_suite``, see its README): the required files, the optional ones,
   and the optional format files for date, date-time, email, uri and uuid. Both give the
   same verdict; where both differ from the suite, the case must be in :data:`DEVIATIONS`,
   with the reason.
2. Every catalogue sample: ``compiled(definition).is_valid`` equals ``not errors``.
3. Hand-written cases: conditional fields, unknown fields, ``$dynamicRef``, ``$anchor``,
   embedded ``$id``, Python's regular expressions, the reference's format and ``multipleOf``
   checks, values JSON cannot carry, and the cache.

jsonschema-rs must be installed: without it these tests fail, they are never skipped.
"""

from __future__ import annotations

import json
import math
import random
import re
from decimal import Decimal
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from app.forms import validators
from app.forms.definitions import FormValidator, check
from app.forms.validators import compiled, digest, fast_validator, rust_pattern

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "json_schema_test_suite" / "tests" / "draft2020-12"
SUITE_FILES = sorted(SUITE.glob("*.json")) + sorted((SUITE / "optional").glob("*.json")) + [
    SUITE / "optional" / "format" / f"{name}.json"
    for name in ("date", "date-time", "email", "uri", "uuid")]
CATALOGUE = sorted(p.parent for p in (ROOT / "forms").glob("*/form.json"))

REFUSED, DECLINED = "refused", "declined"

# Cases where the reference and the fast validator agree with each other but not with the
# suite: (file, groups, tests) -> why. Each is a shell-style pattern or a tuple of exact
# descriptions.
Selector = str | tuple[str, ...]
DEVIATIONS: dict[tuple[str, Selector, Selector], str] = {
    # The suite serves these schemas from http://localhost:1234/. Form schemas never reach
    # outside themselves: the reference's registry retrieves nothing (it raises Unresolvable
    # when validation reaches the reference) and the fast validator's retriever refuses, so
    # it is never built and the reference would be used.
    ("refRemote.json", "*", "*"):
        "remote references: refused by design, nothing is ever fetched",
    ("dynamicRef.json", "strict-tree schema, guards against misspelled properties", "*"):
        "$dynamicRef into a remote schema (tree.json): refused by design",
    ("dynamicRef.json", "tests for implementation dynamic anchor and reference link", "*"):
        "$ref to a remote schema (extendible-dynamic-ref.json): refused by design",
    ("dynamicRef.json", "$ref and $dynamicAnchor are independent of order - *", "*"):
        "$ref to a remote schema (extendible-dynamic-ref.json): refused by design",
    ("dynamicRef.json", "$ref to $dynamicRef finds detached $dynamicAnchor", "*"):
        "$ref to a remote schema (detached-dynamicref.json): refused by design",
    # format.json checks the default, annotation-only behaviour of "format"; the project
    # asserts formats (FORMAT_CHECKER), on both validators.
    ("format.json", "*", "invalid * string is only an annotation by default"):
        "the project asserts every format the reference knows",
    # A custom meta-schema that leaves out the validation vocabulary: it is remote, and the
    # reference does not implement $vocabulary anyway. Both apply all of draft 2020-12.
    ("vocabulary.json", "schema that uses custom metaschema with with no validation "
     "vocabulary", "no validation: invalid number, but it still validates"):
        "a custom meta-schema's $vocabulary is not read: validation keywords always apply",
    # The reference's own format checks, which the fast validator runs as they are:
    ("optional/format/date-time.json", "validation of date-time strings",
     "a valid date-time with a leap second, *"):
        "rfc3339-validator (the reference's date-time check) rejects a leap second",
    ("optional/format/email.json", "validation of e-mail addresses", (
        "dot before local part is not valid", "dot after local part is not valid",
        "two subsequent dots inside local part are not valid", "an invalid domain",
        "an invalid IPv4-address-literal")):
        "the reference's email check only asks for an '@' (these five cases pass it)",
    # Optional files.
    ("optional/cross-draft.json", "*", "*"):
        "the draft 2019-09 schema it refers to is remote: refused by design",
    ("optional/dependencies-compatibility.json", "*", "*"):
        "draft 2020-12 has no 'dependencies' (dependentRequired and dependentSchemas replace "
        "it); the reference ignores it, and app.forms.validators removes it for the fast "
        "validator, which would otherwise apply it",
    ("optional/ecmascript-regex.json", (
        "ECMA 262 regex escapes control codes with \\c and upper letter",
        "ECMA 262 regex escapes control codes with \\c and lower letter",
        "patterns always use unicode semantics with pattern",
        "patterns always use unicode semantics with patternProperties",
        "pattern with non-ASCII digits", "patternProperties with non-ASCII digits"), "*"):
        "ECMA-262 syntax Python's re cannot compile (\\cX, \\p{...}): check() refuses such a "
        "form; the reference raises, and no fast validator is built",
    ("optional/ecmascript-regex.json", (
        "ECMA 262 \\d matches ascii digits only",
        "ECMA 262 \\D matches everything but ascii digits",
        "ECMA 262 \\w matches ascii letters only",
        "ECMA 262 \\W matches everything but ascii letters",
        "ECMA 262 \\s matches whitespace", "ECMA 262 \\S matches everything but whitespace",
        "\\w in patterns matches [A-Za-z0-9_], not unicode letters",
        "\\d in pattern matches [0-9], not unicode digits",
        "\\w in patternProperties matches [A-Za-z0-9_], not unicode letters",
        "\\d in patternProperties matches [0-9], not unicode digits"), "*"):
        "patterns mean what they mean to Python's re, the reference's dialect (Unicode \\d "
        "and \\w; a \\s without U+FEFF), which the fast validator's translation keeps",
}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _reference(schema: Any) -> Draft202012Validator:
    """The reference, as FormValidator builds it: FORMAT_CHECKER, a closed registry."""
    return Draft202012Validator(schema, registry=Registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def _name(path: Path) -> str:
    return path.relative_to(SUITE).as_posix()


@cache
def _outcomes(path: Path) -> tuple[tuple[str, str, str, bool, Any, Any], ...]:
    """(file, group, test, expected, reference verdict, fast verdict) for each case."""
    found = []
    for group in _load(path):
        reference = _reference(group["schema"])
        fast = fast_validator(group["schema"])
        for test in group["tests"]:
            try:
                verdict: Any = reference.is_valid(test["data"])
            except (Unresolvable, re.error):  # a remote schema; a pattern Python refuses
                verdict = REFUSED
            quick: Any = DECLINED if fast is None else fast.is_valid(test["data"])
            found.append((_name(path), group["description"], test["description"],
                          test["valid"], verdict, quick))
    return tuple(found)


def _selects(selector: Selector, text: str) -> bool:
    return text in selector if isinstance(selector, tuple) else fnmatchcase(text, selector)


def _matches(key: tuple[str, Selector, Selector], file: str, group: str, test: str) -> bool:
    return _selects(key[0], file) and _selects(key[1], group) and _selects(key[2], test)


def _listed(file: str, group: str, test: str) -> str | None:
    return next((reason for key, reason in DEVIATIONS.items()
                 if _matches(key, file, group, test)), None)


def test_jsonschema_rs_is_installed() -> None:
    assert validators.FAST_AVAILABLE, "jsonschema-rs is a dependency of the hot path"


@pytest.mark.parametrize("path", SUITE_FILES, ids=_name)
def test_suite_reference_and_fast_agree(path: Path) -> None:
    outcomes = _outcomes(path)
    assert outcomes
    for file, group, test, _expected, verdict, quick in outcomes:
        where = f"{file} / {group} / {test}"
        if verdict == REFUSED or quick == DECLINED:
            # Only a schema the reference cannot use may go without a fast validator.
            assert (verdict, quick) == (REFUSED, DECLINED), where
            assert _listed(file, group, test), where
        else:
            assert verdict is quick, f"{where}: reference {verdict}, fast {quick}"


def test_suite_deviations_are_exactly_the_listed_ones() -> None:
    outcomes = [o for path in SUITE_FILES for o in _outcomes(path)]
    deviating = {(f, g, t) for f, g, t, expected, verdict, _ in outcomes if verdict != expected}
    unlisted = sorted(case for case in deviating if _listed(*case) is None)
    assert unlisted == [], unlisted
    unused = [key for key in DEVIATIONS if not any(_matches(key, *case) for case in deviating)]
    assert unused == []
    assert len(outcomes) > 1500
    assert len(deviating) < 0.08 * len(outcomes)


# --- The catalogue ----------------------------------------------------------------------------

@pytest.mark.parametrize("folder", CATALOGUE, ids=lambda p: p.name)
def test_catalogue_samples(folder: Path) -> None:
    definition = check(_load(folder / "form.json"))
    form = compiled(definition)
    reference = FormValidator(definition)
    assert form.fast, "every catalogue form runs on the hot path"
    samples = [(s, True, _load(s)) for s in sorted((folder / "valid").glob("*.json"))] + [
        (s, False, _load(s)["data"]) for s in sorted((folder / "invalid").glob("*.json"))]
    assert len(samples) >= 6
    for sample, valid, data in samples:
        assert form.is_valid(data) is (not reference.errors(data)) is valid, sample.name
        assert form.errors(data) == reference.errors(data)


# --- Hand-written edge cases --------------------------------------------------------------------

def _form(schema: dict[str, Any], fields: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    labels = {name: {"label": {"vi": name, "en": name}} for name in schema.get("properties", {})}
    return check({"kind": "Form", "key": "thu-nghiem", "title": {"vi": "Thử", "en": "Test"},
                  "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                             "type": "object", **schema},
                  "ui_schema": {"fields": {**labels, **(fields or {})}}, **extra})


def _agree(definition: dict[str, Any], cases: list[tuple[Any, bool]], *,
           fast: bool = True) -> None:
    form = compiled(definition)
    reference = FormValidator(definition)
    assert form.fast is fast
    for data, valid in cases:
        assert form.is_valid(data) is valid, data
        assert (not reference.errors(data)) is valid, data


LABEL = {"label": {"vi": "x", "en": "x"}}
TO_CHUC = {"properties": {"loai": {"const": "to_chuc"}}, "required": ["loai"]}
CONDITIONAL = {
    "properties": {"loai": {"enum": ["ca_nhan", "to_chuc"]},
                   "ten_to_chuc": {"type": "string", "maxLength": 10},
                   "dia_chi": {"$ref": "#/$defs/dia_chi"}},
    "required": ["loai"],
    "$defs": {"dia_chi": {"type": "object", "properties": {"xa": {"type": "string"}},
                          "allOf": [{"properties": {"thon": {"type": "string"}}}],
                          "unevaluatedProperties": False}},
}


@pytest.mark.parametrize("allow_unknown", [False, True])
def test_visible_when_and_unknown_fields(allow_unknown: bool) -> None:
    definition = _form(CONDITIONAL, {
        "ten_to_chuc": {**LABEL, "visible_when": TO_CHUC, "required_when_visible": True}},
        allow_unknown_fields=allow_unknown)
    _agree(definition, [
        ({"loai": "to_chuc", "ten_to_chuc": "UBND"}, True),
        ({"loai": "to_chuc"}, False),                            # visible and required
        ({"loai": "ca_nhan"}, True),
        ({"loai": "ca_nhan", "ten_to_chuc": "UBND"}, False),     # hidden must be absent
        ({"loai": "ca_nhan", "ten_to_chuc": None}, False),
        ({"loai": "to_chuc", "ten_to_chuc": "x" * 11}, False),
        ({"loai": "ca_nhan", "la": 1}, allow_unknown),           # unknown field
        ({"loai": "ca_nhan", "dia_chi": {"xa": "a", "thon": "b"}}, True),  # via allOf
        ({"loai": "ca_nhan", "dia_chi": {"xa": "a", "ngo": "c"}}, False),
        ({"loai": "ca_nhan", "ten_to_chuc": "UBND", "la": 1}, False),
    ])


REFERENCES = {
    "properties": {
        "cay": {"$ref": "#/$defs/nut"},
        "tinh": {"$ref": "#tinh"},
        "dia_chi": {"$ref": "https://form.nentang.invalid/dia-chi"},
    },
    "$defs": {
        "nut": {"$dynamicAnchor": "nut", "type": "object", "required": ["ma"],
                "properties": {"ma": {"$ref": "#tinh"},
                               "con": {"type": "array", "items": {"$dynamicRef": "#nut"}}}},
        "tinh": {"$anchor": "tinh", "type": "string", "pattern": "^[0-9]{2}$"},
        "dia_chi": {
            "$id": "https://form.nentang.invalid/dia-chi", "type": "object",
            "properties": {"xa": {"$ref": "#xa"}}, "required": ["xa"],
            "unevaluatedProperties": False,
            "$defs": {"xa": {"$anchor": "xa", "type": "string", "pattern": "^[0-9]{5}$"}}},
    },
}


def test_dynamic_ref_anchor_and_embedded_id() -> None:
    tree = {"ma": "01", "con": [{"ma": "02", "con": [{"ma": "03"}]}]}
    _agree(_form(REFERENCES), [
        ({"cay": tree, "tinh": "01", "dia_chi": {"xa": "00004"}}, True),
        ({"cay": {"ma": "01", "con": [{"ma": "02", "con": [{"ma": "3"}]}]}}, False),
        ({"cay": {"ma": "01", "con": [{"con": []}]}}, False),
        ({"cay": {"ma": "01", "con": [{"ma": "02", "thua": True}]}}, True),
        ({"tinh": "1"}, False),
        ({"tinh": "01\n"}, True),                                # Python's $, see below
        ({"dia_chi": {"xa": "0004"}}, False),
        ({"dia_chi": {"xa": "00004", "thon": "1"}}, False),      # the resource is closed
        ({"dia_chi": {}}, False),
    ])


def test_python_regular_expressions() -> None:
    definition = _form({"properties": {
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ma": {"type": "string", "pattern": r"^\d{4}$"},
        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
        "ten": {"type": "string", "pattern": r"^\w+( \w+)*$"},
        "ghi_chu": {"type": "string", "pattern": "^.{0,5}$"},
        "ky_hieu": {"type": "string", "pattern": "^(A|B)-[^0-9]+?$|^Z$"},
    }})
    _agree(definition, [
        ({"so_dinh_danh": "001203004567"}, True),
        ({"so_dinh_danh": "001203004567\n"}, True),      # $ also matches before a final \n
        ({"so_dinh_danh": "001203004567\n\n"}, False),
        ({"so_dinh_danh": "00120300456"}, False),
        ({"ma": "٠١٢٣"}, True),                          # \d is Unicode in Python
        ({"ma": "１２３４"}, True),
        ({"ma": "12a4"}, False),
        ({"email": "a@b.vn"}, True),
        ({"email": "a\x1c@b.vn"}, False),                # \s holds U+001C in Python
        ({"email": "a\ufeff@b.vn"}, True),               # and not U+FEFF (ECMA's \s does)
        ({"email": "a\u00a0@b.vn"}, False),
        ({"ten": "Nguyễn Thị Ánh"}, True),               # \w is Unicode in Python
        ({"ten": "Nguyễn  Ánh"}, False),
        ({"ghi_chu": "ab\ncd"}, False),                  # . does not match a newline
        ({"ghi_chu": "👍👍👍👍👍"}, True),
        ({"ky_hieu": "A-xyz"}, True),
        ({"ky_hieu": "B-x1"}, False),
        ({"ky_hieu": "Z\n"}, True),
    ])


def test_a_subschema_shared_by_two_fields() -> None:
    """The same dict in two places (a caller building a definition in Python) is rewritten
    once, not translated twice."""
    code = {"type": "string", "pattern": "^[0-9]{2}$"}
    definition = _form({"properties": {"tinh": code, "tinh_cu": code}})
    _agree(definition, [({"tinh": "01", "tinh_cu": "02\n"}, True), ({"tinh_cu": "1"}, False)])


def test_patterns_outside_the_translation_keep_the_reference() -> None:
    definition = _form({"properties": {
        "mat_khau": {"type": "string", "pattern": "^(?=.*[0-9]).{8,}$"},
        "ma": {"type": "string", "pattern": r"\bVN\b"},
    }})
    _agree(definition, [({"mat_khau": "abcdefg1"}, True), ({"mat_khau": "abcdefgh"}, False),
                        ({"ma": "CN VN"}, True), ({"ma": "VNA"}, False)], fast=False)


def test_pattern_properties_use_python_semantics() -> None:
    definition = _form({"properties": {"phu_luc": {
        "type": "object", "patternProperties": {r"^pl_\d+$": {"type": "string"}},
        "additionalProperties": False}}})
    _agree(definition, [
        ({"phu_luc": {"pl_1": "a", "pl_٢": "b"}}, True),
        ({"phu_luc": {"pl_1\n": "a"}}, True),
        ({"phu_luc": {"pl_1": 2}}, False),
        ({"phu_luc": {"pl_x": "a"}}, False),
    ])


def test_formats_and_multiple_of_are_the_references() -> None:
    definition = _form({"properties": {
        "ngay": {"type": "string", "format": "date"},
        "thoi_diem": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "trang": {"type": "string", "format": "uri"},
        "tep": {"type": "string", "format": "uuid"},
        "ip": {"type": "string", "format": "ipv4"},
        "khac": {"type": "string", "format": "ma-rieng"},
        "so_tien": {"type": "number", "multipleOf": 0.01},
        "so_luong": {"type": "integer", "multipleOf": 5},
    }})
    _agree(definition, [
        ({"ngay": "2024-02-29"}, True),
        ({"ngay": "2023-02-29"}, False),
        ({"ngay": "2024-2-9"}, False),
        ({"thoi_diem": "2024-02-29T08:30:00+07:00"}, True),
        ({"thoi_diem": "2024-02-29 08:30:00"}, False),
        ({"email": "a@b"}, True),
        ({"email": "@"}, True),                          # the reference only asks for '@'
        ({"email": "khong-co-a-cong"}, False),
        ({"trang": "https://dichvucong.gov.vn/p/home"}, True),
        ({"trang": "dichvucong.gov.vn"}, False),
        ({"tep": "0b6f5c4e-8b0f-4c1e-9d1e-3f1f2b7a9c10"}, True),
        ({"tep": "0b6f5c4e8b0f4c1e9d1e3f1f2b7a9c10"}, False),
        ({"ip": "10.0.0.256"}, False),
        ({"khac": "bất kỳ"}, True),                      # unknown formats pass
        ({"so_tien": 20.5}, True),
        ({"so_tien": 19.99}, False),                     # the reference's float division
        ({"so_luong": 10**30}, True),
        ({"so_luong": 10**30 + 1}, False),
    ])


def test_legacy_dependencies_keyword_is_ignored_as_by_the_reference() -> None:
    definition = _form({"properties": {"loai": {"type": "string"}, "ma": {"type": "string"}},
                        "dependencies": {"loai": ["ma"]},
                        "dependentRequired": {"ma": ["loai"]}})
    _agree(definition, [({"loai": "a"}, True), ({"ma": "b"}, False),
                        ({"loai": "a", "ma": "b"}, True)])


def test_values_json_cannot_carry_go_to_the_reference() -> None:
    definition = _form({"properties": {
        "so": {"type": "number", "maximum": 10}, "ten": {"type": "string", "maxLength": 3},
        "ds": {"type": "array"}}})
    form = compiled(definition)
    reference = FormValidator(definition)

    class Text(str):
        pass

    for data in ({"so": math.inf}, {"so": -math.inf}, {"so": math.nan}, {"so": Decimal("11")},
                 {"so": Decimal("1")}, {"ten": "\ud800"}, {"ten": Text("abcd")},
                 {"ds": (1, 2)}, {"ds": [math.inf]}, {1: "a"}):
        assert form.is_valid(data) is (not reference.errors(data)), data


def test_remote_references_are_refused() -> None:
    for ref in ("https://example.invalid/schema.json", "http://localhost:1234/integer.json",
                "file:///etc/passwd"):
        assert fast_validator({"properties": {"a": {"$ref": ref}}}) is None
        with pytest.raises(Unresolvable):
            _reference({"$ref": ref}).is_valid(1)
    assert fast_validator({"$ref": "https://json-schema.org/draft/2020-12/schema"}) is not None


def test_cache_shares_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = _form(CONDITIONAL)
    reordered = json.loads(json.dumps(definition, sort_keys=True))
    assert list(reordered) != list(definition)
    assert digest(reordered) == digest(definition)
    assert compiled(reordered) is compiled(definition)
    assert compiled(definition, key=digest(definition)) is compiled(definition)
    monkeypatch.setattr(validators, "CACHE_SIZE", 2)
    validators.cache_clear()
    forms = [compiled(_form({"properties": {f"f{i}": {"type": "string"}}})) for i in range(3)]
    assert validators.cache_len() == 2
    assert compiled(_form({"properties": {"f2": {"type": "string"}}})) is forms[2]
    # A compiled form keeps its own copy: changing the caller's dict changes nothing.
    mutable = _form({"properties": {"a": {"type": "string"}}})
    form = compiled(mutable)
    mutable["schema"]["properties"]["a"]["type"] = "integer"
    assert form.is_valid({"a": "x"})


# --- The regex translation on its own -------------------------------------------------------------

PATTERNS = [
    "^[0-9]{12}$", r"^\d{4}$", r"^[^@\s]+@[^@\s]+\.[^@\s]+$", r"^https?://[^\s/]+\.[^\s]+$",
    r"^(0|\+84)[0-9]{9,10}$", r"^[^/\\]+$", "^[0-9a-f]{64}$", r"^[A-Za-z0-9._-]{1,30}$",
    "^(Hộ kinh doanh|HỘ KINH DOANH) \\S",
    r"^[0-9]{1,6}(/[0-9]{4})?/[0-9A-ZĐa-z]+(-[0-9A-ZĐa-z]+)*$",
    "a", "a*?b", "^$", "$", r"\A\d\Z", r"[\w-]+", r"\W", r"\D\S", r"[^\W\d]", "x|^y$|z$",
    "(?x) a  b # comment", "[.]", "a.c", "[^a-c]", r"\$", r"[\^$]", "(?:ab){2,}", "é+",
    "[\u00c0-\u1ef9]+$", r"a[^\s\S]?b", "()*", "(|a)+$", r"[^\d\s]{2}", r"\.\*\?",
]
ALPHABET = ["a", "b", "c", "x", "y", "z", "0", "5", "٣", "-", "_", ".", "/", "\\", "@", " ",
            "\n", "\t", "\x1c", "\u00a0", "\ufeff", "\u2028", "é", "Đ", "ộ", "+", "$", "^",
            "👍", "Hộ kinh doanh ", "https://", "+84"]


def test_rust_pattern_matches_like_python() -> None:
    rng = random.Random(20240229)
    strings = ["", "\n"] + ["".join(rng.choices(ALPHABET, k=rng.randint(1, 8)))
                            for _ in range(400)]
    for pattern in PATTERNS:
        assert rust_pattern(pattern) is not None, pattern
        fast = fast_validator({"pattern": pattern})
        names = fast_validator({"patternProperties": {pattern: False}})
        assert fast is not None and names is not None, pattern
        for text in strings + [m for m in strings if re.search(pattern, m)]:
            expected = re.search(pattern, text) is not None
            assert fast.is_valid(text) is expected, (pattern, text)
            assert names.is_valid({text: 1}) is not expected, (pattern, text)


def test_untranslatable_patterns() -> None:
    for pattern in ("(?i)a", "(?=a)", "(a)\\1", r"\bx", "a$b", "(?s).", "(?m)^a", "a++",
                    "(?>a)", "(?a)\\d", "\ud800"):
        assert rust_pattern(pattern) is None, pattern
