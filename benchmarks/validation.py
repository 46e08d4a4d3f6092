"""What validating one submission costs: the reference validator against the hot path.

    .venv/bin/python -m benchmarks.validation            # from the repository root; ~1 minute

The form is built here (:func:`definition`): 40 top-level fields of a Vietnamese
administrative application (identity numbers, dates, e-mail, enums, amounts, two nested
addresses, conditional fields, and an array of attachment metadata with a SHA-256 pattern, a
size limit and a media-type enum), checked with :func:`app.forms.definitions.check`. Two
payloads: a complete valid one (three attachments) and an invalid one whose first field is
already wrong, so every validator can stop early.

Cases, each per payload:

* ``reference is_valid``: ``Draft202012Validator`` on the effective schema, configured as
  :class:`~app.forms.definitions.FormValidator` configures it, asked for a verdict only;
* ``reference errors``: ``FormValidator.errors`` (the whole error list, as the server reports
  it);
* ``hot path is_valid``: :meth:`app.forms.validators.CompiledForm.is_valid`, jsonschema-rs
  configured to agree with the reference, including the check that the payload is plain JSON;
* ``jsonschema-rs, native checks``: for comparison only, jsonschema-rs with its own format
  and regular-expression checks, which do not agree with the reference (see
  :mod:`app.forms.validators`), so that the cost of agreeing shows;
* ``compiled() lookup``: finding the cached :class:`~app.forms.validators.CompiledForm`,
  either hashing the definition's canonical JSON or given the digest a form version stores.

Every round times each case for about ``--seconds`` with the garbage collector off (as
``timeit`` does), in an order rotated each round; the report gives the median over rounds of
the microseconds per call, the range over rounds, and the ratio of medians. The raw figures
go to ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema_rs

from app.forms.definitions import FormValidator, check, effective_schema
from app.forms.validators import compiled, reference_validator
from benchmarks.run import OUT_DIR, REPO, machine, revision

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SHA256 = "^[0-9a-f]{64}$"


def _text(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def definition() -> dict[str, Any]:
    """A 40-field application form (a generic "tờ khai đề nghị giải quyết thủ tục hành
    chính"), valid under ``forms/form.schema.json``."""
    so_dinh_danh = {"type": "string", "pattern": "^[0-9]{12}$"}
    ngay = {"type": "string", "format": "date"}
    properties: dict[str, Any] = {
        "ho_ten": {"type": "string", "minLength": 2, "maxLength": 100,
                   "pattern": r"^[^0-9<>@]+$"},
        "ngay_sinh": ngay,
        "gioi_tinh": {"enum": ["nam", "nu", "khac"]},
        "so_dinh_danh": so_dinh_danh,
        "ngay_cap": ngay,
        "noi_cap": {"type": "string", "minLength": 2, "maxLength": 200},
        "dan_toc": {"enum": ["kinh", "tay", "thai", "muong", "khmer", "hoa", "nung", "hmong",
                             "khac"]},
        "quoc_tich": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "dien_thoai": {"type": "string", "pattern": r"^(0|\+84)[0-9]{9,10}$"},
        "email": {"type": "string", "format": "email", "maxLength": 254,
                  "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
        "thuong_tru": {"$ref": "#/$defs/dia_chi"},
        "noi_o_hien_tai": {"$ref": "#/$defs/dia_chi"},
        "nghe_nghiep": {"type": "string", "maxLength": 100},
        "noi_lam_viec": {"type": "string", "maxLength": 200},
        "trinh_do": {"enum": ["thcs", "thpt", "trung_cap", "cao_dang", "dai_hoc", "thac_si",
                              "tien_si"]},
        "ma_so_thue": {"type": "string", "pattern": "^[0-9]{10}(-[0-9]{3})?$"},
        "so_bhxh": {"type": "string", "pattern": "^[0-9]{10}$"},
        "ma_thu_tuc": {"type": "string", "pattern": r"^[0-9]\.[0-9]{6}$"},
        "linh_vuc": {"enum": ["ho_tich", "dat_dai", "xay_dung", "kinh_doanh", "lao_dong",
                              "giao_duc", "y_te"]},
        "co_quan_tiep_nhan": {"type": "string",
                              "pattern": r"^[A-Z0-9]{2,8}(\.[A-Z0-9]{2,8}){0,4}$"},
        "ngay_nop": {"type": "string", "format": "date-time"},
        "ma_ho_so": {"type": "string", "format": "uuid"},
        "noi_dung": {"type": "string", "minLength": 10, "maxLength": 2000},
        "ly_do": {"type": "string", "maxLength": 1000},
        "so_ban_sao": {"type": "integer", "minimum": 1, "maximum": 10},
        "le_phi": {"type": "integer", "minimum": 0, "maximum": 50_000_000, "multipleOf": 1000},
        "da_nop_le_phi": {"type": "boolean"},
        "ma_bien_lai": {"type": "string", "pattern": "^BL[0-9]{8}$"},
        "hinh_thuc_nhan": {"enum": ["truc_tiep", "buu_chinh", "truc_tuyen"]},
        "dia_chi_nhan": {"$ref": "#/$defs/dia_chi"},
        "ngay_hen_tra": ngay,
        "trang_thong_tin": {"type": "string", "format": "uri", "maxLength": 500},
        "uu_tien": {"type": "boolean"},
        "doi_tuong_uu_tien": {"type": "array", "minItems": 1, "uniqueItems": True,
                              "items": {"enum": ["nguoi_cao_tuoi", "nguoi_khuyet_tat",
                                                 "phu_nu_mang_thai", "nguoi_co_cong"]}},
        "nguoi_dai_dien": {
            "type": "object", "required": ["ho_ten", "so_dinh_danh", "quan_he"],
            "additionalProperties": False,
            "properties": {"ho_ten": {"type": "string", "minLength": 2, "maxLength": 100},
                           "so_dinh_danh": so_dinh_danh,
                           "quan_he": {"enum": ["cha_me", "vo_chong", "con", "uy_quyen"]}}},
        "tep_dinh_kem": {
            "type": "array", "minItems": 1, "maxItems": 20,
            "items": {"type": "object", "required": ["ten_tep", "sha256", "kich_thuoc",
                                                     "loai_tep"],
                      "additionalProperties": False,
                      "properties": {
                          "ten_tep": {"type": "string", "minLength": 1, "maxLength": 255,
                                      "pattern": r"^[^/\\]+$"},
                          "sha256": {"type": "string", "pattern": SHA256},
                          "kich_thuoc": {"type": "integer", "minimum": 1,
                                         "maximum": 20 * 1024 * 1024},
                          "loai_tep": {"enum": ["application/pdf", "image/jpeg", "image/png",
                                                "application/vnd.openxmlformats-officedocument"
                                                ".wordprocessingml.document"]}}}},
        "ghi_chu": {"type": "string", "maxLength": 500},
        "ngay_ky": ngay,
        "noi_ky": {"type": "string", "maxLength": 100},
        "cam_doan": {"const": True},
    }
    assert len(properties) == 40
    schema = {
        "$schema": DRAFT, "type": "object", "properties": properties,
        "required": ["ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "ngay_cap", "noi_cap",
                     "dien_thoai", "thuong_tru", "ma_thu_tuc", "linh_vuc", "co_quan_tiep_nhan",
                     "ngay_nop", "ma_ho_so", "noi_dung", "so_ban_sao", "hinh_thuc_nhan",
                     "tep_dinh_kem", "ngay_ky", "cam_doan"],
        "$defs": {"dia_chi": {
            "type": "object", "required": ["ma_tinh", "ma_xa", "chi_tiet"],
            "additionalProperties": False,
            "properties": {"ma_tinh": {"type": "string", "pattern": "^[0-9]{2}$"},
                           "ma_xa": {"type": "string", "pattern": "^[0-9]{5}$"},
                           "chi_tiet": {"type": "string", "minLength": 2, "maxLength": 300}}}},
    }
    fields: dict[str, Any] = {name: {"label": _text(name.replace("_", " ").capitalize(), name)}
                              for name in properties}
    fields["dia_chi_nhan"] |= {"required_when_visible": True, "visible_when": {
        "properties": {"hinh_thuc_nhan": {"const": "buu_chinh"}},
        "required": ["hinh_thuc_nhan"]}}
    fields["ma_bien_lai"] |= {"required_when_visible": True, "visible_when": {
        "properties": {"da_nop_le_phi": {"const": True}}, "required": ["da_nop_le_phi"]}}
    fields["doi_tuong_uu_tien"] |= {"required_when_visible": True, "visible_when": {
        "properties": {"uu_tien": {"const": True}}, "required": ["uu_tien"]}}
    for name in ("ho_ten", "ngay_sinh", "so_dinh_danh", "dien_thoai", "email", "thuong_tru"):
        fields[name]["personal_data"] = "basic"
    fields["dan_toc"]["personal_data"] = "sensitive"
    return check({"kind": "Form", "key": "to-khai-thu-tuc-hanh-chinh",
                  "title": _text("Tờ khai đề nghị giải quyết thủ tục hành chính",
                                 "Application for an administrative procedure"),
                  "schema": schema, "ui_schema": {"fields": fields}})


def valid_payload() -> dict[str, Any]:
    def address(tinh: str, xa: str) -> dict[str, str]:
        return {"ma_tinh": tinh, "ma_xa": xa, "chi_tiet": "Số 12, ngõ 34 phố Trần Hưng Đạo"}

    return {
        "ho_ten": "Nguyễn Thị Minh Khai", "ngay_sinh": "1990-05-17", "gioi_tinh": "nu",
        "so_dinh_danh": "001190012345", "ngay_cap": "2021-07-01",
        "noi_cap": "Cục Cảnh sát quản lý hành chính về trật tự xã hội", "dan_toc": "kinh",
        "quoc_tich": "VN", "dien_thoai": "0912345678", "email": "minhkhai@example.vn",
        "thuong_tru": address("01", "00004"), "noi_o_hien_tai": address("79", "26734"),
        "nghe_nghiep": "Kỹ sư xây dựng", "noi_lam_viec": "Công ty TNHH Xây dựng Thăng Long",
        "trinh_do": "dai_hoc", "ma_so_thue": "0101234567", "so_bhxh": "0123456789",
        "ma_thu_tuc": "1.001234", "linh_vuc": "xay_dung", "co_quan_tiep_nhan": "H26.55",
        "ngay_nop": "2025-03-10T08:15:00+07:00",
        "ma_ho_so": "3f2b9c1e-7d4a-4e8b-9a6f-2c1d0e5b7a93",
        "noi_dung": "Đề nghị cấp giấy phép xây dựng nhà ở riêng lẻ tại thửa đất số 123.",
        "ly_do": "Xây dựng nhà ở cho gia đình.", "so_ban_sao": 2, "le_phi": 75000,
        "da_nop_le_phi": True, "ma_bien_lai": "BL20250310", "hinh_thuc_nhan": "buu_chinh",
        "dia_chi_nhan": address("01", "00007"), "ngay_hen_tra": "2025-03-24",
        "trang_thong_tin": "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html",
        "uu_tien": True, "doi_tuong_uu_tien": ["phu_nu_mang_thai"],
        "nguoi_dai_dien": {"ho_ten": "Trần Văn Nam", "so_dinh_danh": "001088054321",
                           "quan_he": "vo_chong"},
        "tep_dinh_kem": [
            {"ten_tep": "don-de-nghi.pdf", "sha256": "a" * 64, "kich_thuoc": 245_760,
             "loai_tep": "application/pdf"},
            {"ten_tep": "ban-ve-mat-bang.png", "sha256": "0123456789abcdef" * 4,
             "kich_thuoc": 3_145_728, "loai_tep": "image/png"},
            {"ten_tep": "giay-chung-nhan-qsdd.jpg", "sha256": "f" * 64,
             "kich_thuoc": 1_048_576, "loai_tep": "image/jpeg"}],
        "ghi_chu": "Liên hệ trong giờ hành chính.", "ngay_ky": "2025-03-10",
        "noi_ky": "Hà Nội", "cam_doan": True,
    }


def invalid_payload() -> dict[str, Any]:
    """Wrong from the first field on, so validators that stop at the first error stop
    early; the reference's full error list names six problems."""
    data = valid_payload()
    data["ho_ten"] = "<script>"
    data["ngay_sinh"] = "1990-02-30"
    data["email"] = "khong-hop-le"
    del data["ma_bien_lai"]
    data["tep_dinh_kem"][1]["sha256"] = "ABC"
    data["truong_la"] = 1
    return data


def native_validator(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """jsonschema-rs with its own format and regex checks (not the reference's verdicts)."""
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)


def per_call_us(call: Callable[[], Any], seconds: float, number: int | None) -> tuple[float, int]:
    """Microseconds per call over one timed batch; the batch size is found on first use."""
    if number is None:
        number = 1
        while True:
            start = time.perf_counter()
            for _ in range(number):
                call()
            if time.perf_counter() - start > seconds / 10:
                break
            number *= 2
        number = max(1, int(number * 10 * seconds / max(time.perf_counter() - start, 1e-9) / 10))
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed * 1e6 / number, number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="repetitions of every case")
    parser.add_argument("-s", "--seconds", type=float, default=0.2,
                        help="timed seconds per case and round")
    args = parser.parse_args(argv)

    form_definition = definition()
    effective = effective_schema(form_definition)
    form = compiled(form_definition)
    if not form.fast:
        raise RuntimeError("the hot path is not in use for the benchmark form")
    reference = reference_validator(effective)
    errors = FormValidator(form_definition).errors
    native = native_validator(effective)
    payloads = {"valid": valid_payload(), "invalid": invalid_payload()}
    verdicts = {name: (reference.is_valid(data), form.is_valid(data), not errors(data))
                for name, data in payloads.items()}
    if verdicts != {"valid": (True, True, True), "invalid": (False, False, False)}:
        raise RuntimeError(f"unexpected verdicts: {verdicts}")

    cases: dict[str, Callable[[], Any]] = {}
    for name, data in payloads.items():
        cases[f"reference is_valid, {name}"] = partial(reference.is_valid, data)
        cases[f"reference errors, {name}"] = partial(errors, data)
        cases[f"hot path is_valid, {name}"] = partial(form.is_valid, data)
        cases[f"jsonschema-rs, native checks, {name}"] = partial(native.is_valid, data)
    cases["compiled() lookup, hashing the definition"] = partial(compiled, form_definition)
    cases["compiled() lookup, stored digest"] = partial(compiled, form_definition, key=form.digest)

    numbers: dict[str, int | None] = dict.fromkeys(cases)
    for name, call in cases.items():  # warm-up, and the batch sizes
        numbers[name] = per_call_us(call, args.seconds, None)[1]
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for index in range(args.rounds):
        print(f"round {index + 1}/{args.rounds}", file=sys.stderr, flush=True)
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(per_call_us(cases[name], args.seconds, numbers[name])[0])

    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratios = {payload: {
        "reference is_valid / hot path": medians[f"reference is_valid, {payload}"]
        / medians[f"hot path is_valid, {payload}"],
        "reference errors / hot path": medians[f"reference errors, {payload}"]
        / medians[f"hot path is_valid, {payload}"],
        "hot path / native jsonschema-rs": medians[f"hot path is_valid, {payload}"]
        / medians[f"jsonschema-rs, native checks, {payload}"],
    } for payload in payloads}
    report = {"started": datetime.now(UTC).isoformat(), "machine": machine(),
              "revision": revision(), "config": vars(args),
              "jsonschema_rs": getattr(jsonschema_rs, "__version__", None) or _version(),
              "calls_per_batch": numbers, "samples_us": samples, "medians_us": medians,
              "ratios": ratios,
              "error_count_invalid": len(errors(payloads["invalid"])),
              "payload_bytes": {name: len(json.dumps(data, ensure_ascii=False).encode())
                                for name, data in payloads.items()}}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"validation-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print_report(report, out)
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("jsonschema-rs")


def print_report(report: dict[str, Any], out: Path) -> None:
    m, c, rev = report["machine"], report["config"], report["revision"]
    print(f"\n## Validation cost per submission, 40-field form ({c['rounds']} rounds of "
          f"{c['seconds']:g} s per case, interleaved; medians)\n")
    print(f"Commit {rev.get('commit', '?')}{' (app/ modified)' if rev.get('dirty') else ''}; "
          f"{m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, jsonschema-rs "
          f"{report['jsonschema_rs']}; payloads {report['payload_bytes']['valid']} and "
          f"{report['payload_bytes']['invalid']} bytes (valid, invalid); the invalid one has "
          f"{report['error_count_invalid']} errors\n")
    print("| case | µs per call (median) | range over rounds |\n|---|---:|---:|")
    for name, median in report["medians_us"].items():
        values = report["samples_us"][name]
        print(f"| {name} | {median:,.1f} | {min(values):,.1f}–{max(values):,.1f} |")
    print("\n| ratio of medians | valid | invalid |\n|---|---:|---:|")
    for name in report["ratios"]["valid"]:
        print(f"| {name} | **{report['ratios']['valid'][name]:.1f}** "
              f"| **{report['ratios']['invalid'][name]:.1f}** |")
    print(f"\nRaw results: {out.resolve().relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
