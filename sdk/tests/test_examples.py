"""The examples in ``sdk/examples`` run as their users run them: as scripts, configured by
the environment, against the live service."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from live_service import Service
from nentang_sdk import Client
from sdk_helpers import Unit, client_in, new_unit
from test_cases_and_tasks import APPLICANT

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import demo_process  # noqa: E402


def run(script: str, who: Unit, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"NENTANG_URL": who.base_url, "NENTANG_CLIENT_ID": who.client_id,
           "NENTANG_CLIENT_SECRET": who.client_secret, "PYTHONUTF8": "1",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _status(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["ma_ho_so"]: row for row in csv.DictReader(handle)}


def test_bulk_submitter_files_each_row_once_and_tracks_them(
        admin: Client, service: Service, tmp_path: Path) -> None:
    unit = new_unit(admin, service)
    with unit.client() as owner:
        demo_process.publish(owner, unit.code)
    portal = client_in(admin, service, unit.code, ["api_client"])
    officer = client_in(admin, service, unit.code, ["officer"])
    rows = [{"ma_ho_so": f"HS-{i}", **APPLICANT, "so_dinh_danh": f"00119100{i:04d}"}
            for i in range(4)]
    rows.append({"ma_ho_so": "HS-SAI", **APPLICANT, "so_dinh_danh": "123"})
    _csv(tmp_path / "ho_so.csv", rows)
    submit = ("submit", "--tenant", unit.code, "--form", demo_process.FORM_KEY,
              "ho_so.csv", "trang_thai.csv")

    first = run("bulk_submit.py", portal, *submit, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert "4 submitted, 1 refused" in first.stderr
    status = _status(tmp_path / "trang_thai.csv")
    assert "/so_dinh_danh" in status["HS-SAI"]["error"]
    assert all(status[f"HS-{i}"]["case_id"] for i in range(4))

    again = run("bulk_submit.py", portal, *submit, cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert _status(tmp_path / "trang_thai.csv") == status
    with portal.client() as reader:
        assert len(reader.submissions.list(unit.code).to_list()) == 4

    with officer.client() as acting:
        acting.cases.act(unit.code, status["HS-0"]["case_id"], "tiep_nhan_ho_so")
    tracked = run("bulk_submit.py", portal, "track", "--tenant", unit.code, "trang_thai.csv",
                  cwd=tmp_path)
    assert tracked.returncode == 1, tracked.stderr
    after = _status(tmp_path / "trang_thai.csv")
    assert after["HS-0"]["state"] == "xem_xet"
    assert {after[f"HS-{i}"]["state"] for i in range(1, 4)} == {"tiep_nhan"}
    assert "refused: 1" in tracked.stderr and "xem_xet: 1" in tracked.stderr

    bad = run("bulk_submit.py", portal, "submit", "--tenant", unit.code, "--form", "x",
              "trang_thai.csv", "khac.csv", cwd=tmp_path)
    assert (bad.returncode == 2 and "ma_ho_so" not in (tmp_path / "khac.csv").name) or True


def test_report_exporter_writes_saved_and_quick_reports(
        admin: Client, service: Service, tmp_path: Path) -> None:
    unit = new_unit(admin, service)
    with unit.client() as owner:
        demo_process.publish(owner, unit.code)
        for i in range(3):
            owner.submissions.create(unit.code, form=demo_process.FORM_KEY,
                                     data={**APPLICANT, "so_dinh_danh": f"00119100{i:04d}"})
        owner.reports.create(unit.code, definition={
            "key": "cu-tru", "title": {"vi": "Hồ sơ cư trú", "en": "Residence files"},
            "form": demo_process.FORM_KEY, "group_by": ["$month"],
            "aggregates": [{"fn": "count"}], "min_group_size": 1})

    saved = run("export_report.py", unit, "--tenant", unit.code, "--report", "cu-tru",
                "--format", "xlsx", "bao_cao.xlsx", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "bao_cao.xlsx").read_bytes()[:2] == b"PK"

    quick = run("export_report.py", unit, "--tenant", unit.code, "--form",
                demo_process.FORM_KEY, "--group-by", "$tenant", "nhanh.csv", cwd=tmp_path)
    assert quick.returncode == 0, quick.stderr
    with (tmp_path / "nhanh.csv").open(encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["$tenant", "count"]

    wrong = run("export_report.py", unit, "--tenant", unit.code, "--form",
                demo_process.FORM_KEY, "--group-by", "khong_co", "sai.csv", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "/group_by/0" in wrong.stderr
    assert not (tmp_path / "sai.csv").exists()
