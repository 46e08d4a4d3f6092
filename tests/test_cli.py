"""The ``nentang`` command line, run as an operator would: in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Backend, pg_admin

COMMANDS = [[], ["serve"], ["db"], ["db", "upgrade"], ["db", "create-roles"], ["bootstrap"],
            ["admin"], ["admin", "create"], ["admin", "reset"],
            ["apply"], ["audit"], ["audit", "verify"], ["tenants"], ["tenants", "vietnam"]]


def nentang(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.fixture
def embedded(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NENTANG_")}
    return {**env, "NENTANG_DATA_DIR": str(tmp_path / "data"), "NENTANG_LOG_JSON": "false"}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], embedded: dict[str, str]) -> None:
    result = nentang(embedded, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: nentang" in result.stdout


def test_bootstrap_is_idempotent(embedded: dict[str, str]) -> None:
    first = nentang(embedded, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ")
    assert first.returncode == 0, first.stderr
    creds = json.loads(first.stdout)
    assert creds["client_id"].startswith("ntc_") and len(creds["client_secret"]) >= 40

    again = nentang(embedded, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ")
    assert again.returncode == 0
    assert json.loads(again.stdout) == {"tenant": "BNV", "created": False,
                                        "existing_clients": [creds["client_id"]]}
    assert "already exists" in again.stderr and creds["client_secret"] not in again.stdout

    other = nentang(embedded, "bootstrap", "--code", "BTC", "--name", "Bộ Tài chính")
    assert other.returncode == 2 and "already bootstrapped" in other.stderr


def test_apply_and_audit_verify(embedded: dict[str, str], tmp_path: Path) -> None:
    assert nentang(embedded, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ").returncode == 0
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "hn.json").write_text(json.dumps({"kind": "TenantManifest", "tenants": [
        {"code": "01", "name": "Thành phố Hà Nội", "kind": "province", "parent": "BNV"},
        {"code": "00070", "name": "Phường Hoàn Kiếm", "kind": "commune", "parent": "01"},
    ]}, ensure_ascii=False), encoding="utf-8")
    (folder / "tenant-manifest.schema.json").write_text("{}", encoding="utf-8")

    dry = nentang(embedded, "apply", str(folder), "--dry-run")
    assert dry.returncode == 0 and "2 created" in dry.stderr and "dry run" in dry.stderr
    applied = nentang(embedded, "apply", str(folder))
    assert applied.returncode == 0 and "2 created" in applied.stderr, applied.stderr
    again = nentang(embedded, "apply", str(folder))
    assert "0 created, 0 renamed, 2 unchanged" in again.stderr

    verify = nentang(embedded, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    lines = [json.loads(line) for line in verify.stdout.splitlines()]
    assert {line["tenant"] for line in lines} == {"BNV", "01", "00070"}
    head = next(line for line in lines if line["tenant"] == "01")
    expect = f"{head['head_seq']}:{head['head_hash']}"
    assert nentang(embedded, "audit", "verify", "--tenant", "01",
                   "--expect-head", expect).returncode == 0

    db = sqlite3.connect(Path(embedded["NENTANG_DATA_DIR"]) / "nentang.db")
    with db:
        db.execute("UPDATE audit_records SET actor = 'forged' WHERE seq = 1 AND tenant_id = "
                   "(SELECT id FROM tenants WHERE code = '00070')")
    db.close()
    broken = nentang(embedded, "audit", "verify")
    assert broken.returncode == 1
    bad = [json.loads(line) for line in broken.stdout.splitlines()]
    assert [(b["tenant"], b["broken_seq"]) for b in bad if not b["ok"]] == [("00070", 1)]


def test_invalid_manifest_writes_nothing(embedded: dict[str, str], tmp_path: Path) -> None:
    assert nentang(embedded, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ").returncode == 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kind": "TenantManifest", "tenants": [
        {"code": "01", "name": "Hà Nội", "kind": "province", "parent": "BNV"},
        {"code": "02", "name": "Sai", "kind": "commune", "parent": "BNV"},
    ]}), encoding="utf-8")
    result = nentang(embedded, "apply", str(path))
    assert result.returncode == 2
    assert "/tenants/1/kind" in result.stderr
    verify = nentang(embedded, "audit", "verify")
    assert {json.loads(line)["tenant"] for line in verify.stdout.splitlines()} == {"BNV"}


def test_vietnam_generator_matches_the_shipped_manifest(embedded: dict[str, str]) -> None:
    result = nentang(embedded, "tenants", "vietnam")
    shipped = Path(__file__).resolve().parents[1] / "tenants" / "vietnam.json"
    assert json.loads(result.stdout) == json.loads(shipped.read_text(encoding="utf-8"))


def test_postgresql_roles_migrations_and_bootstrap(postgresql_backend: Backend,
                                                   embedded: dict[str, str]) -> None:
    """Production flow: create roles and migrate as a superuser, then serve as the app role."""
    base = postgresql_backend.settings
    name = f"{make_url(postgresql_backend.superuser_url).database}_cli"
    admin = make_url(base.effective_admin_database_url).set(database=name)
    app_url = make_url(base.effective_database_url).set(database=name)
    env = {**embedded,
           "NENTANG_DATABASE_URL": app_url.render_as_string(hide_password=False),
           "NENTANG_ADMIN_DATABASE_URL": admin.render_as_string(hide_password=False),
           "NENTANG_DB_OWNER_ROLE": base.db_owner_role, "NENTANG_DB_APP_ROLE": base.db_app_role}
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        unmigrated = nentang(env, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ")
        assert unmigrated.returncode != 0, "production does not migrate implicitly"
        roles = nentang(env, "db", "create-roles")
        assert roles.returncode == 0 and base.db_app_role in roles.stderr, roles.stderr
        assert nentang(env, "db", "upgrade").returncode == 0
        boot = nentang(env, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ")
        assert boot.returncode == 0, boot.stderr
        assert json.loads(boot.stdout)["client_id"].startswith("ntc_")
        assert nentang(env, "audit", "verify").returncode == 0
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_break_glass_admin_can_sign_in(embedded: dict[str, str], tmp_path: Path) -> None:
    """With no token at all, an operator at the server makes a local platform administrator
    (TOTP required), and later resets its password."""
    from urllib.parse import parse_qs, urlsplit

    import httpx
    import pyotp

    from app.config import Settings
    from app.main import create_app
    from tests.platform import sign_in

    assert nentang(embedded, "bootstrap", "--code", "BNV", "--name", "Bộ Nội vụ").returncode == 0
    created = nentang(embedded, "admin", "create", "--tenant", "BNV", "--username", "ung.cuu",
                      "--name", "Quản trị khẩn cấp", "--role", "platform_admin")
    assert created.returncode == 0, created.stderr
    first = json.loads(created.stdout)
    assert first["password"] and first["totp_uri"].startswith("otpauth://")
    again = nentang(embedded, "admin", "create", "--tenant", "BNV", "--username", "ung.cuu")
    assert again.returncode == 2 and "already a user" in again.stderr
    unknown = nentang(embedded, "admin", "reset", "--tenant", "BNV", "--username", "khong.co")
    assert unknown.returncode == 2 and "No user" in unknown.stderr
    reset = nentang(embedded, "admin", "reset", "--tenant", "BNV", "--username", "ung.cuu")
    assert reset.returncode == 0, reset.stderr
    password = json.loads(reset.stdout)["password"]
    assert password and password != first["password"]

    secret = parse_qs(urlsplit(first["totp_uri"]).query)["secret"][0]
    app = create_app(Settings(data_dir=tmp_path / "data", log_json=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://nentang.test") as http:
        tokens = await sign_in(http, "BNV", "ung.cuu", password, totp=pyotp.TOTP(secret).now())
        me = await http.get("/api/v1/me",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    await app.state.db.dispose()
    assert [(g["role"], g["tenant"]) for g in me.json()["grants"]] == [("platform_admin", "BNV")]
