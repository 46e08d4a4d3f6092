"""Publishing takes effect at once on every replica, with no restart: two real server
processes share one PostgreSQL database; one publishes, the other serves the new version on
its very next request (it caches compiled validators, keyed by immutable version)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Backend, only_postgresql
from tests.platform import Platform
from tests.test_forms import catalogue, sample

FORM = "ho-kinh-doanh"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def replicas(backend: Backend, tmp_path: Path) -> Iterator[list[str]]:
    settings = backend.settings
    env = {**os.environ,
           "NENTANG_DATA_DIR": str(tmp_path),
           "NENTANG_DATABASE_URL": settings.effective_database_url,
           "NENTANG_SIGNING_KEY_FILE": str(settings.effective_signing_key_file),
           "NENTANG_ISSUER": settings.issuer,
           "NENTANG_DB_APP_ROLE": settings.db_app_role,
           "NENTANG_AUTO_MIGRATE": "false",
           "NENTANG_LOG_LEVEL": "WARNING"}
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            port = _free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, "a replica exited on start"
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} did not become ready"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


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
