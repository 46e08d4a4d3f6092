"""Form variants: a descendant's variant may add fields and narrow its parent's form, never
remove or loosen it. Every refusal is explained at a pointer into the variant, and whatever
a variant without violations accepts, restricted to the parent's fields, the parent
accepts."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.forms.definitions import FieldError, FormValidator, check
from app.forms.variants import check_variant

FORMS = Path(__file__).resolve().parents[1] / "forms"
CATALOGUE = sorted(p.parent.name for p in FORMS.glob("*/form.json"))

Definition = dict[str, Any]
Edit = Callable[[Definition], None]
Submission = dict[str, Any]
Adjust = Callable[[list[Submission]], list[Submission]]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def catalogue(key: str) -> Definition:
    return check(_load(FORMS / key / "form.json"))


def samples(key: str) -> list[Submission]:
    return [_load(p) for p in sorted((FORMS / key / "valid").glob("*.json"))]


def add_sex_other(definition: Definition) -> None:
    """Widen the sex field with a labelled third option."""
    definition["schema"]["properties"]["gioi_tinh"]["enum"].append("khac")
    definition["ui_schema"]["fields"]["gioi_tinh"].setdefault("option_labels", {})["khac"] = {
        "vi": "Khác", "en": "Other"}


def variant_of(key: str, *edits: Edit) -> tuple[Definition, Definition]:
    """The catalogue form and a variant of it (a checked definition) made by ``edits``."""
    parent = catalogue(key)
    variant = copy.deepcopy(parent)
    variant["title"] = {"vi": f"{parent['title']['vi']} (biến thể)",
                        "en": f"{parent['title']['en']} (variant)"}
    for edit in edits:
        edit(variant)
    return parent, check(variant)


def found(parent: Definition, variant: Definition) -> list[tuple[str, str]]:
    return [(e.pointer, e.keyword) for e in check_variant(parent, variant)]


def _small(schema: dict[str, Any], fields: dict[str, Any] | None = None,
           **extra: Any) -> Definition:
    ui = fields if fields is not None else {
        name: {"label": {"vi": name, "en": name}} for name in schema.get("properties", {})}
    return check({"kind": "Form", "key": "thu-nghiem", "title": {"vi": "Thử", "en": "Test"},
                  "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                             "type": "object", **schema},
                  "ui_schema": {"fields": ui}, **extra})


# --- edits -------------------------------------------------------------------------------

def add_field(name: str, schema: Any, *, required: bool = False, **ui: Any) -> Edit:
    def edit(d: Definition) -> None:
        d["schema"]["properties"][name] = schema
        if required:
            d["schema"]["required"].append(name)
        d["ui_schema"]["fields"][name] = {"label": {"vi": name, "en": name}, **ui}
    return edit


def remove_field(name: str) -> Edit:
    def edit(d: Definition) -> None:
        del d["schema"]["properties"][name]
        del d["ui_schema"]["fields"][name]
        if name in d["schema"].get("required", []):
            d["schema"]["required"].remove(name)
        if name in d["ui_schema"].get("order", []):
            d["ui_schema"]["order"].remove(name)
        for section in d["ui_schema"].get("sections", []):
            if name in section["fields"]:
                section["fields"].remove(name)
    return edit


def at(*path: str | int) -> Callable[[Definition], Any]:
    def get(d: Definition) -> Any:
        node: Any = d
        for key in path:
            node = node[key]
        return node
    return get


def put(*path: str | int, value: Any) -> Edit:
    def edit(d: Definition) -> None:
        at(*path[:-1])(d)[path[-1]] = copy.deepcopy(value)
    return edit


def drop(*path: str | int) -> Edit:
    def edit(d: Definition) -> None:
        del at(*path[:-1])(d)[path[-1]]
    return edit


def unrequire(name: str, *path: str | int) -> Edit:
    def edit(d: Definition) -> None:
        at(*path, "required")(d).remove(name)
    return edit


def relabel(d: Definition) -> None:
    for name, entry in d["ui_schema"]["fields"].items():
        entry["label"] = {"vi": f"{entry['label']['vi']} (xã)", "en": f"{name} (commune)"}
        entry["help"] = {"vi": "Hướng dẫn của xã.", "en": "The commune's guidance."}
    d["ui_schema"]["order"] = list(reversed(d["ui_schema"].get("order", [])))
    if d["ui_schema"].get("sections"):
        d["ui_schema"]["sections"] = list(reversed(d["ui_schema"]["sections"]))
    d["schema"]["properties"][next(iter(d["schema"]["properties"]))]["title"] = "Tiêu đề mới"


TO_CAO = {"properties": {"loai_don": {"const": "to_cao"}}, "required": ["loai_don"]}


# --- a form as its own variant, and variants that only narrow ----------------------------

@pytest.mark.parametrize("key", CATALOGUE)
def test_a_catalogue_form_is_a_variant_of_itself(key: str) -> None:
    parent = catalogue(key)
    assert check_variant(parent, copy.deepcopy(parent)) == []


@pytest.mark.parametrize("key", CATALOGUE)
def test_labels_help_order_sections_and_annotations_may_change(key: str) -> None:
    assert found(*variant_of(key, relabel)) == []


NARROWING: dict[str, tuple[str, list[Edit]]] = {
    "adds an optional field": ("ho-kinh-doanh", [
        add_field("so_to_dan_pho", {"type": "integer", "minimum": 1})]),
    "adds a required field with a visibility rule of its own": ("khieu-nai", [
        add_field("so_ho_so", {"type": "string", "pattern": "^[0-9]{6}$"},
                  visible_when=TO_CAO, required_when_visible=True)]),
    "narrows an enum": ("tuyen-dung", [
        put("schema", "properties", "loai_tuyen_dung", "enum", value=["cong_chuc"])]),
    "narrows an enum to a const": ("tuyen-dung", [
        put("schema", "properties", "hinh_thuc_tuyen_dung", value={"const": "thi_tuyen"})]),
    "narrows an enum in array items": ("khieu-nai", [
        put("schema", "properties", "yeu_cau_bao_ve", "items", "enum",
            value=["tinh_mang_suc_khoe", "tai_san"])]),
    "tightens maxLength and minLength": ("tuyen-dung", [
        put("schema", "properties", "ho_ten", "maxLength", value=60),
        put("schema", "properties", "ho_ten", "minLength", value=5)]),
    "tightens bounds, inclusive or exclusive": ("thi-nang-ngach", [
        put("schema", "properties", "he_so_luong", "maximum", value=8.0),
        drop("schema", "properties", "bac_luong", "maximum"),
        put("schema", "properties", "bac_luong", "exclusiveMaximum", value=10),
        put("schema", "properties", "thoi_gian_giu_ngach", "properties", "so_nam",
            "exclusiveMinimum", value=0)]),
    "adds a pattern, a format, a bound and a multipleOf": ("ho-kinh-doanh", [
        put("schema", "properties", "chu_ho_dan_toc", "pattern", value="^[^0-9]+$"),
        put("schema", "properties", "von_kinh_doanh", "maximum", value=10_000_000_000),
        put("schema", "properties", "von_kinh_doanh", "multipleOf", value=1000),
        put("schema", "properties", "so_lao_dong", "type", value="integer")]),
    "narrows a shared definition": ("tuyen-dung", [
        put("schema", "$defs", "dia_chi", "properties", "chi_tiet", "maxLength", value=150),
        put("schema", "$defs", "van_bang", "properties", "trinh_do", "enum",
            value=["dai_hoc", "thac_si", "tien_si"])]),
    "points a field to a narrower definition of its own": ("tuyen-dung", [
        put("schema", "$defs", "email_cong_vu", value={
            "type": "string", "format": "email", "maxLength": 100,
            "pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"}),
        put("schema", "properties", "email", value={"$ref": "#/$defs/email_cong_vu"})]),
    "inlines a definition": ("tuyen-dung", [
        put("schema", "properties", "so_dinh_danh",
            value={"type": "string", "pattern": "^[0-9]{12}$"})]),
    "makes an optional field required": ("tuyen-dung", [
        lambda d: d["schema"]["required"].append("que_quan")]),
    "makes an always-shown optional field conditional": ("khieu-nai", [
        put("ui_schema", "fields", "co_quan_lien_quan", "visible_when",
            value={"not": {"properties": {"loai_don": {"const": "phan_anh"}},
                           "required": ["loai_don"]}})]),
    "shows a field that is optional when shown under a narrower condition": ("khieu-nai", [
        put("ui_schema", "fields", "yeu_cau_giu_bi_mat", "visible_when", value={
            "properties": {"loai_don": {"const": "to_cao"}, "an_danh": {"const": False}},
            "required": ["loai_don"]})]),
    "requires a field when shown that the parent leaves optional": ("khieu-nai", [
        put("ui_schema", "fields", "yeu_cau_bao_ve", "required_when_visible", value=True)]),
    "adds a rule to allOf": ("khieu-nai", [
        lambda d: d["schema"]["allOf"].append({
            "if": {"properties": {"loai_don": {"const": "phan_anh"}}, "required": ["loai_don"]},
            "then": {"required": ["dia_diem_xay_ra"]}})]),
    "raises a personal-data class": ("thi-nang-ngach", [
        put("ui_schema", "fields", "chuc_vu", "personal_data", value="basic")]),
    "replaces a field's schema with a narrower one": ("tuyen-dung", [
        put("schema", "properties", "ton_giao", value={"type": "string", "minLength": 2,
                                                       "maxLength": 50})]),
}


@pytest.mark.parametrize("case", sorted(NARROWING))
def test_variants_that_only_narrow_are_accepted(case: str) -> None:
    key, edits = NARROWING[case]
    assert found(*variant_of(key, *edits)) == []


def test_a_variant_may_refuse_unknown_fields_its_parent_allows() -> None:
    parent = _small({"properties": {"a": {"type": "string"}}}, allow_unknown_fields=True)
    variant = copy.deepcopy(parent)
    variant["allow_unknown_fields"] = False
    assert check_variant(parent, variant) == []
    variant["allow_unknown_fields"] = True
    assert check_variant(parent, variant) == []


def test_bounds_imply_each_other_across_inclusive_and_exclusive() -> None:
    parent = _small({"properties": {"n": {"type": "number", "minimum": 0,
                                          "exclusiveMaximum": 10, "multipleOf": 0.5}}})
    ok = _small({"properties": {"n": {"type": "integer", "exclusiveMinimum": 0,
                                      "maximum": 9}}})
    assert check_variant(parent, ok) == []
    loose = _small({"properties": {"n": {"type": "number", "exclusiveMinimum": -1,
                                         "maximum": 10, "multipleOf": 0.25}}})
    assert sorted(found(parent, loose)) == [
        ("/schema/properties/n/exclusiveMaximum", "variant-widened"),
        ("/schema/properties/n/minimum", "variant-widened"),
        ("/schema/properties/n/multipleOf", "variant-widened")]


def test_recursive_definitions_are_compared() -> None:
    node = {"type": "object", "additionalProperties": False,
            "properties": {"ten": {"type": "string", "maxLength": 50},
                           "con": {"type": "array", "items": {"$ref": "#/$defs/nut"}}}}
    parent = _small({"properties": {"cay": {"$ref": "#/$defs/nut"}}, "$defs": {"nut": node}})
    assert check_variant(parent, copy.deepcopy(parent)) == []
    variant = copy.deepcopy(parent)
    variant["schema"]["$defs"]["nut"]["properties"]["ten"]["maxLength"] = 80
    assert found(parent, check(variant)) == [
        ("/schema/$defs/nut/properties/ten/maxLength", "variant-widened")]


def test_references_by_anchor_and_embedded_id_are_followed() -> None:
    parent = _small({"properties": {
        "a": {"$ref": "#ma"}, "b": {"$ref": "urn:nentang:test:dia-chi#/properties/xa"}},
        "$defs": {"ma": {"$anchor": "ma", "type": "string", "pattern": "^[0-9]{2}$"},
                  "dia_chi": {"$id": "urn:nentang:test:dia-chi", "type": "object",
                              "properties": {"xa": {"type": "string", "maxLength": 5}}}}})
    assert check_variant(parent, copy.deepcopy(parent)) == []
    variant = copy.deepcopy(parent)
    variant["schema"]["$defs"]["ma"]["pattern"] = "^[0-9]+$"
    variant["schema"]["$defs"]["dia_chi"]["properties"]["xa"]["maxLength"] = 6
    assert sorted(found(parent, check(variant))) == [
        ("/schema/$defs/dia_chi/properties/xa/maxLength", "variant-widened"),
        ("/schema/$defs/ma/pattern", "variant-widened")]


# --- violations --------------------------------------------------------------------------

VIOLATIONS: dict[str, tuple[str, list[Edit], str, str]] = {
    "removes a field": (
        "ho-kinh-doanh", [remove_field("website")],
        "/schema/properties/website", "variant-removed-field"),
    "removes a field by making it false": (
        "ho-kinh-doanh", [put("schema", "properties", "website", value=False)],
        "/schema/properties/website", "variant-removed-field"),
    "removes a nested property": (
        "tuyen-dung", [drop("schema", "properties", "vi_tri_du_tuyen", "properties",
                            "ma_vi_tri")],
        "/schema/properties/vi_tri_du_tuyen/properties/ma_vi_tri", "variant-removed-field"),
    "makes a required field optional": (
        "ho-kinh-doanh", [unrequire("ten_ho_kinh_doanh", "schema")],
        "/schema/required", "variant-optional"),
    "makes a required nested property optional": (
        "tuyen-dung", [unrequire("co_quan_don_vi", "schema", "properties", "vi_tri_du_tuyen")],
        "/schema/properties/vi_tri_du_tuyen/required", "variant-optional"),
    "widens an enum": (
        "tuyen-dung", [add_sex_other],
        "/schema/properties/gioi_tinh/enum", "variant-widened"),
    "widens an enum in a shared definition": (
        "khieu-nai", [lambda d: d["schema"]["$defs"]["tep_dinh_kem"]["properties"][
            "loai_noi_dung"]["enum"].append("application/zip")],
        "/schema/$defs/tep_dinh_kem/properties/loai_noi_dung/enum", "variant-widened"),
    "replaces an enum with a free type": (
        "khieu-nai", [put("schema", "properties", "lan_khieu_nai", value={"type": "string"})],
        "/schema/properties/lan_khieu_nai/enum", "variant-widened"),
    "changes a type": (
        "thi-nang-ngach", [put("schema", "properties", "bac_luong", "type", value="number")],
        "/schema/properties/bac_luong/type", "variant-widened"),
    "adds a type": (
        "tuyen-dung", [put("schema", "properties", "ho_ten", "type", value=["string", "null"])],
        "/schema/properties/ho_ten/type", "variant-widened"),
    "removes a format": (
        "tuyen-dung", [drop("schema", "properties", "ngay_sinh", "format")],
        "/schema/properties/ngay_sinh/format", "variant-widened"),
    "changes a format": (
        "tuyen-dung", [put("schema", "properties", "ngay_sinh", "format", value="date-time")],
        "/schema/properties/ngay_sinh/format", "variant-widened"),
    "removes a pattern": (
        "tuyen-dung", [drop("schema", "$defs", "so_dinh_danh", "pattern")],
        "/schema/$defs/so_dinh_danh/pattern", "variant-widened"),
    "changes a pattern": (
        "thi-nang-ngach", [put("schema", "properties", "so_dinh_danh", "pattern",
                               value="^[0-9]{9,12}$")],
        "/schema/properties/so_dinh_danh/pattern", "variant-widened"),
    "raises maxLength": (
        "tuyen-dung", [put("schema", "properties", "ho_ten", "maxLength", value=200)],
        "/schema/properties/ho_ten/maxLength", "variant-widened"),
    "removes maxLength": (
        "tuyen-dung", [drop("schema", "properties", "ho_ten", "maxLength")],
        "/schema/properties/ho_ten/maxLength", "variant-widened"),
    "lowers minLength": (
        "khieu-nai", [put("schema", "properties", "noi_dung", "minLength", value=5)],
        "/schema/properties/noi_dung/minLength", "variant-widened"),
    "raises a nested maximum": (
        "thi-nang-ngach", [put("schema", "properties", "thoi_gian_giu_ngach", "properties",
                               "so_thang", "maximum", value=12)],
        "/schema/properties/thoi_gian_giu_ngach/properties/so_thang/maximum",
        "variant-widened"),
    "raises a maximum in a shared definition": (
        "ho-kinh-doanh", [put("schema", "$defs", "tep_dinh_kem", "properties", "kich_thuoc",
                              "maximum", value=20971520)],
        "/schema/$defs/tep_dinh_kem/properties/kich_thuoc/maximum", "variant-widened"),
    "lowers a minimum": (
        "ho-kinh-doanh", [put("schema", "properties", "von_kinh_doanh", "minimum", value=-1)],
        "/schema/properties/von_kinh_doanh/minimum", "variant-widened"),
    "raises maxItems": (
        "ho-kinh-doanh", [put("schema", "properties", "nganh_nghe", "maxItems", value=100)],
        "/schema/properties/nganh_nghe/maxItems", "variant-widened"),
    "drops uniqueItems": (
        "khieu-nai", [drop("schema", "properties", "yeu_cau_bao_ve", "uniqueItems")],
        "/schema/properties/yeu_cau_bao_ve/uniqueItems", "variant-widened"),
    "drops additionalProperties false": (
        "khieu-nai", [drop("schema", "properties", "nguoi_gui", "additionalProperties")],
        "/schema/properties/nguoi_gui/additionalProperties", "variant-widened"),
    "adds a nested property the parent refuses": (
        "tuyen-dung", [put("schema", "properties", "vi_tri_du_tuyen", "properties", "cap_bac",
                           value={"type": "string"})],
        "/schema/properties/vi_tri_du_tuyen/properties/cap_bac", "variant-widened"),
    "puts a visibility condition on an always-required field": (
        "tuyen-dung", [put("ui_schema", "fields", "ho_ten", "visible_when",
                           value={"properties": {"loai_tuyen_dung": {"const": "cong_chuc"}}})],
        "/ui_schema/fields/ho_ten/visible_when", "variant-visibility"),
    "changes the condition of a field required when shown": (
        "ho-kinh-doanh", [put("ui_schema", "fields", "thanh_vien_ho_gia_dinh", "visible_when",
                              value={"properties": {"loai_chu_the": {"const": "ca_nhan"}},
                                     "required": ["loai_chu_the"]})],
        "/ui_schema/fields/thanh_vien_ho_gia_dinh/visible_when", "variant-visibility"),
    "changes the condition of an optional conditional field": (
        "khieu-nai", [put("ui_schema", "fields", "yeu_cau_giu_bi_mat", "visible_when",
                          value={"properties": {"loai_don": {"enum": ["to_cao", "khieu_nai"]}},
                                 "required": ["loai_don"]})],
        "/ui_schema/fields/yeu_cau_giu_bi_mat/visible_when", "variant-visibility"),
    "drops the condition of an optional conditional field": (
        "khieu-nai", [drop("ui_schema", "fields", "kenh_nhan_ket_qua", "visible_when")],
        "/ui_schema/fields/kenh_nhan_ket_qua/visible_when", "variant-visibility"),
    "drops required_when_visible": (
        "ho-kinh-doanh", [put("ui_schema", "fields", "bien_ban_hop_thanh_vien",
                              "required_when_visible", value=False)],
        "/ui_schema/fields/bien_ban_hop_thanh_vien/required_when_visible", "variant-optional"),
    "changes an allOf rule": (
        "khieu-nai", [put("schema", "allOf", 0, "then", "properties", "an_danh",
                          value={"type": "boolean"})],
        "/schema/allOf", "variant-changed"),
    "removes an allOf rule": (
        "khieu-nai", [lambda d: d["schema"]["allOf"].pop(1)],
        "/schema/allOf", "variant-changed"),
    "widens the then of an if/then rule": (
        "thi-nang-ngach", [lambda d: d["schema"]["allOf"][0]["then"]["properties"][
            "trinh_do_ly_luan_chinh_tri"]["enum"].append("trung_cap")],
        "/schema/allOf", "variant-changed"),
    "replaces an enum in a shared definition": (
        "tuyen-dung", [put("schema", "$defs", "van_bang", "properties", "xep_loai",
                           value={"type": "string"})],
        "/schema/$defs/van_bang/properties/xep_loai/enum", "variant-widened"),
    "allows unknown fields": (
        "khieu-nai", [put("allow_unknown_fields", value=True)],
        "/allow_unknown_fields", "variant-unknown-fields"),
    "lowers a personal-data class": (
        "tuyen-dung", [put("ui_schema", "fields", "dan_toc", "personal_data", value="basic")],
        "/ui_schema/fields/dan_toc/personal_data", "variant-personal-data"),
}


def _explained(error: FieldError) -> None:
    assert error.vi.strip() and error.en.strip()
    assert re.search("[ạảãàáâậầấẩẫăắằặẳẵđêềếểễệôồốổỗộơờớởỡợưừứửữựịỉĩìíọỏõòóụủũùúỳýỷỹỵ]",
                     error.vi), error.vi
    assert error.keyword.startswith("variant-")
    assert error.pointer.startswith("/")


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_violation_is_explained_where_it_is(case: str) -> None:
    key, edits, pointer, keyword = VIOLATIONS[case]
    errors = check_variant(*variant_of(key, *edits))
    assert [(e.pointer, e.keyword) for e in errors] == [(pointer, keyword)], errors
    _explained(errors[0])


def test_messages_name_the_field_and_what_the_parent_requires() -> None:
    errors = check_variant(*variant_of(
        "ho-kinh-doanh", unrequire("ten_ho_kinh_doanh", "schema"),
        put("schema", "properties", "so_lao_dong", "maximum", value=200000)))
    by_pointer = {e.pointer: e for e in errors}
    required = by_pointer["/schema/required"]
    assert "ten_ho_kinh_doanh" in required.en and "ten_ho_kinh_doanh" in required.vi
    assert "required" in required.en and "bắt buộc" in required.vi
    bound = by_pointer["/schema/properties/so_lao_dong/maximum"]
    assert "so_lao_dong" in bound.en and "100000" in bound.en and "200000" in bound.en
    assert "100000" in bound.vi
    removed = check_variant(*variant_of("ho-kinh-doanh", remove_field("email")))[0]
    assert "email" in removed.en and "lược bỏ" in removed.vi
    kept = check_variant(*variant_of("khieu-nai", lambda d: d["schema"]["allOf"].pop(0)))[0]
    assert "keep the parent's definition" in kept.en and "giữ nguyên" in kept.vi


def test_several_violations_are_all_reported() -> None:
    parent, variant = variant_of(
        "tuyen-dung",
        remove_field("que_quan"),
        unrequire("ho_ten", "schema"),
        add_sex_other,
        drop("schema", "properties", "ngay_sinh", "format"),
        put("schema", "$defs", "dia_chi", "properties", "tinh", "pattern", value="^[0-9]+$"),
        put("ui_schema", "fields", "email", "visible_when", value={"required": ["dien_thoai"]}),
        put("ui_schema", "fields", "ly_do_mien_thi_ngoai_ngu", "visible_when", value=True),
        put("allow_unknown_fields", value=True),
        add_field("ghi_chu", {"type": "string", "maxLength": 500}),
    )
    errors = check_variant(parent, variant)
    assert sorted((e.pointer, e.keyword) for e in errors) == sorted([
        ("/schema/properties/que_quan", "variant-removed-field"),
        ("/schema/required", "variant-optional"),
        ("/schema/properties/gioi_tinh/enum", "variant-widened"),
        ("/schema/properties/ngay_sinh/format", "variant-widened"),
        ("/schema/$defs/dia_chi/properties/tinh/pattern", "variant-widened"),
        ("/ui_schema/fields/email/visible_when", "variant-visibility"),
        ("/ui_schema/fields/ly_do_mien_thi_ngoai_ngu/visible_when", "variant-visibility"),
        ("/allow_unknown_fields", "variant-unknown-fields"),
    ])
    for error in errors:
        _explained(error)


def test_rules_that_cannot_be_proved_must_be_kept() -> None:
    parent = _small({"properties": {
        "x": {"type": "object", "properties": {"a": {"type": "string"}},
              "if": {"required": ["a"]}, "then": {"required": ["b"]}},
        "y": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]},
        "z": {"type": "array", "contains": {"const": 1}, "minContains": 2}}})
    assert check_variant(parent, copy.deepcopy(parent)) == []
    variant = copy.deepcopy(parent)
    variant["schema"]["properties"]["x"]["then"] = {"required": ["c"]}
    variant["schema"]["properties"]["y"]["anyOf"][1]["minimum"] = 1  # narrower, not proved
    variant["schema"]["properties"]["z"]["minContains"] = 1
    assert sorted(found(parent, check(variant))) == [
        ("/schema/properties/x/if", "variant-changed"),
        ("/schema/properties/y/anyOf", "variant-changed"),
        ("/schema/properties/z/contains", "variant-changed")]


def test_a_new_field_may_not_take_a_name_the_parents_rules_use() -> None:
    parent = _small({"properties": {"a": {"type": "string"}},
                     "if": {"not": {"required": ["b"]}}, "then": {"required": ["a"]}})
    parent_b = copy.deepcopy(parent)
    parent_b["schema"]["properties"]["b"] = {"type": "string"}
    parent_b["ui_schema"]["fields"]["b"] = {"label": {"vi": "b", "en": "b"}}
    assert found(parent, check(parent_b)) == [
        ("/schema/properties/b", "variant-added-field")]
    parent_c = copy.deepcopy(parent_b)
    parent_c["schema"]["properties"]["c"] = parent_c["schema"]["properties"].pop("b")
    parent_c["ui_schema"]["fields"]["c"] = parent_c["ui_schema"]["fields"].pop("b")
    assert check_variant(parent, check(parent_c)) == []


def test_unevaluated_properties_counts_as_additional_properties_when_alone() -> None:
    parent = _small({"properties": {"o": {"type": "object", "unevaluatedProperties": False,
                                          "properties": {"a": {"type": "string"}}}}})
    same = _small({"properties": {"o": {"type": "object", "additionalProperties": False,
                                        "properties": {"a": {"type": "string"}}}}})
    assert check_variant(parent, same) == []
    wider = copy.deepcopy(same)
    wider["schema"]["properties"]["o"]["properties"]["b"] = {"type": "string"}
    assert found(parent, check(wider)) == [
        ("/schema/properties/o/properties/b", "variant-widened")]


def test_top_level_unevaluated_properties_does_not_stop_new_fields() -> None:
    parent = _small({"properties": {"a": {"type": "string"}},
                     "allOf": [{"properties": {"a": {"maxLength": 5}}}],
                     "unevaluatedProperties": False})
    variant = copy.deepcopy(parent)
    variant["schema"]["properties"]["b"] = {"type": "integer"}
    variant["ui_schema"]["fields"]["b"] = {"label": {"vi": "b", "en": "b"}}
    assert check_variant(parent, check(variant)) == []
    variant["schema"]["allOf"] = [{"properties": {"a": {"maxLength": 6}}}]
    assert found(parent, check(variant)) == [("/schema/allOf", "variant-changed")]


def test_keywords_only_count_for_the_types_the_variant_allows() -> None:
    parent = _small({"properties": {"t": {"type": ["string", "null"], "maxLength": 10,
                                          "pattern": "^a"}}})
    assert check_variant(parent, _small({"properties": {"t": {"type": "null"}}})) == []
    assert found(parent, _small({"properties": {"t": {"type": ["string", "null"]}}})) == [
        ("/schema/properties/t/pattern", "variant-widened"),
        ("/schema/properties/t/maxLength", "variant-widened")]


def test_tuples_are_compared_position_by_position() -> None:
    parent = _small({"properties": {"t": {"type": "array", "items": False,
                                          "prefixItems": [{"type": "string"}, {"enum": [1, 2]}]}}})
    ok = _small({"properties": {"t": {"type": "array", "items": False, "prefixItems": [
        {"type": "string", "maxLength": 3}, {"const": 2}]}}})
    assert check_variant(parent, ok) == []
    loose = _small({"properties": {"t": {"type": "array", "prefixItems": [
        {"type": "string"}, {"enum": [2, 3]}]}}})
    assert sorted(found(parent, loose)) == [
        ("/schema/properties/t/items", "variant-widened"),
        ("/schema/properties/t/prefixItems/1/enum", "variant-widened")]


# --- soundness, tried out ----------------------------------------------------------------

_DELETE = object()
_POOL: list[Any] = [None, True, 0, -1, 12, 100001, 2.5, "", "a", "a" * 150, "2025-02-30",
                    "2025-10-01", "079190014426", "0901234567", "ab@cd.vn", [], {}]


def _enum_values(node: Any, schema: dict[str, Any], depth: int = 0) -> Iterator[Any]:
    """Values listed anywhere in a subschema (following ``#/$defs/...`` a few levels)."""
    if isinstance(node, dict):
        if "const" in node:
            yield node["const"]
        yield from node.get("enum", [])
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 3:
            yield from _enum_values(schema["$defs"][ref[8:]], schema, depth + 1)
        for key, value in node.items():
            if key not in ("const", "enum"):
                yield from _enum_values(value, schema, depth)
    elif isinstance(node, list):
        for item in node:
            yield from _enum_values(item, schema, depth)


def _positions(data: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield data, key
            yield from _positions(value)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield data, index
            yield from _positions(value)


def _candidates(parent: Definition, variant: Definition, bases: list[Submission],
                rng: random.Random, pool: list[Any], *,
                exhaustive: bool) -> Iterator[Submission]:
    """The samples; each with one top-level field deleted or replaced (by one random choice,
    or by every choice); each with fields taken from another sample; and a few deeper random
    mutations."""
    fields = sorted(set(parent["schema"]["properties"]) | set(variant["schema"]["properties"]))
    listed = {name: [v for d in (parent, variant) if name in d["schema"]["properties"]
                     for v in _enum_values(d["schema"]["properties"][name], d["schema"])]
              for name in fields}
    values = [v for vs in listed.values() for v in vs]
    for base in bases:
        yield base
        for name in fields:
            choices = [_DELETE, *pool, *listed[name]]
            for choice in choices if exhaustive else [rng.choice(choices)]:
                yield ({k: v for k, v in base.items() if k != name} if choice is _DELETE
                       else {**base, name: copy.deepcopy(choice)})
        for other in bases:
            names = sorted(set(other) - {k for k in other if base.get(k) == other[k]})
            for name in rng.sample(names, min(len(names), 3)):
                yield {**base, name: copy.deepcopy(other[name])}
    for _ in range(30):
        data = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            container, key = rng.choice(list(_positions(data)))
            if isinstance(container, dict) and rng.random() < 0.3:
                del container[key]
            else:
                container[key] = copy.deepcopy(rng.choice([*pool, *values]))
        yield data


def _projected(data: Submission, parent: Definition) -> Submission:
    return {k: v for k, v in data.items() if k in parent["schema"]["properties"]}


@dataclass
class Trial:
    accepted: int = 0  # candidates the variant accepts
    # accepted by the variant, refused by the parent (restricted to its fields)
    counterexamples: list[Submission] = field(default_factory=list)
    narrowed: int = 0  # candidates only the parent accepts


def _trial(parent: Definition, variant: Definition, bases: list[Submission],
           pool: list[Any], *, exhaustive: bool = False) -> Trial:
    parent_form, variant_form = FormValidator(parent), FormValidator(variant)
    trial = Trial()
    for data in _candidates(parent, variant, bases, random.Random(13), pool,
                            exhaustive=exhaustive):
        by_parent = not parent_form.errors(_projected(data, parent))
        if variant_form.errors(data):
            trial.narrowed += by_parent
            continue
        trial.accepted += 1
        if not by_parent:
            trial.counterexamples.append(data)
    return trial


def _adjusted(*changes: Callable[[Submission], None]) -> Adjust:
    """Turns the parent's valid samples into submissions valid for the variant."""
    def adjust(bases: list[Submission]) -> list[Submission]:
        result = copy.deepcopy(bases)
        for data in result:
            for change in changes:
                change(data)
        return result
    return adjust


SOUND: dict[str, tuple[str, list[Edit], Adjust]] = {
    "tuyen-dung": ("tuyen-dung", [
        add_field("ma_ho_so", {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}$"},
                  required=True),
        put("schema", "properties", "loai_tuyen_dung", value={"const": "cong_chuc"}),
        put("schema", "properties", "ho_ten", "maxLength", value=60),
        put("schema", "$defs", "dia_chi", "properties", "chi_tiet", "maxLength", value=150),
        put("schema", "properties", "van_bang", "maxItems", value=5),
        lambda d: d["schema"]["required"].append("que_quan"),
    ], _adjusted(lambda s: s.update(loai_tuyen_dung="cong_chuc", ma_ho_so="HN000123"),
                 lambda s: s.setdefault("que_quan", "Xã Đông Anh, Thành phố Hà Nội"))),
    "thi-nang-ngach": ("thi-nang-ngach", [
        put("schema", "properties", "ngach_du_thi", "enum", value=["01.001", "01.002",
                                                                   "01.003"]),
        put("schema", "properties", "he_so_luong", "maximum", value=8.0),
        put("schema", "properties", "he_so_luong", "exclusiveMinimum", value=1.5),
        put("schema", "properties", "bac_luong", "exclusiveMaximum", value=10),
        put("schema", "properties", "ly_do_mien_thi_tin_hoc", "maxLength", value=300),
        add_field("ghi_chu", {"type": "string", "maxLength": 500}),
        put("ui_schema", "fields", "chuc_vu", "personal_data", value="basic"),
    ], _adjusted(lambda s: s.update(ghi_chu="Đăng ký thi đợt 2"))),
    "ho-kinh-doanh": ("ho-kinh-doanh", [
        add_field("so_to_dan_pho", {"type": "integer", "minimum": 1}, required=True),
        put("schema", "properties", "von_kinh_doanh", "multipleOf", value=1000),
        put("schema", "properties", "von_kinh_doanh", "maximum", value=10_000_000_000),
        put("schema", "$defs", "website", value={
            "type": "string", "format": "uri", "maxLength": 200,
            "pattern": "^https?://[^\\s/]+\\.[^\\s]+$", "allOf": [{"pattern": "^https://"}]}),
        put("schema", "properties", "website", value={"$ref": "#/$defs/website"}),
        put("schema", "properties", "nganh_nghe", "maxItems", value=20),
    ], _adjusted(lambda s: s.update(so_to_dan_pho=7))),
    "khieu-nai": ("khieu-nai", [
        put("ui_schema", "fields", "yeu_cau_giu_bi_mat", "visible_when", value={
            "properties": {"loai_don": {"const": "to_cao"}, "an_danh": {"const": False}},
            "required": ["loai_don"]}),
        add_field("so_ho_so", {"type": "string", "pattern": "^[0-9]{6}$"},
                  visible_when={"properties": {"loai_don": {"const": "khieu_nai"}},
                                "required": ["loai_don"]},
                  required_when_visible=True),
        put("schema", "properties", "tep_dinh_kem", "maxItems", value=5),
        put("schema", "$defs", "tep_dinh_kem", "properties", "loai_noi_dung", "enum",
            value=["application/pdf", "image/jpeg", "image/png", "audio/mpeg"]),
        lambda d: d["schema"]["allOf"].append({
            "if": {"properties": {"loai_don": {"const": "phan_anh"}}, "required": ["loai_don"]},
            "then": {"required": ["dia_diem_xay_ra"]}}),
        put("ui_schema", "fields", "co_quan_lien_quan", "visible_when",
            value={"not": {"properties": {"loai_don": {"const": "phan_anh"}},
                           "required": ["loai_don"]}}),
    ], _adjusted(lambda s: s.update(so_ho_so="000123") if s["loai_don"] == "khieu_nai"
                 else None)),
}


@pytest.mark.parametrize("case", sorted(SOUND))
def test_what_an_accepted_variant_accepts_its_parent_accepts(case: str) -> None:
    key, edits, adjust = SOUND[case]
    parent, variant = variant_of(key, *edits)
    assert check_variant(parent, variant) == []
    bases = adjust(samples(key))
    variant_form = FormValidator(variant)
    for data in bases:
        assert variant_form.errors(data) == [], [e.as_dict() for e in variant_form.errors(data)]
    trial = _trial(parent, variant, bases, _POOL)
    assert trial.counterexamples == []
    assert trial.accepted > 2 * len(bases)
    assert trial.narrowed > 0  # the variant does refuse data its parent accepts


def test_the_trial_finds_what_a_widening_variant_lets_through() -> None:
    parent, variant = variant_of(
        "tuyen-dung", put("schema", "properties", "ho_ten", "maxLength", value=300),
        add_sex_other)
    assert {e.keyword for e in check_variant(parent, variant)} == {"variant-widened"}
    trial = _trial(parent, variant, samples("tuyen-dung")[:1], ["a" * 150], exhaustive=True)
    assert any(d["ho_ten"] == "a" * 150 for d in trial.counterexamples)
    assert any(d["gioi_tinh"] == "khac" for d in trial.counterexamples)
