"""The SDK ships as its own distribution: ``python -m build sdk/`` gives a wheel and an sdist
that pass ``twine check``; the wheel installs into a clean virtual environment with nothing
from the service, talks to the live service from there, and type-checks a user's code
(``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import nentang_sdk
import pytest
from live_service import Service

SDK = Path(__file__).resolve().parents[1]

USER_CODE = '''
import os
from nentang_sdk import Client, NotFoundError
from nentang_sdk.models import Tenant

with Client(os.environ["NENTANG_URL"], client_id=os.environ["NENTANG_CLIENT_ID"],
            client_secret=os.environ["NENTANG_CLIENT_SECRET"]) as nentang:
    root: Tenant = nentang.tenants.get(os.environ["NENTANG_ROOT"])
    codes: list[str] = [t.code for t in nentang.tenants.list(limit=2)]
    try:
        nentang.tenants.get("KHONGCO")
    except NotFoundError as error:
        print(root.code, len(codes) > 0, error.status)
'''
WRONG_CODE = '''
from nentang_sdk import Client
with Client("http://x", token="t") as nentang:
    nentang.tenants.get(code="BNV")
    name: int = nentang.tenants.get("BNV").name
'''


def _run(*command: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=600, check=False, **options)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "build", "--outdir", out, SDK)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return out


def test_build_gives_a_wheel_and_an_sdist_that_pass_twine_check(dist: Path) -> None:
    wheel, = dist.glob("nentang_sdk-*.whl")
    sdist, = dist.glob("nentang_sdk-*.tar.gz")
    assert wheel.name.startswith(f"nentang_sdk-{nentang_sdk.__version__}-")
    checked = _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(wheel).namelist()
    assert "nentang_sdk/py.typed" in names
    assert not any(n.startswith(("app/", "tests/")) for n in names)


def test_the_wheel_works_alone_in_a_clean_environment(dist: Path, service: Service,
                                                      tmp_path: Path) -> None:
    wheel, = dist.glob("nentang_sdk-*.whl")
    venv.EnvBuilder(with_pip=True, clear=True).create(tmp_path / "env")
    python = tmp_path / "env" / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "--quiet", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    alone = _run(python, "-c", "import importlib.util as u; print(u.find_spec('app'), "
                 "u.find_spec('sqlalchemy'), u.find_spec('fastapi'))", cwd=tmp_path)
    assert alone.stdout.split() == ["None", "None", "None"], alone.stdout + alone.stderr

    (tmp_path / "user.py").write_text(USER_CODE, encoding="utf-8")
    env = {"NENTANG_URL": service.base_url, "NENTANG_CLIENT_ID": service.admin_client_id,
           "NENTANG_CLIENT_SECRET": service.admin_client_secret, "NENTANG_ROOT": service.root,
           "PATH": "/usr/bin:/bin"}
    used = _run(python, tmp_path / "user.py", env=env, cwd=tmp_path)
    assert used.returncode == 0, used.stderr
    assert used.stdout.split() == [service.root, "True", "404"]

    # A user's type checker sees the SDK's types from the installed wheel (PEP 561).
    mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--python-executable", str(python)]
    typed = _run(*mypy, tmp_path / "user.py", cwd=tmp_path)
    assert typed.returncode == 0, typed.stdout
    (tmp_path / "wrong.py").write_text(WRONG_CODE, encoding="utf-8")
    wrong = _run(*mypy, tmp_path / "wrong.py", cwd=tmp_path)
    assert wrong.returncode == 1
    assert 'Unexpected keyword argument "code"' in wrong.stdout
    assert 'Incompatible types in assignment (expression has type "str"' in wrong.stdout
