"""eForm definitions: the meta-schema, the catalogue under forms/, references that must stay
inside a form, and conditional rules the server enforces exactly like the browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.forms.definitions import (
    DefinitionError,
    FormValidator,
    check,
    effective_schema,
)

FORMS = Path(__file__).resolve().parents[1] / "forms"
CATALOGUE = sorted(p.parent for p in FORMS.glob("*/form.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _form(schema: dict[str, Any], fields: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    props = schema.get("properties", {})
    ui = fields if fields is not None else {
        name: {"label": {"vi": name, "en": name}} for name in props}
    return {"kind": "Form", "key": "thu-nghiem", "title": {"vi": "Thử", "en": "Test"},
            "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "type": "object", **schema},
            "ui_schema": {"fields": ui}, **extra}


def _pointers(form: dict[str, Any], data: Any) -> list[str]:
    return sorted({e.pointer for e in FormValidator(check(form)).errors(data)})


def test_the_catalogue_has_the_four_required_forms() -> None:
    assert {p.name for p in CATALOGUE} >= {"tuyen-dung", "thi-nang-ngach", "ho-kinh-doanh",
                                           "khieu-nai"}


@pytest.mark.parametrize("folder", CATALOGUE, ids=lambda p: p.name)
def test_catalogue_form_and_its_samples(folder: Path) -> None:
    definition = check(_load(folder / "form.json"))
    assert definition["key"] == folder.name
    validator = FormValidator(definition)
    valid = sorted((folder / "valid").glob("*.json"))
    invalid = sorted((folder / "invalid").glob("*.json"))
    assert len(valid) >= 2 and len(invalid) >= 4
    for sample in valid:
        errors = validator.errors(_load(sample))
        assert errors == [], (sample.name, [e.as_dict() for e in errors])
    for sample in invalid:
        case = _load(sample)
        errors = validator.errors(case["data"])
        assert sorted({e.pointer for e in errors}) == sorted(case["expected_pointers"]), (
            sample.name, [e.as_dict() for e in errors])
        assert all(e.vi and e.en for e in errors), "every error speaks Vietnamese and English"


def test_required_when_visible_and_hidden_fields_are_enforced_on_the_server() -> None:
    form = _form(
        {"properties": {"loai": {"enum": ["ca_nhan", "to_chuc"]},
                        "ten_to_chuc": {"type": "string", "minLength": 1}},
         "required": ["loai"]},
        {"loai": {"label": {"vi": "Loại", "en": "Kind"}},
         "ten_to_chuc": {"label": {"vi": "Tên tổ chức", "en": "Organisation"},
                         "visible_when": {"properties": {"loai": {"const": "to_chuc"}},
                                          "required": ["loai"]},
                         "required_when_visible": True}})
    assert _pointers(form, {"loai": "to_chuc"}) == ["/ten_to_chuc"]
    assert _pointers(form, {"loai": "to_chuc", "ten_to_chuc": "UBND"}) == []
    assert _pointers(form, {"loai": "ca_nhan"}) == []
    hidden = FormValidator(check(form)).errors({"loai": "ca_nhan", "ten_to_chuc": "UBND"})
    assert [(e.pointer, e.keyword) for e in hidden] == [("/ten_to_chuc", "hidden")]


def test_unknown_fields_are_refused_unless_the_form_allows_them() -> None:
    schema = {"properties": {"ho_ten": {"type": "string"}}}
    assert _pointers(_form(schema), {"ho_ten": "A", "la": 1, "b/c": 2}) == ["/b~1c", "/la"]
    assert _pointers(_form(schema, allow_unknown_fields=True), {"ho_ten": "A", "la": 1}) == []


def test_errors_carry_pointers_and_both_languages() -> None:
    form = _form({"properties": {
        "ngay_sinh": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
        "cccd": {"type": "string", "pattern": "^[0-9]{12}$"},
        "con": {"type": "array", "items": {"$ref": "#/$defs/nguoi"}}},
        "$defs": {"nguoi": {"type": "object", "required": ["ho_ten"],
                            "properties": {"ho_ten": {"type": "string"}}}}})
    errors = FormValidator(check(form)).errors({
        "ngay_sinh": "31/02/2000", "email": "không-phải-email", "cccd": "12ab",
        "con": [{"ho_ten": "B"}, {}]})
    assert [(e.pointer, e.keyword) for e in errors] == [
        ("/cccd", "pattern"), ("/con/1/ho_ten", "required"), ("/email", "format"),
        ("/ngay_sinh", "format")]
    assert errors[0].vi == "Giá trị không đúng mẫu quy định."


def test_every_2020_12_feature_a_form_may_use() -> None:
    """$defs, in-document $ref, embedded resources with their own $id, $anchor,
    $dynamicRef, unevaluatedProperties and if/then/else are all accepted."""
    form = _form({
        "$defs": {
            "so": {"$anchor": "so-dien-thoai", "type": "string", "pattern": "^0[0-9]{9}$"},
            "dia_chi": {"$id": "urn:nentang:dia-chi", "type": "object",
                        "properties": {"tinh": {"$ref": "#ma"}},
                        "$defs": {"ma": {"$anchor": "ma", "type": "string"}}},
            "cay": {"$dynamicAnchor": "nut", "type": "object",
                    "properties": {"con": {"type": "array", "items": {"$dynamicRef": "#nut"}}}},
        },
        "properties": {"dien_thoai": {"$ref": "#so-dien-thoai"},
                       "dia_chi": {"$ref": "urn:nentang:dia-chi"},
                       "cay": {"$ref": "#/$defs/cay"},
                       "loai": {"type": "string"}},
        "if": {"properties": {"loai": {"const": "x"}}, "required": ["loai"]},
        "then": {"required": ["dien_thoai"]},
        "unevaluatedProperties": False})
    assert _pointers(form, {"dien_thoai": "0912345678", "dia_chi": {"tinh": "01"},
                            "cay": {"con": [{"con": []}]}}) == []
    assert _pointers(form, {"loai": "x", "dia_chi": {"tinh": 1}}) == ["/dia_chi/tinh",
                                                                      "/dien_thoai"]


@pytest.mark.parametrize("ref", [
    "https://example.com/schema.json", "https://example.com/schema.json#/$defs/x",
    "other.json", "file:///etc/passwd", "urn:somewhere:else"])
def test_references_outside_the_form_are_refused(ref: str) -> None:
    form = _form({"properties": {"x": {"$ref": ref}}})
    with pytest.raises(DefinitionError) as raised:
        check(form)
    assert [e.pointer for e in raised.value.errors] == ["/schema/properties/x/$ref"]
    assert "outside" in raised.value.errors[0].en


@pytest.mark.parametrize(("mutate", "pointer"), [
    (lambda f: f["schema"].update(type="array"), "/schema/type"),
    (lambda f: f["schema"]["properties"]["a"].update(type="strang"),
     "/schema/properties/a/type"),
    (lambda f: f["schema"]["properties"]["a"].update(minLength=-1),
     "/schema/properties/a/minLength"),
    (lambda f: f["ui_schema"]["fields"].pop("a"), "/ui_schema/fields/a"),
    (lambda f: f["ui_schema"]["fields"].update(b={"label": {"vi": "b", "en": "b"}}),
     "/ui_schema/fields/b"),
    (lambda f: f["ui_schema"].update(order=["a", "z"]), "/ui_schema/order/1"),
    (lambda f: f["ui_schema"]["fields"]["a"].update(required_when_visible=True),
     "/ui_schema/fields/a"),
    (lambda f: f["ui_schema"]["fields"]["a"]["label"].pop("en"),
     "/ui_schema/fields/a/label"),
    (lambda f: f.update(key="Có Dấu"), "/key"),
    (lambda f: f.update(extra=1), ""),
    (lambda f: f["ui_schema"].update(sections=[
        {"id": "mot", "title": {"vi": "1", "en": "1"}, "fields": ["a"]},
        {"id": "hai", "title": {"vi": "2", "en": "2"}, "fields": ["a"]}]),
     "/ui_schema/sections/1/fields/0"),
    (lambda f: (f["schema"]["properties"]["a"].update(enum=["x", "y"]),
                f["ui_schema"]["fields"]["a"].update(
                    option_labels={"x": {"vi": "X", "en": "X"}, "yy": {"vi": "Y", "en": "Y"}})),
     "/ui_schema/fields/a/option_labels"),
])
def test_bad_definitions_name_the_problem(mutate: Any, pointer: str) -> None:
    form = _form({"properties": {"a": {"type": "string"}}})
    mutate(form)
    with pytest.raises(DefinitionError) as raised:
        check(form)
    assert pointer in [e.pointer for e in raised.value.errors], raised.value.errors


def test_required_when_visible_false_needs_no_condition() -> None:
    check(_form({"properties": {"a": {"type": "string"}}},
                {"a": {"label": {"vi": "a", "en": "a"}, "required_when_visible": False}}))


def test_effective_schema_is_plain_json_schema() -> None:
    form = _form({"properties": {"a": {"type": "boolean"}, "b": {"type": "string"}}},
                 {"a": {"label": {"vi": "a", "en": "a"}},
                  "b": {"label": {"vi": "b", "en": "b"}, "visible_when":
                        {"properties": {"a": {"const": True}}, "required": ["a"]},
                        "required_when_visible": True}})
    effective = effective_schema(check(form))
    assert effective["unevaluatedProperties"] is False
    assert effective["allOf"][1] == {
        "if": {"properties": {"a": {"const": True}}, "required": ["a"]},
        "then": {"required": ["b"]}, "else": {"not": {"required": ["b"]}}}


def test_the_five_required_formats_are_checked() -> None:
    from jsonschema import Draft202012Validator

    from app.forms.definitions import FORMATS

    assert set(FORMATS) <= set(Draft202012Validator.FORMAT_CHECKER.checkers)
    form = _form({"properties": {name.replace("-", "_"): {"type": "string", "format": name}
                                 for name in FORMATS}})
    bad = {name.replace("-", "_"): "không hợp lệ" for name in FORMATS}
    assert _pointers(form, bad) == sorted(f"/{name.replace('-', '_')}" for name in FORMATS)
    good = {"date": "2025-07-01", "date_time": "2025-07-01T08:00:00+07:00",
            "email": "a@example.vn", "uri": "https://dichvucong.gov.vn/",
            "uuid": "0b7c3a2e-4a57-4d0e-9d0b-2f7f2b0f8c11"}
    assert _pointers(form, good) == []


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"(x*)*y", r"^(\w+\s?)*$",
                                     r"(?:[0-9]+,?)+$", r"(a{1,1000})+", r"((a|b)+)*c"])
def test_catastrophic_patterns_are_refused_at_save_time(pattern: str) -> None:
    form = _form({"properties": {"a": {"type": "string", "pattern": pattern},
                                 "b": {"type": "object", "patternProperties": {pattern: {}}}}},
                 {"a": {"label": {"vi": "a", "en": "a"}},
                  "b": {"label": {"vi": "b", "en": "b"},
                        "visible_when": {"properties": {"a": {"pattern": pattern}}}}})
    with pytest.raises(DefinitionError) as raised:
        check(form)
    assert sorted(e.pointer for e in raised.value.errors) == [
        "/schema/properties/a/pattern", f"/schema/properties/b/patternProperties/{pattern}",
        "/ui_schema/fields/b/visible_when/properties/a/pattern"]
    assert all("exponential" in e.en for e in raised.value.errors)


@pytest.mark.parametrize("pattern", [r"^[0-9]{12}$", r"^0[0-9]{9,10}$", r"^(ab|cd)+$",
                                     r"^[A-Z]{2}-[0-9]+$", r"^\S+@\S+\.\S+$", r"^(a{2}){3}$",
                                     r"^[0-9A-Z]+(-[0-9A-Z]+)*$", r"((ab)*c)+"])
def test_ordinary_patterns_pass(pattern: str) -> None:
    check(_form({"properties": {"a": {"type": "string", "pattern": pattern}}}))


def test_a_pattern_that_does_not_compile_is_refused() -> None:
    with pytest.raises(DefinitionError):
        check(_form({"properties": {"a": {"type": "string", "pattern": "(unclosed"}}}))
