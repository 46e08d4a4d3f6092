"""Exports of submissions: CSV and XLSX with the same rows, masked per caller, guarded
against spreadsheet formulas, read in batches; and ``nentang export submissions``, a real
API client with a progress bar, against a real server."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from app.forms import exports
from tests.conftest import only_postgresql
from tests.platform import Platform
from tests.test_form_replicas import replicas  # noqa: F401 (a fixture)
from tests.test_forms import catalogue, published, sample

FORM = "ho-kinh-doanh"
EXPORT = [sys.executable, "-m", "app.cli", "export", "submissions"]


async def _setup(client: httpx.AsyncClient, platform: Platform) -> tuple[str, str, Any]:
    province, admin = await platform.province_with_admin()
    commune = await platform.tenant(province, "commune", by=admin)
    await published(client, province, admin, catalogue(FORM))
    for tenant, name in ((province, "Hộ kinh doanh Phở"), (commune, "Hộ kinh doanh Bánh")):
        made = await client.post(f"/api/v1/tenants/{tenant}/submissions", headers=admin.headers,
                                 json={"form": FORM, "data": {**sample(FORM),
                                                              "ten_ho_kinh_doanh": name}})
        assert made.status_code == 201, made.text
    return province, commune, admin


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_csv_and_xlsx_hold_the_same_masked_rows(client: httpx.AsyncClient,
                                                      platform: Platform,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "BATCH", 1)  # every row in a batch of its own
    province, commune, admin = await _setup(client, platform)
    officer = await platform.client_for(province, ["officer"], by=admin)
    url = f"/api/v1/tenants/{province}/submissions/export"
    got = await client.get(url, params={"form": FORM}, headers=officer.headers)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["x-total-count"] == "2"
    rows = _csv(got)
    assert [r["tenant"] for r in rows] == [commune, province]
    assert {r["chu_ho_dan_toc"] for r in rows} == {"***"}, "sensitive: masked for an officer"
    assert {r["chu_ho_ho_ten"] for r in rows} == {"Đỗ Văn Hải"}, "basic: shown to an officer"
    assert list(rows[0])[:6] == exports.FIXED_COLUMNS

    book = await client.get(url, params={"form": FORM, "format": "xlsx"},
                            headers=officer.headers)
    assert book.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True).active
    assert sheet is not None
    table = [[c or "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert table[0] == list(rows[0])
    assert table[1:] == [list(r.values()) for r in rows]

    here = await client.get(url, params={"form": FORM, "subtree": "false"},
                            headers=officer.headers)
    assert [r["tenant"] for r in _csv(here)] == [province]


async def test_formulas_are_neutralised(client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    definition = catalogue("khieu-nai")
    await published(client, province, admin, definition)
    data = {**sample("khieu-nai"), "tieu_de": "=cmd|' /C calc'!A0"}
    made = await client.post(f"/api/v1/tenants/{province}/submissions", headers=admin.headers,
                             json={"form": "khieu-nai", "data": data})
    assert made.status_code == 201, made.text
    got = await client.get(f"/api/v1/tenants/{province}/submissions/export",
                           params={"form": "khieu-nai"}, headers=admin.headers)
    (row,) = _csv(got)
    assert row["tieu_de"] == "'=cmd|' /C calc'!A0"


async def test_export_needs_a_known_form(client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    url = f"/api/v1/tenants/{province}/submissions/export"
    assert (await client.get(url, headers=admin.headers)).status_code == 422
    missing = await client.get(url, params={"form": "khong-co"}, headers=admin.headers)
    assert missing.status_code == 404
    wrong = await client.get(url, params={"form": FORM, "format": "pdf"}, headers=admin.headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["parameter"] == "format"


@only_postgresql()
async def test_the_export_command_shows_progress_and_writes_the_file(
        client: httpx.AsyncClient, platform: Platform, replicas: list[str],  # noqa: F811
        tmp_path: Path) -> None:
    province, _commune, admin = await _setup(client, platform)
    officer = await platform.client_for(province, ["officer"], by=admin)
    for fmt in ("csv", "xlsx"):
        output = tmp_path / f"export.{fmt}"
        done = await asyncio.to_thread(
            subprocess.run, [*EXPORT, "--api", replicas[0], "--tenant", province, "--form", FORM,
                             "--format", fmt, "--output", str(output), "--progress"],
            env={**os.environ, "NENTANG_CLIENT_ID": officer.client_id,
                 "NENTANG_CLIENT_SECRET": officer.client_secret},
            capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "100%" in done.stderr and "Wrote 2 submission(s)" in done.stderr
        assert output.stat().st_size > 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "export.csv").read_text("utf-8-sig"))))
    assert len(rows) == 2 and {r["chu_ho_dan_toc"] for r in rows} == {"***"}
    refused = await asyncio.to_thread(
        subprocess.run, [*EXPORT, "--api", replicas[0], "--tenant", province, "--form", FORM,
                         "--output", str(tmp_path / "no.csv")],
        env={**os.environ, "NENTANG_CLIENT_ID": officer.client_id,
             "NENTANG_CLIENT_SECRET": "wrong"},
        capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "sign-in refused" in refused.stderr
    assert not (tmp_path / "no.csv").exists()
