"""``nentang_sdk.hooks.HookApp``: a province's hook receiver, served by uvicorn on loopback and
called by the live service's worker. The example in ``sdk/examples/province_check`` runs end
to end: a case entering ``kiem_tra_tu_dong`` is checked and moved by the receiver's action.
Forged and unsigned requests are refused before their body is read, repeats are dropped,
redelivery after a restart does not act twice, and failures answer so the platform retries."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from live_service import Service
from nentang_sdk import AsyncClient, Client
from nentang_sdk.hooks import HookApp, HookContext
from nentang_sdk.models import Case
from nentang_sdk.webhooks import Event, new_secret, sign
from sdk_helpers import Unit, client_in, new_unit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "province_check"
TIMEOUT = 30.0


# ---- serving and loading ---------------------------------------------------------------------


def loopback_socket() -> socket.socket:
    """A bound loopback socket: its URL is known before the app exists (the workflow's hook
    needs it), and no other process can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def serving(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """``app`` served by uvicorn (with its lifespan) in a thread; yields the base URL."""
    sock = sock or loopback_socket()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", ws="none", log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped at start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
    assert not thread.is_alive()


def load(name: str, env: Mapping[str, str] | None = None,
         monkeypatch: pytest.MonkeyPatch | None = None) -> ModuleType:
    """A fresh instance of an example module (a receiver 'restarted' each time)."""
    if env:
        assert monkeypatch is not None
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"province_check_{name}_{uuid.uuid4().hex}",
                                                  EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_for_state(unit: Unit, case_id: str, leaving: str) -> Case:
    """Poll the case through the SDK until it has left ``leaving``."""
    deadline = time.monotonic() + TIMEOUT
    with unit.client() as nentang:
        while True:
            case = nentang.cases.get(unit.code, case_id)
            if case.state.name != leaving:
                return case
            assert time.monotonic() < deadline, f"case {case_id} still in {leaving}"
            time.sleep(0.1)


def post(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=TIMEOUT) as http:
        return http.post(url, content=body, headers=dict(headers or {}))


def redelivered(event: Event, secret: str) -> tuple[bytes, dict[str, str]]:
    """What the platform sends when it retries ``event``: the same id and body, signed anew
    with the time of the new attempt."""
    body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()
    return body, sign(body, secret, message_id=event.id)


def hook_event(secret: str, *, state: str = "kiem_tra_tu_dong", when: str = "on_enter",
               message_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A signed hook event like the platform's (about no real case)."""
    body = json.dumps({"type": "case.hook.webhook", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"event": message_id, "tenant": {"id": str(uuid.uuid4()),
                                                                "code": "HN"},
                                "case": str(uuid.uuid4()), "workflow": "w", "version": 1,
                                "state": state, "status": "open", "when": when,
                                "hook_state": state, "hook": {"type": "webhook"}}}).encode()
    return body, sign(body, secret, message_id=message_id or str(uuid.uuid4()))


# ---- the example, end to end -------------------------------------------------------------------


def example(*args: str) -> dict[str, str]:
    """Run ``setup_demo.py`` as its README says; its output as ``NAME=value`` pairs."""
    done = subprocess.run([sys.executable, str(EXAMPLE / "setup_demo.py"), *args],
                          capture_output=True, text=True, timeout=TIMEOUT * 2, check=False)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_the_example_checks_each_applicant_and_moves_the_case(
        admin: Client, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = new_unit(admin, service)
    sock = loopback_socket()
    # "--client-secret=…" in one argument: a generated secret may begin with "-".
    as_admin = ("--url", service.base_url, "--tenant", unit.code, "--client-id",
                unit.client_id, f"--client-secret={unit.client_secret}")
    env = example("setup", *as_admin, "--receiver-url", url_of(sock) + "/kiem-tra")
    assert sorted(env) == ["NENTANG_CLIENT_ID", "NENTANG_CLIENT_SECRET", "NENTANG_URL",
                           "NENTANG_WEBHOOK_SECRETS"]
    receiver = load("receiver", env, monkeypatch)
    app: HookApp = receiver.app
    events: list[Event] = []

    @app.on_enter("kiem_tra_tu_dong")
    async def record(ctx: HookContext) -> None:  # runs after the example's own handler
        events.append(ctx.event)

    with serving(app, sock) as base:
        assert post(base + "/kiem-tra", b"{}").status_code == 401  # unsigned
        cases = example("try", *as_admin)
        eligible, ineligible = cases["ELIGIBLE_CASE"], cases["INELIGIBLE_CASE"]
        with service.worker():
            passed = wait_for_state(unit, eligible, "kiem_tra_tu_dong")
            failed = wait_for_state(unit, ineligible, "kiem_tra_tu_dong")
        assert (passed.state.name, passed.status) == ("tham_dinh", "open")
        assert (failed.state.name, failed.status, failed.outcome) == (
            "khong_dat_yeu_cau", "closed", "rejected")
        with unit.client() as nentang:
            [taken] = [h for h in nentang.cases.history(unit.code, ineligible)
                       if h.kind == "action"]
        assert taken.action == "khong_dat" and taken.actor.endswith(env["NENTANG_CLIENT_ID"])
        assert taken.comment == ("Kiểm tra tự động: chưa đủ 18 tuổi ("
                                 f"{receiver.age(date(2015, 1, 1), receiver.today_in_vietnam())}"
                                 " tuổi); số định danh cá nhân không gồm đúng 12 chữ số.")
        assert sorted(e.case_id or "" for e in events) == sorted([eligible, ineligible])
        first = next(e for e in events if e.case_id == eligible)
        assert (first.tenant, first.when, first.hook_state) == (unit.code, "on_enter",
                                                                "kiem_tra_tu_dong")

        # The platform retries (its answer was lost): the same id is dropped at once.
        body, headers = redelivered(first, env["NENTANG_WEBHOOK_SECRETS"])
        again = post(base + "/kiem-tra", body, headers)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        # A forged copy (another id, the body altered) is refused.
        forged_body = body.replace(eligible.encode(), ineligible.encode())
        assert post(base + "/kiem-tra", forged_body,
                    {**headers, "webhook-id": str(uuid.uuid4())}).status_code == 401
        assert post(base + "/kiem-tra", body, sign(body, new_secret())).status_code == 401

    # After a restart the seen set is empty: the handler runs, but the case has moved on, so
    # it does not act again.
    restarted = load("receiver", env, monkeypatch)
    with serving(restarted.app) as base:
        body, headers = redelivered(first, env["NENTANG_WEBHOOK_SECRETS"])
        answer = post(base + "/kiem-tra", body, headers)
        assert answer.status_code == 200 and answer.json()["status"] == "handled"
    with unit.client() as nentang:
        actions = [h.action for h in nentang.cases.history(unit.code, eligible)
                   if h.kind == "action"]
        assert actions == ["dat"]
        assert nentang.cases.get(unit.code, eligible).state.name == "tham_dinh"


def test_the_examples_check() -> None:
    receiver_module = load_without_env()
    problems: Callable[[Mapping[str, Any], date], list[str]] = receiver_module.problems
    today = date(2026, 3, 1)
    good = {"ngay_sinh": "2008-03-01", "so_cccd": "001208012345"}
    assert problems(good, today) == []  # 18 today
    assert problems({**good, "ngay_sinh": "2008-03-02"}, today) == ["chưa đủ 18 tuổi (17 tuổi)"]
    assert problems({**good, "ngay_sinh": "2008-02-29"}, date(2026, 2, 28)) == [
        "chưa đủ 18 tuổi (17 tuổi)"]
    assert problems({**good, "ngay_sinh": "***"}, today) == ["không đọc được ngày sinh"]
    for wrong in ("00120801234", "0012080123456", "00120801234a", "", "***"):
        assert problems({**good, "so_cccd": wrong}, today) == [
            "số định danh cá nhân không gồm đúng 12 chữ số"], wrong
    assert receiver_module.today_in_vietnam(datetime(2026, 3, 1, 18, 0, tzinfo=UTC)) == date(
        2026, 3, 2)


def load_without_env() -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        secret = new_secret()
        return load("receiver", {"NENTANG_URL": "http://127.0.0.1:9", "NENTANG_CLIENT_ID": "x",
                                 "NENTANG_CLIENT_SECRET": "y",
                                 "NENTANG_WEBHOOK_SECRETS": secret}, monkeypatch)


# ---- races and failures, with the live platform --------------------------------------------


def hooked_unit(admin: Client, service: Service, sock: socket.socket
                ) -> tuple[Unit, dict[str, str], ModuleType]:
    """A unit with the example's form and workflow, its hook pointing at ``sock``."""
    unit = new_unit(admin, service)
    setup = load("setup_demo")
    env = setup.setup(service.base_url, unit.code, unit.client_id, unit.client_secret,
                      url_of(sock) + "/hook")
    return unit, env, setup


def app_for(env: Mapping[str, str]) -> HookApp:
    return HookApp(base_url=env["NENTANG_URL"], client_id=env["NENTANG_CLIENT_ID"],
                   client_secret=env["NENTANG_CLIENT_SECRET"],
                   secrets=env["NENTANG_WEBHOOK_SECRETS"])


def test_an_official_acting_first_is_not_an_error(admin: Client, service: Service) -> None:
    sock = loopback_socket()
    unit, env, setup = hooked_unit(admin, service, sock)
    officer = client_in(admin, service, unit.code, ["officer"])
    app = app_for(env)
    outcomes: list[object] = []

    @app.on_enter("kiem_tra_tu_dong")
    async def racing(ctx: HookContext) -> None:
        case = await ctx.case()
        assert not ctx.moved_on(case)
        async with officer.async_client() as other:  # an official is quicker
            await other.cases.act(ctx.tenant, case, "dat", comment="Kiểm tra bằng tay")
        outcomes.append(await ctx.act("khong_dat", comment="Kiểm tra tự động"))

    with serving(app, sock):
        case_id = setup.submit(service.base_url, unit.code, unit.client_id,
                               unit.client_secret, setup.ELIGIBLE)
        with service.worker():
            moved = wait_for_state(unit, case_id, "kiem_tra_tu_dong")
            deadline = time.monotonic() + TIMEOUT
            while not outcomes or delivery_of(admin, unit, case_id)["status"] != "delivered":
                assert time.monotonic() < deadline, "the hook was not delivered"
                time.sleep(0.1)
    assert outcomes == [None]  # ctx.act saw CaseChangedError, re-read: moved on, done
    assert moved.state.name == "tham_dinh"
    with unit.client() as nentang:
        assert [(h.action, h.comment) for h in nentang.cases.history(unit.code, case_id)
                if h.kind == "action"] == [("dat", "Kiểm tra bằng tay")]


def delivery_of(admin: Client, unit: Unit, case_id: str) -> dict[str, Any]:
    token = admin.oauth.token(client_id=unit.client_id, client_secret=unit.client_secret)
    with httpx.Client(base_url=unit.base_url, trust_env=False, headers={
            "Authorization": f"Bearer {token.access_token}"}) as http:
        listed = http.get(f"/api/v1/tenants/{unit.code}/deliveries", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    [delivery] = [d for d in listed.json()["items"] if d["case"] == case_id]
    found: dict[str, Any] = delivery
    return found


def test_a_failing_handler_answers_500_and_the_platform_will_retry(
        admin: Client, service: Service) -> None:
    sock = loopback_socket()
    unit, env, setup = hooked_unit(admin, service, sock)
    app = app_for(env)
    calls: list[str] = []

    @app.on_enter("kiem_tra_tu_dong")
    async def broken(ctx: HookContext) -> None:
        calls.append(ctx.event.id)
        raise RuntimeError("the provincial registry is down")

    with serving(app, sock):
        case_id = setup.submit(service.base_url, unit.code, unit.client_id,
                               unit.client_secret, setup.ELIGIBLE)
        with service.worker():
            deadline = time.monotonic() + TIMEOUT
            while (delivery := delivery_of(admin, unit, case_id))["attempts"] < 1:
                assert time.monotonic() < deadline, "the hook was not attempted"
                time.sleep(0.1)
    assert (delivery["status"], delivery["last_status"]) == ("pending", 500)
    assert delivery["next_attempt_at"] is not None and len(calls) == 1
    assert calls[0] == delivery["event"]  # not remembered as handled: the retry will run


# ---- the HTTP contract, without a platform ---------------------------------------------------


def test_requests_that_are_not_signed_deliveries() -> None:
    secret = new_secret()
    app = HookApp(base_url="http://127.0.0.1:9", client_id="x", client_secret="y",
                  secrets=[new_secret(), secret], max_body=10_000)
    handled: list[Event] = []

    @app.on_enter("kiem_tra_tu_dong")
    async def check(ctx: HookContext) -> None:
        handled.append(ctx.event)

    with serving(app) as base, httpx.Client(base_url=base, trust_env=False) as http:
        body, headers = hook_event(secret)
        for method in ("GET", "PUT", "DELETE"):
            refused = http.request(method, "/", headers=headers)
            assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        assert http.post("/", content=body).status_code == 401
        unsigned = http.post("/", content=body, headers={**headers, "webhook-signature": ""})
        assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
        assert http.post("/", content=b"x" + body, headers=headers).status_code == 401
        assert http.post("/", content=body,
                         headers={**headers, "webhook-timestamp": "1700000000"}
                         ).status_code == 401
        assert http.post("/", content=b"{" * 20_000, headers=headers).status_code == 413
        assert handled == []

        done = http.post("/any/path", content=body, headers=headers)
        assert done.status_code == 200 and done.json()["status"] == "handled"
        assert http.post("/", content=body, headers=headers).json()["status"] == "duplicate"
        assert len(handled) == 1 and handled[0].hook_state == "kiem_tra_tu_dong"

        for other in (hook_event(secret, state="tham_dinh"),
                      hook_event(secret, when="on_leave")):
            ignored = http.post("/", content=other[0], headers=other[1])
            assert ignored.status_code == 204 and ignored.content == b""
        assert len(handled) == 1


def test_a_repeat_while_handling_is_retried_later_and_a_slow_handler_times_out() -> None:
    secret = new_secret()
    app = HookApp(base_url="http://127.0.0.1:9", client_id="x", client_secret="y",
                  secrets=secret, timeout=1.0)
    release = threading.Event()
    calls: list[str] = []

    @app.on_enter("cham")
    async def slow(ctx: HookContext) -> None:
        calls.append(ctx.event.id)
        await asyncio.to_thread(release.wait, TIMEOUT)

    @app.on_enter("rat_cham")
    async def too_slow(ctx: HookContext) -> None:
        await asyncio.sleep(TIMEOUT)

    with serving(app) as base:
        body, headers = hook_event(secret, state="cham")
        first: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: first.append(post(base, body, headers)))
        sender.start()
        deadline = time.monotonic() + TIMEOUT
        while not calls:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        busy = post(base, body, headers)
        assert busy.status_code == 409 and busy.headers["retry-after"] == "5"
        release.set()
        sender.join(TIMEOUT)
        assert first[0].status_code == 200 and len(calls) == 1

        body, headers = hook_event(secret, state="rat_cham")
        late = post(base, body, headers)
        assert late.status_code == 503 and late.headers["retry-after"] == "30"


def test_the_api_client_is_made_on_first_use_and_closed_at_shutdown() -> None:
    app = HookApp(base_url="http://127.0.0.1:9", client_id="x", client_secret="y",
                  secrets=new_secret())
    made: list[AsyncClient] = []

    @app.on_event("case.*")
    async def any_case_event(ctx: HookContext) -> None:
        made.append(ctx.client)

    secret = app.secrets[0]
    with serving(app) as base:
        body = json.dumps({"id": "e1", "type": "case.opened", "subscription": "s",
                           "tenant": "HN", "case": {"id": "c1", "state": "a"},
                           "event": {}, "data": {}}).encode()
        for _ in range(2):
            assert post(base, body, sign(body, secret)).status_code == 200
        assert len(made) == 2 and made[0] is made[1] is app.client
    assert made[0]._http.is_closed  # the lifespan shutdown closed it


def test_configuration_mistakes_fail_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        HookApp(base_url="u", client_id="x", client_secret="y", secrets=["not a secret!"])
    with pytest.raises(ValueError, match="at least one"):
        HookApp(base_url="u", client_id="x", client_secret="y", secrets=[])
    for name in ("NENTANG_URL", "NENTANG_CLIENT_ID", "NENTANG_CLIENT_SECRET",
                 "NENTANG_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="NENTANG_URL, NENTANG_CLIENT_ID"):
        HookApp.from_env()
    old, new = new_secret(), new_secret()
    app = HookApp.from_env({"NENTANG_URL": "http://x", "NENTANG_CLIENT_ID": "c",
                            "NENTANG_CLIENT_SECRET": "s",
                            "NENTANG_WEBHOOK_SECRETS": f"{new}, {old}"})
    assert app.secrets == [new, old]
    with pytest.raises(TypeError, match="async"):
        app.on_enter("x")(lambda ctx: None)  # type: ignore[type-var]


async def test_a_client_given_to_the_app_is_used_and_left_open() -> None:
    async with AsyncClient("http://127.0.0.1:9", token="t") as given:
        app = HookApp(base_url="unused", client_id="x", client_secret="y",
                      secrets=new_secret(), client=given)
        assert app.client is given
        await app.aclose()
        assert app.client is given and not given._http.is_closed
