"""``nentang-sdk new``: the project it makes imports, its own tests pass (run with pytest in a
subprocess, as its author would), and, served by uvicorn as a province would serve it, it
moves a real case on the live service; an occupied directory or a bad name is refused with
exit code 2 and nothing written."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import httpx
import nentang_sdk
import pytest
from live_service import Service, stop_process
from nentang_sdk import Client
from nentang_sdk.webhooks import new_secret
from sdk_helpers import new_unit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "province_check"
TIMEOUT = 60.0


def console_script() -> str:
    found = shutil.which("nentang-sdk", path=str(Path(sys.executable).parent))
    assert found, f"no nentang-sdk script next to {sys.executable}"
    return found


def run(*args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nentang_sdk.cli"] if module else [console_script()]
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=dict(env or os.environ),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def python(*args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=dict(env),
                          capture_output=True, text=True, timeout=TIMEOUT * 2, check=False)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without NENTANG_* settings or a PYTHONPATH of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NENTANG_", "PYTEST_")) and k != "PYTHONPATH"}
    return {**env, **extra}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project made with the console script, shared by the tests that read it."""
    where = tmp_path_factory.mktemp("scaffold") / "kiem-tra-cccd"
    made = run("new", where, "--state", "kiem_tra_tu_dong")
    assert made.returncode == 0, made.stderr
    return where


def test_the_project_has_its_files_and_says_so(project: Path) -> None:
    made = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert made == [".gitignore", "README.md", "pyproject.toml", "src/kiem_tra_cccd/__init__.py",
                    "src/kiem_tra_cccd/receiver.py", "tests/test_receiver.py"]
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert metadata["project"]["name"] == "kiem-tra-cccd"
    assert [d.split(">=")[0] for d in metadata["project"]["dependencies"]] == [
        "nentang-sdk", "uvicorn"]
    receiver = (project / "src/kiem_tra_cccd/receiver.py").read_text(encoding="utf-8")
    assert 'STATE = "kiem_tra_tu_dong"' in receiver and "app = HookApp.from_env()" in receiver
    readme = (project / "README.md").read_text(encoding="utf-8")
    for needed in ("uvicorn kiem_tra_cccd.receiver:app", "NENTANG_URL", "NENTANG_CLIENT_ID",
                   "NENTANG_CLIENT_SECRET", "NENTANG_WEBHOOK_SECRETS", '"on_enter"',
                   "webhook-secrets", '"from": "kiem_tra_tu_dong"'):
        assert needed in readme, needed
    assert "{{" not in readme + receiver


def test_the_output_lists_what_was_created(tmp_path: Path) -> None:
    made = run("new", tmp_path / "x", "--name", "tinh-ha-noi-kiem-tra", module=True)
    assert made.returncode == 0, made.stderr
    assert "Created tinh-ha-noi-kiem-tra in" in made.stdout
    for name in ("pyproject.toml", "src/tinh_ha_noi_kiem_tra/receiver.py",
                 "tests/test_receiver.py", "README.md"):
        assert f"  {name}\n" in made.stdout
    assert (tmp_path / "x" / "src" / "tinh_ha_noi_kiem_tra" / "receiver.py").is_file()


def test_the_package_imports_and_reads_its_settings_from_the_environment(
        project: Path) -> None:
    code = "from kiem_tra_cccd import receiver; print(receiver.STATE, receiver.app.secrets)"
    secret = new_secret()
    settings = {"PYTHONPATH": str(project / "src"), "NENTANG_URL": "http://127.0.0.1:9",
                "NENTANG_CLIENT_ID": "c", "NENTANG_CLIENT_SECRET": "s",
                "NENTANG_WEBHOOK_SECRETS": secret}
    imported = python("-c", code, cwd=project, env=clean_env(**settings))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"kiem_tra_tu_dong ['{secret}']"
    unset = python("-c", code, cwd=project, env=clean_env(PYTHONPATH=str(project / "src")))
    assert unset.returncode != 0
    assert "set NENTANG_URL, NENTANG_CLIENT_ID, NENTANG_CLIENT_SECRET, " \
           "NENTANG_WEBHOOK_SECRETS in the environment" in unset.stderr


def test_the_generated_tests_pass(project: Path) -> None:
    tested = python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project,
                    env=clean_env())
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_an_occupied_directory_is_refused(project: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    again = run("new", project)
    assert again.returncode == 2
    assert "not empty" in again.stderr and str(project) in again.stderr
    assert again.stdout == ""
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before

    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    refused = run("new", a_file)
    assert refused.returncode == 2 and "not a directory" in refused.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("new", empty, "--name", "trong").returncode == 0  # an empty one is fine


@pytest.mark.parametrize(("args", "reason"), [
    (("--name", "Tỉnh Hà Nội"), "not a usable project name"),
    (("--name", "9-lives"), "not a usable project name"),
    (("--state", "Kiem-Tra"), "not a workflow state name"),
])
def test_bad_names_are_refused_before_anything_is_written(
        tmp_path: Path, args: tuple[str, ...], reason: str) -> None:
    refused = run("new", tmp_path / "p", *args)
    assert refused.returncode == 2 and reason in refused.stderr
    assert not (tmp_path / "p").exists()


def test_the_version_and_the_usage() -> None:
    shown = run("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"nentang-sdk {nentang_sdk.__version__}"
    assert run().returncode == 2  # no command
    helped = run("new", "--help")
    assert helped.returncode == 0 and "--state" in helped.stdout


# ---- the generated receiver, served as a province would, against the live service -----------


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"province_check_{name}_{uuid.uuid4().hex}",
                                                  EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def uvicorn_serving(project: Path, port: int, settings: Mapping[str, str],
                    logs: Path) -> Iterator[str]:
    """``python -m uvicorn <package>.receiver:app`` in a subprocess; yields its URL."""
    env = clean_env(PYTHONPATH=str(project / "src"), **settings)
    base = f"http://127.0.0.1:{port}"
    with open(logs, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "kiem_tra_cccd.receiver:app", "--host",
             "127.0.0.1", "--port", str(port)], cwd=project, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while True:
                assert process.poll() is None, logs.read_text(encoding="utf-8")
                try:
                    if http.get(base).status_code == 405:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield base
    finally:
        stop_process(process)


def test_the_generated_receiver_moves_a_real_case(
        project: Path, admin: Client, service: Service, tmp_path: Path) -> None:
    unit = new_unit(admin, service)
    setup = load("setup_demo")  # the example's workflow: kiem_tra_tu_dong -> dat | khong_dat
    port = free_port()
    settings = setup.setup(service.base_url, unit.code, unit.client_id, unit.client_secret,
                           f"http://127.0.0.1:{port}/")
    with uvicorn_serving(project, port, settings, tmp_path / "uvicorn.log"):
        case_id = setup.submit(service.base_url, unit.code, unit.client_id,
                               unit.client_secret, setup.ELIGIBLE)
        with service.worker(), unit.client() as nentang:
            deadline = time.monotonic() + TIMEOUT
            while (case := nentang.cases.get(unit.code, case_id)).state.name == \
                    "kiem_tra_tu_dong":
                assert time.monotonic() < deadline, "the generated receiver did not act"
                time.sleep(0.1)
            history = nentang.cases.history(unit.code, case_id)
    assert case.state.name == "tham_dinh"  # the generated decide(): ho_ten given -> dat
    assert [(h.action, h.comment) for h in history if h.kind == "action"] == [
        ("dat", "Kiểm tra tự động: đạt.")]
