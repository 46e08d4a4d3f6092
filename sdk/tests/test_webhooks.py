"""``nentang_sdk.webhooks.verify``: Standard Webhooks signatures checked with the stdlib, cross-
checked against the scheme's reference library (``standardwebhooks``) both ways, and against
real deliveries the live service's worker sends: a workflow hook signed with the unit's key,
through a key rotation (two signatures), and a subscription signed with its own secret."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_service import Service
from nentang_sdk import Client, WebhookVerificationError
from nentang_sdk.webhooks import Event, new_secret, sign, verify
from sdk_helpers import Unit, new_unit
from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as ReferenceError

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the main suite's loopback receiver: tests.webhook_receiver
    sys.path.append(str(ROOT))
from tests.webhook_receiver import Received, Receiver  # noqa: E402

EXAMPLE = ROOT / "sdk" / "examples" / "province_check"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SECRET = new_secret()
HOOK_BODY = (b'{"type":"case.hook.webhook","timestamp":"2026-01-01T00:00:00.123456Z","data":'
             b'{"event":"5b3953b7-cd77-46e0-9702-1a4a041d02fd","tenant":{"id":"0d9c1f3e-2b1a-'
             b'4c6f-8e0a-3b5d7f9a1c2e","code":"HN"},"case":"fa0ebe11-6c03-4881-9b8d-ce843485'
             b'baf0","workflow":"dang-ky-hien-mau","version":1,"state":"tham_dinh","status":'
             b'"open","when":"on_leave","hook_state":"kiem_tra_tu_dong","hook":{"type":"webhook"'
             b',"url":"https://hooks.example/check"}}}')


def reference_headers(secret: str, body: bytes, message_id: str = "msg_1",
                      timestamp: int = NOW) -> dict[str, str]:
    """Headers signed by the reference library."""
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


# ---- against the reference library -----------------------------------------------------------


def test_a_signature_made_by_the_reference_library_verifies() -> None:
    secret = new_secret()
    event = verify(HOOK_BODY, reference_headers(secret, HOOK_BODY), secret, now=NOW)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.tenant) == ("msg_1", "case.hook.webhook", "HN")
    assert event.timestamp == datetime(2026, 1, 1, 0, 0, 0, 123456, UTC)
    assert event.sent_at == datetime.fromtimestamp(NOW, UTC)
    assert event.data["event"] == "5b3953b7-cd77-46e0-9702-1a4a041d02fd"
    assert event.case_id == "fa0ebe11-6c03-4881-9b8d-ce843485baf0"
    assert (event.when, event.hook_state, event.state) == ("on_leave", "kiem_tra_tu_dong",
                                                           "tham_dinh")
    assert event.is_hook and event.subscription is None and event.workflow == "dang-ky-hien-mau"


def test_the_reference_library_verifies_what_sign_makes() -> None:
    old, new = new_secret(), new_secret()
    headers = sign(HOOK_BODY, [new, old], message_id="msg_2")
    for secret in (old, new):
        assert Webhook(secret).verify(HOOK_BODY, headers)["type"] == "case.hook.webhook"
    with pytest.raises(ReferenceError):
        Webhook(new_secret()).verify(HOOK_BODY, headers)


def test_a_rotation_passes_with_either_key_and_with_both_configured() -> None:
    old, new = new_secret(), new_secret()
    headers = reference_headers(new, HOOK_BODY)
    headers["webhook-signature"] += " " + reference_headers(old, HOOK_BODY)["webhook-signature"]
    for secrets in (old, new, [old, new], [new_secret(), old]):
        assert verify(HOOK_BODY, headers, secrets, now=NOW).id == "msg_1"
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(HOOK_BODY, headers, [new_secret(), new_secret()], now=NOW)


def test_secrets_and_bodies_in_any_accepted_form() -> None:
    secret = new_secret()
    headers = {k.title(): v for k, v in reference_headers(secret, HOOK_BODY).items()}
    assert verify(HOOK_BODY.decode(), headers, secret, now=NOW).tenant == "HN"  # str body
    unpadded = secret.rstrip("=")
    assert verify(bytearray(HOOK_BODY), headers, unpadded, now=NOW).type == "case.hook.webhook"
    assert verify(HOOK_BODY, headers, secret.removeprefix("whsec_"), now=NOW)
    for malformed in ("whsec_not base64!", "whsec_", ""):
        with pytest.raises(ValueError, match="secret"):
            verify(HOOK_BODY, headers, malformed, now=NOW)
    with pytest.raises(ValueError, match="at least one"):
        verify(HOOK_BODY, headers, [], now=NOW)


# ---- refusals ------------------------------------------------------------------------------------


Change = Callable[[bytes, dict[str, str], int], tuple[bytes, dict[str, str]]]


def _without(name: str) -> Change:
    return lambda b, h, t: (b, {k: v for k, v in h.items() if k != name})


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param(lambda b, h, t: (b.replace(b'"HN"', b'"HP"'), h), "no signature matches",
                 id="tampered-body"),
    pytest.param(lambda b, h, t: (b + b" ", h), "no signature matches", id="appended-byte"),
    pytest.param(lambda b, h, t: (b, {**h, "webhook-id": "msg_other"}), "no signature matches",
                 id="other-id"),
    pytest.param(lambda b, h, t: (b, {**h, **sign(b, SECRET, message_id="msg_1",
                                                   timestamp=t - 301)}), "301 s old",
                 id="stale"),
    pytest.param(lambda b, h, t: (b, {**h, **sign(b, SECRET, message_id="msg_1",
                                                   timestamp=t + 301)}), "in the future",
                 id="future"),
    pytest.param(lambda b, h, t: (b, {**h, "webhook-timestamp": "2026-01-01T00:00:00Z"}),
                 "Unix seconds", id="iso-timestamp"),
    pytest.param(lambda b, h, t: (b, {**h, "webhook-signature": "v1a,AAAA"}),
                 "no v1 signature", id="other-scheme"),
    pytest.param(lambda b, h, t: (b, {**h, "webhook-signature": "v1,AAAA"}),
                 "no signature matches", id="wrong-signature"),
    pytest.param(_without("webhook-id"), "webhook-id", id="no-id"),
    pytest.param(_without("webhook-timestamp"), "webhook-timestamp", id="no-timestamp"),
    pytest.param(_without("webhook-signature"), "webhook-signature", id="no-signature"),
    pytest.param(lambda b, h, t: (b, {**h, "webhook-signature": ""}), "missing header",
                 id="empty-signature"),
    pytest.param(lambda b, h, t: (b, {}), "webhook-id, webhook-timestamp, webhook-signature",
                 id="no-headers"),
])
def test_what_is_refused_and_why(change: Change, reason: str) -> None:
    """Each refusal says why; the reference library (on the real clock) refuses it too."""
    stamp = int(time.time())
    body, headers = change(HOOK_BODY, reference_headers(SECRET, HOOK_BODY, timestamp=stamp),
                           stamp)
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(body, headers, SECRET, now=stamp)
    with pytest.raises(ReferenceError):
        Webhook(SECRET).verify(body, headers)


def test_a_fractional_timestamp_is_refused_though_the_reference_library_floors_it() -> None:
    """The scheme says integer seconds; the reference library reads a float and signs its
    floor, so it accepts ``<t>.5`` signed as ``<t>``. We are strict: the header is signed
    verbatim and must be digits."""
    stamp = int(time.time())
    headers = {**reference_headers(SECRET, HOOK_BODY, timestamp=stamp),
               "webhook-timestamp": f"{stamp}.5"}
    assert Webhook(SECRET).verify(HOOK_BODY, headers)
    with pytest.raises(WebhookVerificationError, match="Unix seconds"):
        verify(HOOK_BODY, headers, SECRET, now=stamp)


def test_the_wrong_secret_and_the_tolerance_window() -> None:
    secret = new_secret()
    headers = reference_headers(secret, HOOK_BODY)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(HOOK_BODY, headers, new_secret(), now=NOW)
    for now in (NOW - 300, NOW + 300):  # the window is inclusive, both ways
        assert verify(HOOK_BODY, headers, secret, now=now)
    assert verify(HOOK_BODY, headers, secret, now=NOW + 3000, tolerance=3600)
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify(HOOK_BODY, headers, secret, now=NOW - 61, tolerance=60)
    with pytest.raises(WebhookVerificationError, match="old"):  # the real clock: long ago
        verify(HOOK_BODY, headers, secret)


def test_a_signed_body_that_is_not_a_json_object_is_refused() -> None:
    secret = new_secret()
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(WebhookVerificationError, match="JSON"):
            verify(body, reference_headers(secret, body), secret, now=NOW)


# ---- real deliveries from the live service ---------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def api(admin: Client, unit: Unit) -> httpx.Client:
    """Plain HTTP as the unit's administrator, for what the SDK does not wrap yet (webhook
    keys, forms, workflows, submissions)."""
    token = admin.oauth.token(client_id=unit.client_id, client_secret=unit.client_secret)
    return httpx.Client(base_url=unit.base_url, trust_env=False, timeout=30.0,
                        headers={"Authorization": f"Bearer {token.access_token}"})


def ok(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def workflow(url: str) -> dict[str, Any]:
    """The example's form, in a two-step workflow that tells ``url`` when a case enters its
    start state and leaves it."""
    text = {"vi": "Bước", "en": "Step"}
    return {
        "kind": "Workflow", "key": "dang-ky-hien-mau", "title": text, "form": "dang-ky-hien-mau",
        "states": [
            {"name": "tiep_nhan", "type": "start", "title": text,
             "on_enter": [{"type": "webhook", "url": url}],
             "on_leave": [{"type": "webhook", "url": url}]},
            {"name": "xu_ly", "type": "task", "title": text},
            {"name": "xong", "type": "terminal", "title": text, "outcome": "completed"}],
        "actions": [
            {"name": "nhan", "title": text, "from": "tiep_nhan", "to": "xu_ly",
             "roles": ["tenant_admin"]},
            {"name": "ket_thuc", "title": text, "from": "xu_ly", "to": "xong",
             "roles": ["tenant_admin"]}],
    }


def wait_for(receiver: Receiver, count: int, timeout: float = 30.0) -> list[Received]:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"{len(receiver.received)} of {count} arrived"
        time.sleep(0.1)
    return list(receiver.received)


def test_real_deliveries_verify_with_the_units_key_and_the_subscriptions_secret(
        admin: Client, service: Service, receiver: Receiver) -> None:
    unit = new_unit(admin, service)
    base = f"/api/v1/tenants/{unit.code}"
    own = new_secret()
    form = json.loads((EXAMPLE / "form.json").read_text(encoding="utf-8"))
    with api(admin, unit) as http:
        ok(http.post(f"{base}/forms", json=form), 201)
        ok(http.post(f"{base}/forms/dang-ky-hien-mau/versions/1/publish"), 200)
        ok(http.post(f"{base}/workflows", json=workflow(receiver.url("/hook"))), 201)
        ok(http.post(f"{base}/workflows/dang-ky-hien-mau/versions/1/publish"), 200)
        key = ok(http.post(f"{base}/webhook-secrets"), 201)["secret"]
        ok(http.post(f"{base}/subscriptions", json={
            "name": "ho-so-mo", "transport": "webhook",
            "events": ["case.opened", "case.hook.webhook"],
            "target": {"url": receiver.url("/sub"), "secret": own}, "fields": ["ho_ten"],
            "personal_data": "basic"}), 201)
        data = {"ho_ten": "Nguyễn Văn An", "ngay_sinh": "1990-05-17", "so_cccd": "001090012345"}
        case_id = ok(http.post(f"{base}/submissions",
                               json={"form": "dang-ky-hien-mau", "data": data}), 201)["case"]

        with service.worker():
            first = wait_for(receiver, 3)
            hook = next(r for r in first if r.path == "/hook")
            copied, subscribed = sorted((r for r in first if r.path == "/sub"),
                                        key=lambda r: json.loads(r.body)["type"])

            opened = verify(hook.body, hook.headers, key)
            assert opened.id == hook.headers["webhook-id"] == opened.data["event"]
            assert (opened.type, opened.tenant, opened.case_id) == (
                "case.hook.webhook", unit.code, case_id)
            assert (opened.when, opened.hook_state, opened.state) == (
                "on_enter", "tiep_nhan", "tiep_nhan")
            assert opened.subscription is None and opened.workflow == "dang-ky-hien-mau"
            assert abs(opened.sent_at.timestamp() - time.time()) < 60
            assert opened.timestamp <= opened.sent_at
            text = hook.body.decode()
            assert not [v for v in data.values() if v in text]  # no case data in a hook
            with pytest.raises(WebhookVerificationError):  # not with the subscription's
                verify(hook.body, hook.headers, own)
            assert Webhook(key).verify(hook.body, hook.headers)["data"]["case"] == case_id

            event = verify(subscribed.body, subscribed.headers, own)
            assert (event.type, event.subscription, event.tenant, event.case_id) == (
                "case.opened", "ho-so-mo", unit.code, case_id)
            assert event.state == "tiep_nhan" and event.data == {"ho_ten": "Nguyễn Văn An"}
            assert event.id != opened.id and event.when is None and not event.is_hook
            with pytest.raises(WebhookVerificationError):
                verify(subscribed.body, subscribed.headers, key)

            # The subscription also gets a copy of the hook's event, in its own shape, with
            # the same id (and the case-data fields it asked for).
            copy = verify(copied.body, copied.headers, own)
            assert (copy.id, copy.type, copy.subscription, copy.case_id) == (
                opened.id, "case.hook.webhook", "ho-so-mo", case_id)
            assert (copy.when, copy.hook_state, copy.state, copy.tenant) == (
                "on_enter", "tiep_nhan", "tiep_nhan", unit.code)
            assert copy.data == {"ho_ten": "Nguyễn Văn An"} and copy.is_hook

            # A rotation: the old key signs on for the overlap, so the next delivery carries
            # two signatures, and a receiver holding either key accepts it.
            rotated = ok(http.post(f"{base}/webhook-secrets", json={"overlap_seconds": 600}),
                         201)["secret"]
            case = ok(http.get(f"{base}/cases/{case_id}"), 200)
            ok(http.post(f"{base}/cases/{case_id}/actions/nhan", json={},
                         headers={"If-Match": case["etag"]}), 200)
            [left] = [r for r in wait_for(receiver, 5)[3:] if r.path == "/hook"]
        assert len(left.headers["webhook-signature"].split()) == 2
        for secrets in (key, rotated, [rotated, key]):
            moved = verify(left.body, left.headers, secrets)
            assert (moved.when, moved.hook_state, moved.state) == ("on_leave", "tiep_nhan",
                                                                   "xu_ly")
        with pytest.raises(WebhookVerificationError, match="no signature matches"):
            verify(left.body, left.headers, own)
        sent = int(left.headers["webhook-timestamp"])
        with pytest.raises(WebhookVerificationError, match="old"):  # replayed too late
            verify(left.body, left.headers, key, now=sent + 301)
        with pytest.raises(WebhookVerificationError, match="no signature matches"):
            verify(left.body.replace(b"xu_ly", b"xong_"), left.headers, key, now=sent)
