"""Workflow webhooks delivered by the worker: signed (Standard Webhooks, checked with that
scheme's own library), at least once, in order per case and target, retried with backoff,
given up on after the last attempt, replayed by an admin; keys rotated without a gap; and
private targets refused. The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.core.db import utcnow
from app.deliveries import signing
from app.deliveries import worker as deliveries
from app.deliveries.transports import Attempt
from tests.conftest import Backend, only_postgresql
from tests.platform import Platform
from tests.test_cases import Office, act, office, submit
from tests.test_forms import sample
from tests.test_workflows import catalogue
from tests.webhook_receiver import Answer, Receiver

OPTIONS = deliveries.Options(max_attempts=3, timeout_seconds=5, backoff_seconds=1,
                             allow_private_targets=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def hooked(url: str) -> dict[str, Any]:
    """The household-business workflow, telling ``url`` when a case leaves reception, enters
    review and leaves review."""
    definition = catalogue("ho-kinh-doanh")
    states = {s["name"]: s for s in definition["states"]}
    states["tiep_nhan"]["on_leave"] = [{"type": "webhook", "url": url}]
    states["xem_xet_ho_so"]["on_enter"] = [{"type": "webhook", "url": url}]
    states["xem_xet_ho_so"]["on_leave"] = [{"type": "webhook", "url": url}]
    return definition


async def secret_for(client: httpx.AsyncClient, tenant: str, headers: dict[str, str],
                     **body: Any) -> str:
    made = await client.post(f"/api/v1/tenants/{tenant}/webhook-secrets", json=body or None,
                             headers=headers)
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    secret: str = made.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


async def received_case(client: httpx.AsyncClient, where: Office) -> str:
    """A case that has left reception: two hook events queued for the receiver."""
    case_id: str = (await submit(client, where))["case"]
    moved = await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)
    assert moved.status_code == 200, moved.text
    return case_id


async def propose(client: httpx.AsyncClient, where: Office, case_id: str) -> httpx.Response:
    """Leave review: the third hook event."""
    return await act(client, where, case_id, "de_xuat_cap", where.officer,
                     {"fields": {"ten_khong_trung": True, "nganh_nghe_khong_cam": True}})


async def of_case(client: httpx.AsyncClient, where: Office, case_id: str,
                  **params: str) -> list[dict[str, Any]]:
    """The case's deliveries, oldest first, as the province's admin sees them."""
    listed = await client.get(f"/api/v1/tenants/{where.province}/deliveries",
                              params={"limit": "500", **params}, headers=where.admin.headers)
    assert listed.status_code == 200, listed.text
    return sorted((d for d in listed.json()["items"] if d["case"] == case_id),
                  key=lambda d: (d["revision"], d["ordinal"]))


async def run(platform: Platform, *, at: datetime | None = None, owner: str = "w1",
              options: deliveries.Options = OPTIONS) -> deliveries.Sent:
    moment = at or utcnow()
    return await deliveries.run_once(platform.app.state.db, owner, options=options,
                                     clock=lambda: moment)


def body_of(received: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


def mine(receiver: Receiver, case_id: str) -> list[Any]:
    return [r for r in receiver.received if body_of(r)["data"]["case"] == case_id]


# ---- pure parts ------------------------------------------------------------------------------


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"type":"case.hook.webhook"}'
    stamp = int(utcnow().timestamp())
    headers = signing.headers([new, old], "msg_1", stamp, body)
    for key in (old, new):
        assert Webhook(key).verify(body, headers) == {"type": "case.hook.webhook"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):  # an old message replayed later
        Webhook(new).verify(body, signing.headers([new], "msg_1", stamp - 3600, body))


def test_backoff_doubles_with_jitter_up_to_an_hour_and_honours_retry_after() -> None:
    options = deliveries.Options(backoff_seconds=30)
    assert deliveries.backoff(1, options, rng=lambda: 0.0) == timedelta(seconds=15)
    assert deliveries.backoff(1, options, rng=lambda: 1.0) == timedelta(seconds=30)
    assert deliveries.backoff(4, options, rng=lambda: 1.0) == timedelta(seconds=240)
    assert deliveries.backoff(30, options, rng=lambda: 1.0) == timedelta(hours=1)
    waits = {deliveries.backoff(3, options) for _ in range(50)}
    assert len(waits) > 1 and all(timedelta(seconds=60) <= w <= timedelta(seconds=120)
                                  for w in waits)
    assert deliveries.backoff(1, options, timedelta(minutes=10),
                              rng=lambda: 1.0) == timedelta(minutes=10)
    assert deliveries.backoff(1, options, timedelta(days=2), rng=lambda: 1.0) == timedelta(hours=1)
    assert deliveries.backoff(100, options, rng=lambda: 1.0) == timedelta(hours=1)  # no overflow


# ---- over the API and the worker -------------------------------------------------------------


async def test_a_hook_arrives_signed_in_order_and_carries_no_case_data(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    secret = await secret_for(client, where.province, where.admin.headers)
    keys = await client.get(f"/api/v1/tenants/{where.province}/webhook-secrets",
                            headers=where.admin.headers)
    assert keys.status_code == 200 and len(keys.json()) == 1
    assert "secret" not in keys.json()[0] and keys.json()[0]["expires_at"] is None
    case_id = await received_case(client, where)

    sent = await run(platform)
    assert sent.delivered >= 2 and sent.errors == []
    arrived = mine(receiver, case_id)
    assert [(body_of(r)["data"]["when"], body_of(r)["data"]["hook_state"]) for r in arrived] == [
        ("on_leave", "tiep_nhan"), ("on_enter", "xem_xet_ho_so")]
    for request in arrived:
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "case.hook.webhook"
        assert payload["data"]["tenant"]["code"] == where.commune
        assert payload["data"]["event"] == request.headers["webhook-id"]
        assert request.path == "/hook"
    text = b"".join(r.body for r in arrived).decode()
    personal = [v for v in sample("ho-kinh-doanh").values() if isinstance(v, str) and len(v) > 3]
    assert personal and not [v for v in personal if v in text]

    rows = await of_case(client, where, case_id)
    assert [(d["status"], d["attempts"], d["last_status"]) for d in rows] == [
        ("delivered", 1, 204), ("delivered", 1, 204)]
    assert {d["event"] for d in rows} == {r.headers["webhook-id"] for r in arrived}
    one = await client.get(f"/api/v1/tenants/{where.commune}/deliveries/{rows[0]['id']}",
                           headers=where.admin.headers)
    assert one.status_code == 200 and one.json()["payload"]["case"] == case_id

    await run(platform)  # nothing is sent twice
    assert len(mine(receiver, case_id)) == 2


async def test_a_delivery_waits_for_a_key_and_the_nearest_unit_with_one_signs(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    case_id = await received_case(client, where)
    await run(platform)
    assert mine(receiver, case_id) == []
    waiting = await of_case(client, where, case_id)
    assert waiting[0]["status"] == "pending" and waiting[0]["attempts"] == 1
    assert "webhook-secrets" in waiting[0]["last_error"]

    province_key = await secret_for(client, where.province, where.admin.headers)
    await run(platform, at=utcnow() + timedelta(hours=2))
    first = mine(receiver, case_id)
    assert len(first) == 2
    assert all(Webhook(province_key).verify(r.body, r.headers) for r in first)

    commune_admin = await platform.client_for(where.commune, ["tenant_admin"], by=where.admin)
    commune_key = await secret_for(client, where.commune, commune_admin.headers)
    moved = await propose(client, where, case_id)
    assert moved.status_code == 200, moved.text
    await run(platform)
    last = mine(receiver, case_id)[-1]
    assert Webhook(commune_key).verify(last.body, last.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(province_key).verify(last.body, last.headers)


async def test_failures_retry_hold_the_stream_then_die_and_an_admin_replays(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    receiver.answer(500, 503, 500)  # the first event fails every attempt (3)
    case_id = await received_case(client, where)
    start = utcnow()
    await run(platform, at=start)
    first, second = await of_case(client, where, case_id)
    assert (first["status"], first["attempts"], first["last_status"]) == ("pending", 1, 500)
    wait = datetime.fromisoformat(first["next_attempt_at"]) - start
    assert timedelta(seconds=0.5) <= wait <= timedelta(seconds=1)
    assert second["attempts"] == 0  # held back: the stream keeps its order

    await run(platform, at=start + timedelta(minutes=1))
    await run(platform, at=start + timedelta(minutes=2))
    first, second = await of_case(client, where, case_id)
    assert (first["status"], first["attempts"], first["last_status"]) == ("dead", 3, 500)
    assert first["next_attempt_at"] is None
    assert second["status"] == "delivered"  # a dead letter no longer holds its stream
    ids = [r.headers["webhook-id"] for r in mine(receiver, case_id)]
    assert ids == [first["event"]] * 3 + [second["event"]]

    dead = await of_case(client, where, case_id, status="dead")
    assert [d["id"] for d in dead] == [first["id"]]
    replay = f"/api/v1/tenants/{where.commune}/deliveries/{first['id']}/replay"
    replayed = await client.post(replay, headers=where.admin.headers)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)
    await run(platform, at=start + timedelta(minutes=3))
    first, _ = await of_case(client, where, case_id)
    assert first["status"] == "delivered" and first["attempts"] == 1
    assert mine(receiver, case_id)[-1].headers["webhook-id"] == first["event"]

    again = await client.post(replay, headers=where.admin.headers)
    assert again.status_code == 409 and again.json()["code"] == "delivery-not-dead"
    assert again.headers["content-type"] == "application/problem+json"
    audit = await client.get(f"/api/v1/tenants/{where.commune}/audit", params={"limit": "500"},
                             headers=where.admin.headers)
    assert [(a["resource_id"], a["before"]) for a in audit.json()["items"]
            if a["action"] == "delivery.replay"] == [(first["id"],
                                                     {"status": "dead", "attempts": 3})]


async def test_retry_after_redirects_and_slow_receivers(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    patient = replace(OPTIONS, max_attempts=10)
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    case_id = await received_case(client, where)
    start = utcnow()
    later = format_datetime(start + timedelta(minutes=30), usegmt=True)
    receiver.answer(Answer(429, {"Retry-After": "120"}),
                    Answer(503, {"Retry-After": later}),
                    Answer(302, {"Location": receiver.url("/elsewhere")}),
                    Answer(204, delay=1.5))

    await run(platform, at=start, options=patient)
    first = (await of_case(client, where, case_id))[0]
    assert first["last_status"] == 429
    assert datetime.fromisoformat(first["next_attempt_at"]) >= start + timedelta(seconds=120)

    await run(platform, at=start + timedelta(minutes=5), options=patient)
    first = (await of_case(client, where, case_id))[0]
    assert first["last_status"] == 503
    assert datetime.fromisoformat(first["next_attempt_at"]) >= start + timedelta(minutes=29)

    await run(platform, at=start + timedelta(hours=1), options=patient)
    first = (await of_case(client, where, case_id))[0]
    assert (first["last_status"], first["last_error"]) == (302, "redirect (302) not followed")
    assert [r.path for r in mine(receiver, case_id)] == ["/hook"] * 3

    impatient = replace(patient, timeout_seconds=0.3)
    await run(platform, at=start + timedelta(hours=2), options=impatient)
    first = (await of_case(client, where, case_id))[0]
    assert first["status"] == "pending" and first["last_status"] is None
    assert first["last_error"] == "no answer within 0.3 s"
    await run(platform, at=start + timedelta(hours=3), options=patient)
    assert [d["status"] for d in await of_case(client, where, case_id)] == ["delivered"] * 2


async def test_a_private_target_is_refused_unless_the_operator_allows_it(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    case_id = await received_case(client, where)
    strict = deliveries.Options(max_attempts=3, backoff_seconds=1)
    await run(platform, options=strict)
    assert mine(receiver, case_id) == []
    first = (await of_case(client, where, case_id))[0]
    assert first["status"] == "dead" and first["attempts"] == 1
    assert "non-public address (127.0.0.1)" in first["last_error"]


async def test_a_key_rotation_signs_with_both_keys_for_the_overlap(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    old = await secret_for(client, where.province, where.admin.headers)
    new = await secret_for(client, where.province, where.admin.headers, overlap_seconds=600)
    case_id = await received_case(client, where)
    await run(platform)
    arrived = mine(receiver, case_id)
    assert len(arrived[0].headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        assert Webhook(key).verify(arrived[0].body, arrived[0].headers)

    newest = await secret_for(client, where.province, where.admin.headers, overlap_seconds=0)
    moved = await propose(client, where, case_id)
    assert moved.status_code == 200, moved.text
    await run(platform)
    last = mine(receiver, case_id)[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(newest).verify(last.body, last.headers)
    keys = (await client.get(f"/api/v1/tenants/{where.province}/webhook-secrets",
                             headers=where.admin.headers)).json()
    assert [k["expires_at"] is None for k in keys] == [True, False, False]


async def test_bad_input_is_a_problem_naming_the_field(
        client: httpx.AsyncClient, platform: Platform) -> None:
    province, admin = await platform.province_with_admin()
    base = f"/api/v1/tenants/{province}"
    for body, pointer in (({"overlap_seconds": -5}, "/overlap_seconds"),
                          ({"overlap_seconds": 8 * 24 * 3600}, "/overlap_seconds"),
                          ({"overlap": 5}, "/overlap")):
        refused = await client.post(f"{base}/webhook-secrets", json=body, headers=admin.headers)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer]
    keys = await client.get(f"{base}/webhook-secrets", headers=admin.headers)
    assert keys.json() == []  # nothing half-made
    for path, params, status in ((f"/deliveries/{uuid.uuid4()}", {}, 404),
                                 (f"/deliveries/{uuid.uuid4()}/replay", None, 404),
                                 ("/deliveries", {"status": "lost"}, 422),
                                 ("/deliveries", {"cursor": "nope"}, 422)):
        method = "POST" if params is None else "GET"
        answer = await client.request(method, base + path, params=params or {},
                                      headers=admin.headers)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"


async def test_a_dead_workers_lease_runs_out_and_its_late_answer_is_dropped(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver) -> None:
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    case_id = await received_case(client, where)
    db, now = platform.app.state.db, utcnow()
    ours = {d["id"] for d in await of_case(client, where, case_id)}
    taken = await deliveries.claim(db, "doomed", now=now, batch=1000,
                                   lease=timedelta(minutes=5))
    head = next(uuid.UUID(i) for i in ours if uuid.UUID(i) in taken)
    await run(platform, at=now)
    assert mine(receiver, case_id) == []  # leased to a worker that will never answer
    await run(platform, at=now + timedelta(minutes=6))
    assert len(mine(receiver, case_id)) == 2
    late = deliveries.Sent()
    await deliveries.record(db, "doomed", [deliveries.Answer(head, Attempt(False, error="late"))],
                            now=now + timedelta(minutes=7), options=OPTIONS, result=late)
    assert (late.delivered, late.failed, late.dead) == (0, 0, 0)
    assert [d["status"] for d in await of_case(client, where, case_id)] == ["delivered"] * 2


@only_postgresql()
async def test_concurrent_workers_send_each_event_once_in_order_per_case(
        client: httpx.AsyncClient, platform: Platform, receiver: Receiver,
        backend: Backend) -> None:
    """Three workers race over 90 deliveries of 30 cases (three each, to one target)."""
    where = await office(platform, client, hooked(receiver.url()))
    await secret_for(client, where.province, where.admin.headers)
    receiver.answer(*[Answer(204, delay=0.01)] * 90)
    cases = []
    for _ in range(30):
        case_id = await received_case(client, where)
        moved = await propose(client, where, case_id)
        assert moved.status_code == 200, moved.text
        cases.append(case_id)

    db = platform.app.state.db
    runs = await asyncio.gather(*(deliveries.run_once(db, f"w{n}", options=OPTIONS, batch=7)
                                  for n in range(3)))
    assert sum(r.delivered for r in runs) >= 90 and all(r.errors == [] for r in runs)
    assert sum(1 for r in runs if r.delivered) >= 2, "one worker did everything"
    for case_id in cases:
        arrived = mine(receiver, case_id)
        ids = [r.headers["webhook-id"] for r in arrived]
        assert len(ids) == len(set(ids)) == 3
        assert [(body_of(r)["data"]["when"], body_of(r)["data"]["hook_state"])
                for r in arrived] == [("on_leave", "tiep_nhan"), ("on_enter", "xem_xet_ho_so"),
                                      ("on_leave", "xem_xet_ho_so")]
