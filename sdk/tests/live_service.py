"""The real Nentang service, for the SDK's contract tests and examples.

The SDK is checked against what its users talk to: ``nentang serve`` started as a subprocess
(from the same virtual environment) on a free loopback port, reached over real HTTP — no
in-process transport, no mocks. It runs on a SQLite file or on PostgreSQL; PostgreSQL gets a
fresh database and fresh owner/service roles per run, made the production way (``nentang db
create-roles`` and ``nentang db upgrade`` as a superuser, then served as the unprivileged role).

``NENTANG_TEST_PG_URL`` names the superuser connection, as in the main suite (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``). An unreachable PostgreSQL is an
error, never a skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

Backend = Literal["sqlite", "postgresql"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")

ROOT_CODE = "BNV"
ROOT_NAME = "Bộ Nội vụ"
DEFAULT_PG_SUPERUSER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 120.0
_SERVE_ATTEMPTS = 3  # another process may take the free port between our probe and the bind
_WORKER_READY_LINE = "stop with Ctrl+C or SIGTERM"  # printed by `nentang worker` once polling


class ServiceError(RuntimeError):
    """The service (or one of its commands) failed; the message carries its log tail."""


def pg_superuser_url() -> str:
    """The superuser connection that creates and drops the per-run database and roles."""
    return os.environ.get("NENTANG_TEST_PG_URL", DEFAULT_PG_SUPERUSER_URL)


def nentang_executable() -> str:
    """The ``nentang`` script of the running interpreter's environment (never one on PATH)."""
    found = shutil.which("nentang", path=str(Path(sys.executable).parent))
    if found is None:
        raise ServiceError(f"No `nentang` executable next to {sys.executable}; "
                           "install the service into this environment (pip install -e .).")
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes],
                 timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """SIGTERM (a clean shutdown), then SIGKILL after ``timeout``; always reaped, so no
    ResourceWarning. Returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a captured log, for error messages."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(content.splitlines()[-lines:])


def run_nentang(env: dict[str, str], cwd: Path, *args: str,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ``nentang`` command to completion; with ``check``, a non-zero exit raises
    ``ServiceError`` with the command's stderr."""
    result = subprocess.run(
        [nentang_executable(), *args], env=env, cwd=cwd, capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    if check and result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-40:])
        raise ServiceError(f"`nentang {' '.join(args)}` exited with {result.returncode}:\n{tail}")
    return result


def _spawn(env: dict[str, str], cwd: Path, log_stem: str,
           *args: str) -> subprocess.Popen[bytes]:
    """Start a long-running ``nentang`` command, its output going to ``<log_stem>.*.log``.

    The log files are closed here at once: the child holds its own descriptors."""
    with (open(cwd / f"{log_stem}.stdout.log", "wb") as out,
          open(cwd / f"{log_stem}.stderr.log", "wb") as err):
        return subprocess.Popen(
            [nentang_executable(), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=out, stderr=err)


def _failure(message: str, cwd: Path, log_stem: str) -> ServiceError:
    return ServiceError(
        f"{message}\n--- {log_stem} stderr (last lines) ---\n"
        f"{log_tail(cwd / f'{log_stem}.stderr.log')}\n"
        f"--- {log_stem} stdout (last lines) ---\n{log_tail(cwd / f'{log_stem}.stdout.log')}")


@dataclass
class Service:
    """A running ``nentang serve`` and what a test needs to talk to it."""

    backend: Backend
    base_url: str
    root: str
    admin_client_id: str
    admin_client_secret: str = field(repr=False)
    #: The environment of the service's processes: run more ``nentang`` commands (or
    #: examples) with it to share the same database, data directory and settings.
    env: dict[str, str] = field(repr=False)
    #: Reads the database past row-level security (SQLite: the file; PostgreSQL: the
    #: superuser on the test database). A SQLAlchemy async URL.
    superuser_url: str
    #: The data directory; the processes' logs (``*.stdout.log``, ``*.stderr.log``) are here.
    tmp_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def nentang(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``nentang`` command against this service's database and settings."""
        return run_nentang(self.env, self.tmp_dir, *args, check=check)

    def start_worker(self, poll: float = 0.2) -> subprocess.Popen[bytes]:
        """Start ``nentang worker --poll <poll>`` and return once it polls.

        The caller stops it (``stop_process``); ``stop`` stops any still running."""
        log_stem = f"worker-{len(self._workers) + 1}"
        process = _spawn(self.env, self.tmp_dir, log_stem, "worker", "--poll", f"{poll:g}")
        self._workers.append(process)
        stderr = self.tmp_dir / f"{log_stem}.stderr.log"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while _WORKER_READY_LINE not in log_tail(stderr):
            if process.poll() is not None:
                raise _failure(f"nentang worker exited with {process.returncode} at start",
                               self.tmp_dir, log_stem)
            if time.monotonic() > deadline:
                stop_process(process)
                raise _failure(f"nentang worker did not start in {START_TIMEOUT_SECONDS:g} s",
                               self.tmp_dir, log_stem)
            time.sleep(0.05)
        return process

    @contextmanager
    def worker(self, poll: float = 0.2) -> Iterator[subprocess.Popen[bytes]]:
        """A worker for the duration of a ``with`` block, stopped cleanly at its end."""
        process = self.start_worker(poll)
        try:
            yield process
        finally:
            stop_process(process)

    def stop(self) -> None:
        """Stop workers and the server, then drop what the run created (idempotent)."""
        try:
            for process in self._workers:
                stop_process(process)
            stop_process(self.process)
        finally:
            cleanup, self._cleanup = self._cleanup, []
            _run_cleanup(cleanup)


def start_service(backend: Backend, tmp_dir: Path) -> Service:
    """Prepare a database, bootstrap the root tenant and start ``nentang serve``; returns once
    ``/readyz`` answers 200. Everything made is undone if a step fails."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    tmp_dir = Path(tmp_dir).resolve()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    env = _base_env(tmp_dir)
    cleanup: list[Callable[[], None]] = []
    try:
        if backend == "sqlite":
            # `nentang` migrates the embedded SQLite by itself (auto_migrate defaults to true).
            superuser_url = env["NENTANG_DATABASE_URL"] = (
                f"sqlite+aiosqlite:///{(tmp_dir / 'nentang.db').as_posix()}")
        else:
            superuser_url = _prepare_postgresql(env, tmp_dir, cleanup)
        boot = run_nentang(env, tmp_dir, "bootstrap", "--code", ROOT_CODE, "--name", ROOT_NAME)
        credentials = json.loads(boot.stdout.strip().splitlines()[-1])
        process, base_url = _serve(env, tmp_dir)
    except BaseException as exc:
        try:
            _run_cleanup(cleanup)
        except Exception as cleanup_error:
            exc.add_note(f"Cleaning up also failed: {cleanup_error!r}")
        raise
    return Service(backend=backend, base_url=base_url, root=credentials["tenant"],
                   admin_client_id=credentials["client_id"],
                   admin_client_secret=credentials["client_secret"], env=env,
                   superuser_url=superuser_url, tmp_dir=tmp_dir, process=process,
                   _cleanup=cleanup)


def stop_service(service: Service) -> None:
    """Stop a service started by ``start_service`` (same as ``service.stop()``)."""
    service.stop()


@contextmanager
def running_service(backend: Backend, tmp_dir: Path) -> Iterator[Service]:
    """A service for the duration of a ``with`` block (for examples and scripts)."""
    service = start_service(backend, tmp_dir)
    try:
        yield service
    finally:
        service.stop()


def _base_env(tmp_dir: Path) -> dict[str, str]:
    """The caller's environment without its own NENTANG_* settings, plus the test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NENTANG_")}
    env.update({
        "NENTANG_DATA_DIR": str(tmp_dir),
        # Hooks are delivered to receivers on loopback, the test identity provider is http.
        "NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS": "true",
        "NENTANG_IDP_ALLOW_HTTP_LOOPBACK": "true",
        # One admin token may serve a whole backend's run.
        "NENTANG_ACCESS_TOKEN_TTL_SECONDS": "3600",
        "NENTANG_LOG_JSON": "false",
        # Logs readable (and complete) in the captured files, whatever the locale.
        "PYTHONUTF8": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _prepare_postgresql(env: dict[str, str], tmp_dir: Path,
                        cleanup: list[Callable[[], None]]) -> str:
    """A fresh database and roles, made and migrated as in production; returns the
    superuser URL on that database. Registers their removal in ``cleanup``."""
    suffix = uuid.uuid4().hex[:10]
    database, owner, app_role = f"nentang_sdk_{suffix}", f"nt_sdk_owner_{suffix}", \
        f"nt_sdk_app_{suffix}"
    admin_url = pg_superuser_url()
    _pg_execute(admin_url, f'CREATE DATABASE "{database}"')

    def drop() -> None:
        _pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                    f'DROP ROLE IF EXISTS "{app_role}"', f'DROP ROLE IF EXISTS "{owner}"')

    cleanup.append(drop)
    base = make_url(admin_url)
    superuser_url = base.set(database=database).render_as_string(hide_password=False)
    app_url = base.set(database=database, username=app_role, password=None).render_as_string(
        hide_password=False)
    env.update({"NENTANG_DATABASE_URL": app_url, "NENTANG_ADMIN_DATABASE_URL": superuser_url,
                "NENTANG_DB_OWNER_ROLE": owner, "NENTANG_DB_APP_ROLE": app_role})
    run_nentang(env, tmp_dir, "db", "create-roles")
    run_nentang(env, tmp_dir, "db", "upgrade")
    return superuser_url


def _pg_execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE need that)."""

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    _run_sync(main)


def _run_sync(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run``, in a helper thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work())
        return
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(lambda: asyncio.run(work())).result()


def _run_cleanup(cleanup: list[Callable[[], None]]) -> None:
    """Run every step, newest first, even if one fails; then raise the first failure."""
    errors: list[Exception] = []
    for step in reversed(cleanup):
        try:
            step()
        except Exception as exc:
            errors.append(exc)
    cleanup.clear()
    if errors:
        raise errors[0]


def _serve(env: dict[str, str], tmp_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``nentang serve`` on a free port (the issuer is its URL) and wait until ready."""
    for _ in range(_SERVE_ATTEMPTS):
        port = free_port()
        base_url = env["NENTANG_ISSUER"] = f"http://127.0.0.1:{port}"
        process = _spawn(env, tmp_dir, "serve", "serve", "--host", "127.0.0.1",
                         "--port", str(port))
        try:
            _wait_ready(process, base_url, tmp_dir)
        except _PortTaken:
            continue
        except BaseException:
            stop_process(process)
            raise
        return process, base_url
    raise _failure(f"nentang serve found no free port in {_SERVE_ATTEMPTS} attempts",
                   tmp_dir, "serve")


class _PortTaken(Exception):
    """The server exited because another process bound its port first."""


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, tmp_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last = "no answer"
    # trust_env=False: a proxy from the environment must not stand between us and loopback.
    with httpx.Client(timeout=2.0, trust_env=False) as http:
        while True:
            if process.poll() is not None:
                if "address already in use" in log_tail(tmp_dir / "serve.stderr.log").lower():
                    raise _PortTaken
                raise _failure(f"nentang serve exited with {process.returncode} before it was "
                               "ready", tmp_dir, "serve")
            try:
                response = http.get(f"{base_url}/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise _failure(f"nentang serve not ready after {START_TIMEOUT_SECONDS:g} s "
                               f"(last /readyz: {last})", tmp_dir, "serve")
            time.sleep(0.1)
