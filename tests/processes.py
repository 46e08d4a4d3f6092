"""``nentang`` commands as separate processes on the suite's database: what an operator runs
(``serve``, ``worker``) beside the in-process app the tests drive, sharing its data."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk" / "tests"))
from live_service import free_port, stop_process

__all__ = ["free_port", "nentang_env", "ready", "start", "terminate", "wait_for"]

terminate = functools.partial(stop_process, timeout=60.0)
"""SIGTERM and wait for the exit code (SIGKILL if it does not stop within a minute)."""


def nentang_env(settings: Settings, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a process on the same database, keys and issuer as ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NENTANG_")}
    env.update({"NENTANG_DATA_DIR": str(data_dir),
                "NENTANG_DATABASE_URL": settings.effective_database_url,
                "NENTANG_SIGNING_KEY_FILE": str(settings.effective_signing_key_file),
                "NENTANG_ISSUER": settings.issuer,
                "NENTANG_DB_APP_ROLE": settings.db_app_role,
                "NENTANG_AUTO_MIGRATE": "false",
                "NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS": "true",
                "NENTANG_LOG_JSON": "false",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``nentang <args>`` in the background, stdout and stderr to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0,
             process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll until ``condition`` holds; fail with the process's log if it exits or time runs
    out (a generous bound for a busy machine, never a performance assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        if process is not None and process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} before {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{tail}")
        time.sleep(0.05)


def ready(url: str) -> bool:
    """Whether the service at ``url`` answers ``/readyz`` with 200 now."""
    try:
        return httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False
