"""Publishing takes effect at once on every replica, with no restart: two real server
processes share one PostgreSQL database; one publishes, the other serves the new version on
its very next request (it caches compiled validators, keyed by immutable version)."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import processes
from tests.conftest import Backend, only_postgresql
from tests.platform import Platform
from tests.test_forms import catalogue, sample

FORM = "ho-kinh-doanh"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def replicas(backend: Backend, tmp_path: Path) -> Iterator[list[str]]:
    env = processes.nentang_env(backend.settings, tmp_path, NENTANG_LOG_LEVEL="WARNING")
    started: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for n in range(2):
            port = processes.free_port()
            log = tmp_path / f"replica-{n + 1}.log"
            process = processes.start(env, log, "serve", "--host", "127.0.0.1",
                                      "--port", str(port))
            started.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            processes.wait_for(lambda url=urls[-1]: processes.ready(url),
                               f"{urls[-1]} to be ready",
                               timeout=60, process=process, log=log)
        yield urls
    finally:
        for process in started:
            processes.terminate(process)


@only_postgresql()
async def test_publication_is_live_on_every_replica(platform: Platform,
                                                    replicas: list[str]) -> None:
    province, admin = await platform.province_with_admin()
    one, two = replicas
    forms, submissions = (f"/api/v1/tenants/{province}/forms",
                          f"/api/v1/tenants/{province}/submissions")
    definition = catalogue(FORM)
    async with httpx.AsyncClient(headers=admin.headers, timeout=30) as http:
        assert (await http.post(one + forms, json=definition)).status_code == 201
        assert (await http.post(f"{one}{forms}/{FORM}/versions/1/publish")).status_code == 200
        first = await http.post(two + submissions, json={"form": FORM, "data": sample(FORM)})
        assert first.status_code == 201, first.text
        assert first.json()["form"]["version"] == 1

        v2 = copy.deepcopy(definition)
        v2["schema"]["properties"]["ma_so_thue"] = {"type": "string", "pattern": "^[0-9]{10}$"}
        v2["schema"]["required"].append("ma_so_thue")
        v2["ui_schema"]["fields"]["ma_so_thue"] = {"label": {"vi": "Mã số thuế",
                                                             "en": "Tax code"}}
        assert (await http.post(f"{one}{forms}/{FORM}/versions", json=v2)).status_code == 201
        assert (await http.post(f"{one}{forms}/{FORM}/versions/2/publish")).status_code == 200

        # The other replica, which has just used version 1, answers with version 2 at once.
        old_data = await http.post(two + submissions, json={"form": FORM, "data": sample(FORM)})
        assert old_data.status_code == 422, old_data.text
        assert [e["pointer"] for e in old_data.json()["errors"]] == ["/data/ma_so_thue"]
        new_data = {**sample(FORM), "ma_so_thue": "0101234567"}
        second = await http.post(two + submissions, json={"form": FORM, "data": new_data})
        assert second.status_code == 201 and second.json()["form"]["version"] == 2
        read = await http.get(f"{two}{forms}/{FORM}")
        assert read.json()["latest_version"] == 2


@only_postgresql()
async def test_a_workflow_version_is_live_on_every_replica(platform: Platform,
                                                           replicas: list[str]) -> None:
    """Publish a workflow through one replica; the other opens cases on it at once, and on
    the next version as soon as that is published, while earlier cases keep theirs."""
    province, admin = await platform.province_with_admin()
    one, two = replicas
    base = f"/api/v1/tenants/{province}"
    workflow = json.loads((ROOT / "workflows" / FORM / "workflow.json").read_text())
    async with httpx.AsyncClient(headers=admin.headers, timeout=30) as http:
        assert (await http.post(one + base + "/forms", json=catalogue(FORM))).status_code == 201
        assert (await http.post(f"{one}{base}/forms/{FORM}/versions/1/publish")
                ).status_code == 200
        assert (await http.post(one + base + "/workflows", json=workflow)).status_code == 201
        assert (await http.post(f"{one}{base}/workflows/{FORM}/versions/1/publish")
                ).status_code == 200

        async def case_version() -> int:
            made = await http.post(two + base + "/submissions",
                                   json={"form": FORM, "data": sample(FORM)})
            assert made.status_code == 201 and made.json()["case"], made.text
            case = await http.get(f"{two}{base}/cases/{made.json()['case']}")
            return int(case.json()["workflow"]["version"])

        assert await case_version() == 1
        v2 = copy.deepcopy(workflow)
        v2["title"]["en"] += " (v2)"
        assert (await http.post(f"{one}{base}/workflows/{FORM}/versions", json=v2)
                ).status_code == 201
        assert (await http.post(f"{one}{base}/workflows/{FORM}/versions/2/publish")
                ).status_code == 200
        assert await case_version() == 2
