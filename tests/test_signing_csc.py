"""Remote signing through the Cloud Signature Consortium API, against a simulator speaking
the protocol over HTTP: the user confirms on their phone (a callback, or the worker's
polling), confirms slowly, refuses, or lets it lapse; callbacks are authenticated and a
duplicate or replayed one changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.signing import steps
from tests.csc_simulator import CALLBACK_SECRET, CLIENT_ID, CLIENT_SECRET, Callback, CscSimulator
from tests.pki import Pki
from tests.platform import Platform
from tests.test_cases import Office, office, read
from tests.test_signing import (
    awaiting_signature,
    configure,
    joserfc_verifies,
    openssl_verifies,
    pki,
    sign_step,
)

__all__ = ["pki"]  # the session's test PKI fixture


@pytest.fixture
def csc() -> Iterator[CscSimulator]:
    with CscSimulator().running() as simulator:
        yield simulator


def remote(pki: Pki, csc: CscSimulator, **config: Any) -> dict[str, Any]:
    return {"provider": "csc", "trust_anchors": [pki.root.pem],
            "signer_match": {"certificate": "UID", "principal": "client_id",
                             "strip_prefixes": ["CCCD:"]},
            "config": {"base_url": csc.url, "client_id": CLIENT_ID,
                       "client_secret": CLIENT_SECRET, "callback_secret": CALLBACK_SECRET,
                       "user_attribute": "client_id", **config}}


async def ready(client: httpx.AsyncClient, platform: Platform, pki: Pki,
                csc: CscSimulator) -> tuple[Office, str]:
    where = await office(platform, client)
    configured = await configure(client, where.province, where.admin, remote(pki, csc))
    assert configured.status_code == 200, configured.text
    csc.enroll(where.reviewer.client_id, pki.person(f"CCCD:{where.reviewer.client_id}"))
    return where, await awaiting_signature(client, where)


async def deliver(client: httpx.AsyncClient, callback: Callback) -> httpx.Response:
    return await client.post(callback.url.removeprefix("http://nentang.test"),
                             content=callback.body, headers=callback.headers)


async def signature_of(client: httpx.AsyncClient, where: Office, case_id: str,
                       signature_id: str) -> dict[str, Any]:
    found = await client.get(where.cases(f"/{case_id}/signatures/{signature_id}"),
                             headers=where.reviewer.headers)
    body: dict[str, Any] = found.json()
    return body


async def test_the_user_confirms_and_the_callback_completes_the_step_once(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator,
        tmp_path: Path) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    pending = await sign_step(client, where, case_id)
    assert pending.status_code == 202, pending.text
    signature = pending.json()
    assert signature["provider"] == "csc" and signature["transaction_id"]
    sign_hash = next(r for p, r in csc.requests if p == "/csc/v2/signatures/signHash")
    assert sign_hash["operationMode"] == "A"
    assert sign_hash["response_uri"] == (
        f"http://nentang.test/callbacks/signing/{where.commune}/{signature['id']}")

    csc.confirm(signature["transaction_id"])
    [callback] = csc.callbacks
    done = await deliver(client, callback)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    case = (await read(client, where, case_id, where.officer)).json()
    assert case["state"]["name"] == "da_cap"
    stored = await signature_of(client, where, case_id, signature["id"])
    assert stored["status"] == "completed" and stored["verification"]["valid"]

    base = where.cases(f"/{case_id}/signatures/{signature['id']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    cms = (await client.get(f"{base}/signature", headers=where.officer.headers)).content
    assert openssl_verifies(tmp_path, document, cms, pki.root.pem)
    assert not openssl_verifies(tmp_path, document.replace(b"01A8012345", b"01A8012346"), cms,
                                pki.root.pem)

    history = (await client.get(where.cases(f"/{case_id}/history"),
                                headers=where.officer.headers)).json()
    again = await deliver(client, callback)  # the service retries: nothing happens twice
    assert (again.status_code, again.json()) == (200, {"status": "completed"})
    assert (await client.get(where.cases(f"/{case_id}/history"),
                             headers=where.officer.headers)).json() == history


async def test_a_slow_confirmation_is_found_by_the_worker_polling(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    csc.confirm_after_polls = 2
    signature = (await sign_step(client, where, case_id)).json()
    db = platform.app.state.db
    for _ in range(2):
        await steps.poll(db)
        assert (await signature_of(client, where, case_id, signature["id"]))["status"] == (
            "pending")
    await steps.poll(db)
    assert (await signature_of(client, where, case_id, signature["id"]))["status"] == (
        "completed")
    assert (await read(client, where, case_id, where.officer)).json()["state"]["name"] == (
        "da_cap")


async def test_a_refusal_or_a_lapse_leaves_the_case_unchanged(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    etag = (await read(client, where, case_id, where.officer)).headers["ETag"]

    refused = (await sign_step(client, where, case_id)).json()
    csc.reject(refused["transaction_id"])
    answer = await deliver(client, csc.callbacks[-1])
    assert answer.json() == {"status": "failed"}
    assert (await signature_of(client, where, case_id, refused["id"]))["failure"]["code"] == (
        "rejected")

    lapsed = (await sign_step(client, where, case_id)).json()
    csc.expire(lapsed["transaction_id"])
    await steps.poll(platform.app.state.db)
    assert (await signature_of(client, where, case_id, lapsed["id"]))["status"] == "expired"
    assert (await read(client, where, case_id, where.officer)).headers["ETag"] == etag


async def test_callbacks_must_prove_where_they_come_from(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    signature = (await sign_step(client, where, case_id)).json()
    csc.confirm(signature["transaction_id"])
    genuine = csc.callbacks[-1]
    payload = json.loads(genuine.body)
    forgeries = [
        Callback(genuine.url, {**genuine.headers, "x-csc-signature": "t=1,v1=00"},
                 genuine.body),
        Callback(genuine.url, {"content-type": "application/json"}, genuine.body),
        Callback(genuine.url, {**genuine.headers, "x-csc-signature": b"t=1,v1=\xe9"},  # type: ignore[dict-item]
                 genuine.body),
        csc.signed_callback(genuine.url, payload, timestamp=int(time.time()) - 3600),
        csc.signed_callback(genuine.url, payload, secret="another-units-callback-secret"),
        csc.signed_callback(genuine.url, {**payload, "responseID": "someone-elses"}),
        Callback(genuine.url, genuine.headers, genuine.body.replace(b"signatures",
                                                                   b"signaturez")),
    ]
    for forged in forgeries:
        refused = await deliver(client, forged)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await signature_of(client, where, case_id, signature["id"]))["status"] == (
            "pending")
    unknown = csc.signed_callback(genuine.url.replace(signature["id"], str(uuid.uuid4())),
                                  payload)
    assert (await deliver(client, unknown)).status_code == 404
    assert (await deliver(client, genuine)).json() == {"status": "completed"}


async def test_an_unreachable_service_changes_nothing(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    down = remote(pki, csc, base_url="http://127.0.0.1:9")
    assert (await configure(client, where.province, where.admin, down)).status_code == 200
    refused = await sign_step(client, where, case_id)
    assert (refused.status_code, refused.json()["code"]) == (502,
                                                             "signing-provider-unavailable")
    listed = await client.get(where.cases(f"/{case_id}/signatures"),
                              headers=where.reviewer.headers)
    assert listed.json() == []
    csc.delay = 1.0
    slow = remote(pki, csc, timeout_seconds=0.2)
    assert (await configure(client, where.province, where.admin, slow)).status_code == 200
    refused = await sign_step(client, where, case_id)
    assert refused.status_code == 502 and "Timeout" in refused.json()["detail"]
    csc.delay = 0.0
    wrong = remote(pki, csc, client_secret="not-the-secret")
    assert (await configure(client, where.province, where.admin, wrong)).status_code == 200
    refused = await sign_step(client, where, case_id)
    assert refused.status_code == 502 and "credentials" in refused.json()["detail"]



async def test_a_remote_service_signs_a_jws_as_well(
        client: httpx.AsyncClient, platform: Platform, pki: Pki, csc: CscSimulator) -> None:
    where, case_id = await ready(client, platform, pki, csc)
    assert (await configure(client, where.province, where.admin,
                            {**remote(pki, csc), "format": "jws"})).status_code == 200
    signature = (await sign_step(client, where, case_id)).json()
    csc.confirm(signature["transaction_id"])
    assert (await deliver(client, csc.callbacks[-1])).json() == {"status": "completed"}
    base = where.cases(f"/{case_id}/signatures/{signature['id']}")
    document = (await client.get(f"{base}/document", headers=where.officer.headers)).content
    token = (await client.get(f"{base}/signature", headers=where.officer.headers)).content
    joserfc_verifies(token, document)
