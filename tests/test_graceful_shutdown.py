"""Stopping ``nentang serve`` and ``nentang worker`` the way an orchestrator does, as real
processes.

``serve``: SIGTERM closes the listening socket at once and lets requests in flight finish.
``worker``: SIGTERM lets the send in progress finish and be recorded; past ``--grace`` the round is
cancelled and the worker's leases are released, so another worker sends at once; a worker
killed outright holds its leases until they expire, and then another worker sends."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests import processes
from tests.conftest import Backend
from tests.platform import Platform, new_code
from tests.test_cases import office
from tests.test_deliveries import hooked, mine, received_case, secret_for
from tests.webhook_receiver import Answer, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


async def _stream(backend: Backend, case_id: str) -> list[dict[str, Any]]:
    """The case's deliveries as stored, oldest first (read past row security)."""
    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT status, attempts, lease_owner, lease_until FROM deliveries "
                "WHERE ordering_key = :case ORDER BY aggregate_seq, ordinal"),
                {"case": uuid.UUID(case_id) if backend.is_postgresql else
                 uuid.UUID(case_id).hex})
            return [dict(row._mapping) for row in rows]
    finally:
        await engine.dispose()


async def _queued_case(platform: Platform, client: httpx.AsyncClient,
                       receiver: Receiver) -> str:
    """A case with two hook deliveries queued, in one stream, for ``receiver``."""
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    return await received_case(client, where)


def _worker(backend: Backend, tmp_path: Path, name: str, *args: str,
            **env: str) -> tuple[Any, Path]:
    log = tmp_path / f"{name}.log"
    process = processes.start(processes.nentang_env(backend.settings, tmp_path, **env), log,
                              "worker", "--poll", "0.2", "--name", name, *args)
    return process, log


async def test_sigterm_drains_a_request_in_flight_and_refuses_new_ones(
        platform: Platform, client: httpx.AsyncClient, backend: Backend,
        tmp_path: Path) -> None:
    port, log = processes.free_port(), tmp_path / "serve.log"
    process = processes.start(processes.nentang_env(backend.settings, tmp_path), log,
                              "serve", "--port", str(port), "--graceful-timeout", "15")
    try:
        processes.wait_for(lambda: processes.ready(f"http://127.0.0.1:{port}"), "readiness",
                           process=process, log=log)
        code = new_code("D")
        body = json.dumps({"code": code, "name": "Đơn vị thử dừng êm", "kind": "agency",
                           "parent": platform.admin.tenant}).encode()
        head = (f"POST /api/v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {platform.admin.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(head + body[:10])  # the request is in flight: half its body sent
            await asyncio.sleep(0.3)
            process.terminate()
            processes.wait_for(lambda: not _accepts(port), "the listener to close",
                               process=process, log=log)
            conn.sendall(body[10:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:500]
        # uvicorn re-raises the SIGTERM it caught once drained: the exit is by that signal.
        assert process.wait(30) in (0, -signal.SIGTERM), log.read_text()
    finally:
        processes.terminate(process)
    assert (await client.get(f"/api/v1/tenants/{code}",
                             headers=platform.admin.headers)).status_code == 200


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _terminate_during_the_first_send(process: Any, log: Path, receiver: Receiver,
                                     case_id: str) -> None:
    """SIGTERM once the worker's first send to ``receiver`` is in flight; it exits 0."""
    try:
        processes.wait_for(lambda: len(mine(receiver, case_id)) == 1, "the first send",
                           process=process, log=log)
        assert processes.terminate(process) == 0, log.read_text()
    finally:
        processes.terminate(process)


async def test_sigterm_lets_the_send_in_progress_finish_and_claims_nothing_more(
        platform: Platform, client: httpx.AsyncClient, receiver: Receiver, backend: Backend,
        tmp_path: Path) -> None:
    case_id = await _queued_case(platform, client, receiver)
    receiver.answer(Answer(204, delay=2.0))
    process, log = _worker(backend, tmp_path, "draining")
    _terminate_during_the_first_send(process, log, receiver, case_id)
    stored = await _stream(backend, case_id)
    assert [row["status"] for row in stored] == ["delivered", "pending"]
    assert stored[1]["attempts"] == 0 and stored[1]["lease_owner"] is None
    assert len(mine(receiver, case_id)) == 1  # nothing new was claimed after SIGTERM
    assert "released 0 timers and 0 deliveries" in log.read_text()


async def test_past_the_grace_period_the_round_is_cancelled_and_its_work_released(
        platform: Platform, client: httpx.AsyncClient, receiver: Receiver, backend: Backend,
        tmp_path: Path) -> None:
    case_id = await _queued_case(platform, client, receiver)
    receiver.answer(Answer(204, delay=8.0))
    process, log = _worker(backend, tmp_path, "slow", "--grace", "0.5")
    _terminate_during_the_first_send(process, log, receiver, case_id)
    output = log.read_text()
    assert "the round in progress was cancelled" in output
    # At least ours (other tests' leftover deliveries share the database).
    assert re.search(r"released 0 timers and [1-9]\d* deliveries", output), output
    stored = await _stream(backend, case_id)
    assert [(row["status"], row["lease_owner"], row["lease_until"]) for row in stored] == [
        ("pending", None, None), ("pending", None, None)]

    # Released, not leased: the next worker sends at once, with the same webhook-id.
    process, log = _worker(backend, tmp_path, "next")
    try:
        processes.wait_for(lambda: len(mine(receiver, case_id)) == 3, "the other worker",
                           process=process, log=log)
    finally:
        assert processes.terminate(process) == 0
    arrived = [r.headers["webhook-id"] for r in mine(receiver, case_id)]
    assert arrived[0] == arrived[1] != arrived[2]


async def test_a_killed_workers_lease_expires_and_another_worker_sends(
        platform: Platform, client: httpx.AsyncClient, receiver: Receiver, backend: Backend,
        tmp_path: Path) -> None:
    case_id = await _queued_case(platform, client, receiver)
    receiver.answer(Answer(204, delay=8.0))
    short = {"NENTANG_DELIVERY_TIMEOUT_SECONDS": "1.5", "NENTANG_DELIVERY_LEASE_SECONDS": "3"}
    process, log = _worker(backend, tmp_path, "doomed", **short)
    try:
        processes.wait_for(lambda: len(mine(receiver, case_id)) == 1, "the first send",
                           process=process, log=log)
    finally:
        process.kill()
        process.wait()
    killed_at = time.monotonic()
    leased = await _stream(backend, case_id)
    assert leased[0]["lease_owner"] == "doomed" and leased[0]["status"] == "pending"

    process, log = _worker(backend, tmp_path, "heir", **short)
    try:
        processes.wait_for(lambda: len(mine(receiver, case_id)) == 3, "the lease to expire",
                           process=process, log=log)
    finally:
        assert processes.terminate(process) == 0
    # The heir waited for the lease (3 s from the claim), which began before the kill.
    assert mine(receiver, case_id)[1].headers["webhook-id"] == \
        mine(receiver, case_id)[0].headers["webhook-id"]
    assert time.monotonic() - killed_at > 1.0
    assert [row["status"] for row in await _stream(backend, case_id)] == ["delivered"] * 2
