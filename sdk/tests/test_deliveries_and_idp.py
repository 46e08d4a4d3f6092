"""Contract tests of ``client.subscriptions``, ``client.deliveries``,
``client.webhook_secrets`` and ``client.identity_providers`` against the real service
(SQLite and PostgreSQL): a subscription sends case events to a webhook receiver on loopback
through the real worker (``nentang worker``), signed with the unit's rotated key; a delivery
the receiver refuses for good goes dead, is inspected and replayed; a unit's identity
provider is set, inherited and removed; and another unit reaches none of it."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from live_service import Service
from nentang_sdk import (
    AsyncClient,
    Client,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from nentang_sdk.models import Delivery
from sdk_helpers import Unit, client_in, new_unit
from standardwebhooks import Webhook
from test_signing_and_sharing import office, submit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the main suite's helpers are the `tests` package
    sys.path.append(str(ROOT))

from tests.webhook_receiver import Answer, Receiver  # noqa: E402

T = TypeVar("T")
WAIT_SECONDS = 30.0


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll ``probe`` until it gives something (the worker runs in its own process)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {WAIT_SECONDS:g} s")
        time.sleep(0.1)


async def settled(client: AsyncClient, tenant: str, delivery_id: uuid.UUID,
                  status: str) -> Delivery:
    """The delivery once the worker has brought it to ``status``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (found := await client.deliveries.get(tenant, delivery_id)).status != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery still {found.status} after {WAIT_SECONDS:g} s")
        await asyncio.sleep(0.1)
    return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def of_case(client: Client, tenant: str, case_id: uuid.UUID,
            status: str | None = None) -> list[Delivery]:
    """The case's deliveries, as the unit's admin lists them (every page, two by two)."""
    return [d for d in client.deliveries.list(tenant, status=status, limit=2)
            if d.case == case_id]


# ---- subscriptions, deliveries, webhook keys --------------------------------------------------


def test_a_subscription_delivers_through_the_worker_and_a_dead_delivery_is_replayed(
        admin: Client, service: Service, receiver: Receiver) -> None:
    where = office(admin, service)
    code = where.province.code
    with where.province.client() as p:
        assert p.webhook_secrets.list(code) == []
        first = p.webhook_secrets.rotate(code)
        assert first.secret.startswith("whsec_") and first.expires_at is None
        key = p.webhook_secrets.rotate(code, overlap_seconds=0)
        assert key.secret.startswith("whsec_") and key.secret != first.secret
        keys = p.webhook_secrets.list(code)
        assert [k.id for k in keys] == [key.id, first.id]
        assert keys[0].expires_at is None and keys[1].expires_at is not None
        assert all("secret" not in k.model_dump() for k in keys)  # never their values

        with pytest.raises(ValidationError):
            p.subscriptions.create(code, name="Sai Ten", transport="webhook",
                                   target={"url": receiver.url()}, events=["case.opened"])
        made = p.subscriptions.create(code, name="hook", transport="webhook",
                                      target={"url": receiver.url("/old")},
                                      events=["case.action_taken"])
        assert (made.name, made.transport, made.events, made.fields_, made.personal_data,
                made.active) == ("hook", "webhook", ["case.action_taken"], [], "none", True)
        replaced = p.subscriptions.replace(
            code, made.id, name="hook", transport="webhook",
            target={"url": receiver.url()}, events=["case.opened"],
            fields=["ten_ho_kinh_doanh", "chu_ho_ho_ten"], personal_data="none", active=True)
        assert replaced.id == made.id and replaced.events == ["case.opened"]
        assert replaced.target == {"url": receiver.url()}
        assert replaced.fields_ == ["ten_ho_kinh_doanh", "chu_ho_ho_ten"]
        assert p.subscriptions.get(code, made.id) == replaced
        assert p.subscriptions.list(code) == [replaced]

    # The receiver turns the first event away for good (410): the delivery goes dead.
    receiver.answer(Answer(410))
    case_id = submit(where)
    with where.province.client() as p:
        [queued] = of_case(p, code, case_id)
        assert (queued.status, queued.topic, queued.kind, queued.attempts) == (
            "pending", "case.opened", "webhook", 0)
        assert queued.payload is None  # only a single read carries the event
        read = p.deliveries.get(code, queued.id)
        assert read.payload is not None and read.tenant == where.commune
        assert p.deliveries.attempts(code, queued.id) == []
        with pytest.raises(ConflictError) as not_dead:
            p.deliveries.replay(code, queued.id)
        assert not_dead.value.code == "delivery-not-dead"

        with service.worker():
            dead = eventually(lambda: (d if (d := p.deliveries.get(code, queued.id)).status
                                       == "dead" else None), "dead delivery")
            assert (dead.attempts, dead.last_status) == (1, 410)
            assert [d.id for d in of_case(p, code, case_id, status="dead")] == [queued.id]
            [refused] = p.deliveries.attempts(code, queued.id)
            assert (refused.status, refused.outcome, refused.service) == (
                410, "dead", receiver.url())

            # Replayed where it was made (the province may too: see the test below).
            replayed = p.deliveries.replay(where.commune, queued.id)
            assert (replayed.id, replayed.status, replayed.attempts) == (
                queued.id, "pending", 0)
            delivered = eventually(lambda: (d if (d := p.deliveries.get(
                code, queued.id)).status == "delivered" else None), "delivered delivery")
        assert delivered.delivered_at is not None and delivered.last_status == 204
        attempts = p.deliveries.attempts(code, queued.id)
        assert [(a.status, a.outcome) for a in attempts] == [(410, "dead"), (204, "delivered")]
        assert of_case(p, code, case_id, status="dead") == []
        assert [d.id for d in of_case(p, code, case_id, status="delivered")] == [queued.id]

    # Both attempts carried the same event, signed with the unit's newest key; the
    # subscription's fields only, no personal data.
    arrivals = [r for r in receiver.received if r.path == "/hook"]
    assert len(arrivals) == 2 and len({r.headers["webhook-id"] for r in arrivals}) == 1
    event = Webhook(key.secret).verify(arrivals[-1].body, arrivals[-1].headers)
    assert event["type"] == "case.opened"
    assert str(case_id) in arrivals[-1].body.decode()
    assert "chu_ho_ho_ten" not in arrivals[-1].body.decode()

    with where.province.client() as p:
        assert p.subscriptions.delete(code, made.id) is None
        with pytest.raises(NotFoundError):
            p.subscriptions.get(code, made.id)
        assert p.subscriptions.list(code) == []
        with pytest.raises(NotFoundError):
            p.subscriptions.delete(code, made.id)


async def test_deleting_a_subscription_kills_its_pending_deliveries(
        admin: Client, service: Service, receiver: Receiver) -> None:
    where = office(admin, service)
    code = where.province.code
    async with where.province.async_client() as p:
        made = await p.subscriptions.create(code, name="hook", transport="webhook",
                                            target={"url": receiver.url()},
                                            events=["case.*"])
        case_id = submit(where)
        async with where.officer.async_client() as officer:
            await officer.cases.act(where.commune, case_id, "tiep_nhan_ho_so")
        pending = [d async for d in p.deliveries.list(code, status="pending", limit=1)
                   if d.case == case_id]
        assert {d.topic for d in pending} >= {"case.opened", "case.action_taken"}
        assert all(d.status == "pending" for d in pending)
        page = await p.deliveries.list(code, limit=1).first_page()
        assert len(page.items) == 1 and page.next_cursor is not None
        assert page.items[0].id == pending[0].id  # newest first
        pages = [x async for x in p.deliveries.list(code, limit=1).pages(page.next_cursor)]
        assert [x.items[0].id for x in pages] == [d.id for d in pending[1:]]
        assert pages[-1].next_cursor is None

        # Deleted before the worker came by: its deliveries go dead, not out.
        await p.subscriptions.delete(code, made.id)
        with service.worker():
            for delivery in pending:
                dead = await settled(p, code, delivery.id, "dead")
                assert dead.last_error and "deleted" in dead.last_error
        assert [d.id for d in await p.deliveries.list(code, status="dead").to_list()
                if d.case == case_id] == [d.id for d in pending]
        assert receiver.received == []
        assert [s.id for s in await p.webhook_secrets.list(code)] == []
        assert (await p.webhook_secrets.rotate(code, overlap_seconds=60)).secret


def test_an_ancestor_replays_a_dead_delivery_of_a_unit_below(
        admin: Client, service: Service, receiver: Receiver) -> None:
    where = office(admin, service)
    code = where.province.code
    with where.province.client() as p:
        made = p.subscriptions.create(code, name="hook", transport="webhook",
                                      target={"url": receiver.url()}, events=["case.opened"])
        case_id = submit(where)
        p.subscriptions.delete(code, made.id)
        [queued] = of_case(p, code, case_id)
        with service.worker():
            dead = eventually(lambda: (d if (d := p.deliveries.get(code, queued.id)).status
                                       == "dead" else None), "dead delivery")
        assert dead.tenant == where.commune
        replayed = p.deliveries.replay(code, dead.id)
        assert (replayed.status, replayed.attempts) == ("pending", 0)
        trail = [r for r in p.audit.list(where.commune) if r.action == "delivery.replay"]
        assert [(r.resource_id, r.tenant) for r in trail] == [(str(dead.id), where.commune)]


def test_another_unit_reaches_no_subscription_delivery_or_key(
        admin: Client, service: Service, receiver: Receiver) -> None:
    where = office(admin, service)
    code = where.province.code
    with where.province.client() as p:
        p.webhook_secrets.rotate(code)
        made = p.subscriptions.create(code, name="hook", transport="webhook",
                                      target={"url": receiver.url()}, events=["case.opened"])
        case_id = submit(where)
        [delivery] = of_case(p, code, case_id)
        before = (p.subscriptions.list(code), p.webhook_secrets.list(code),
                  p.deliveries.get(code, delivery.id))

    other = outsider_with_own_subscription(admin, service, receiver)
    with other.client() as o:
        attempts: list[Callable[[], object]] = [
            lambda: o.subscriptions.list(code), lambda: o.subscriptions.get(code, made.id),
            lambda: o.subscriptions.replace(code, made.id, name="hook", transport="webhook",
                                            target={"url": receiver.url("/stolen")},
                                            events=["*"]),
            lambda: o.subscriptions.delete(code, made.id),
            lambda: o.subscriptions.create(code, name="spy", transport="webhook",
                                           target={"url": receiver.url("/spy")},
                                           events=["*"]),
            lambda: o.webhook_secrets.list(code), lambda: o.webhook_secrets.rotate(code),
            lambda: o.deliveries.list(code).to_list(),
            lambda: o.deliveries.get(code, delivery.id),
            lambda: o.deliveries.attempts(code, delivery.id),
            lambda: o.deliveries.replay(code, delivery.id),
            # Through its own unit, the ids name nothing.
            lambda: o.subscriptions.get(other.code, made.id),
            lambda: o.subscriptions.delete(other.code, made.id),
            lambda: o.deliveries.get(other.code, delivery.id),
            lambda: o.deliveries.attempts(other.code, delivery.id),
            lambda: o.deliveries.replay(other.code, delivery.id)]
        for attempt in attempts:
            with pytest.raises(NotFoundError):
                attempt()
        assert [d.case for d in o.deliveries.list(other.code)] == []

    # The commune's officer manages none of it in its own commune.
    with where.officer.client() as officer:
        with pytest.raises(PermissionDeniedError):
            officer.deliveries.list(where.commune).to_list()

        with pytest.raises(PermissionDeniedError):
            officer.subscriptions.create(where.commune, name="x", transport="webhook",
                                         target={"url": receiver.url()}, events=["*"])
        with pytest.raises(PermissionDeniedError):
            officer.webhook_secrets.rotate(where.commune)

    with where.province.client() as p:
        assert (p.subscriptions.list(code), p.webhook_secrets.list(code),
                p.deliveries.get(code, delivery.id)) == before


def outsider_with_own_subscription(admin: Client, service: Service, receiver: Receiver) -> Unit:
    other = new_unit(admin, service, kind="province")
    with other.client() as o:
        mine = o.subscriptions.create(other.code, name="hook", transport="webhook",
                                      target={"url": receiver.url("/other")},
                                      events=["case.opened"])
        assert [s.id for s in o.subscriptions.list(other.code)] == [mine.id]
    return other


# ---- identity providers ----------------------------------------------------------------------

ISSUER = "https://id.example.gov.vn"


def test_an_identity_provider_is_set_inherited_and_removed(admin: Client,
                                                          service: Service) -> None:
    province = new_unit(admin, service, kind="province")
    commune = new_unit(admin, service, kind="commune", parent=province.code)
    with province.client() as p:
        with pytest.raises(NotFoundError):
            p.identity_providers.get(province.code)
        with pytest.raises(ValidationError) as no_secret:
            p.identity_providers.replace(province.code, display_name="VNeID",
                                         issuer=ISSUER, client_id="nentang")
        assert [e.pointer for e in no_secret.value.errors] == ["/client_secret"]
        with pytest.raises(ValidationError):
            p.identity_providers.replace(province.code, display_name="VNeID", issuer=ISSUER,
                                         client_id="nentang", client_secret="bi-mat",
                                         scopes="profile")

        made = p.identity_providers.replace(
            province.code, display_name="VNeID", issuer=ISSUER, client_id="nentang",
            client_secret="bi-mat", scopes="openid profile email", match_claim="citizen_id",
            jit_enabled=True, jit_roles=["officer"])
        assert (made.tenant, made.inherited, made.issuer, made.client_id, made.scopes,
                made.match_claim, made.jit_enabled, made.jit_roles, made.has_client_secret) == (
            province.code, False, ISSUER, "nentang", "openid profile email", "citizen_id",
            True, ["officer"], True)
        assert made.redirect_uri.startswith(service.base_url)
        assert "bi-mat" not in made.model_dump_json()
        assert p.identity_providers.get(province.code) == made

        # Left out, the secret is kept; the rest is replaced (defaults where left out).
        renamed = p.identity_providers.replace(province.code, display_name="Định danh",
                                               issuer=ISSUER, client_id="nentang-2")
        assert renamed.id == made.id and renamed.has_client_secret
        assert (renamed.display_name, renamed.client_id, renamed.scopes, renamed.match_claim,
                renamed.jit_enabled, renamed.jit_roles) == (
            "Định danh", "nentang-2", "openid profile", "sub", False, [])

    with commune.client() as c:
        inherited = c.identity_providers.get(commune.code)
        # The province is above the commune's client: not named to it.
        assert (inherited.id, inherited.inherited, inherited.tenant) == (made.id, True, None)
        with pytest.raises(PermissionDeniedError) as read_only:
            c.identity_providers.delete(commune.code)
        assert read_only.value.code == "inherited-read-only"

    with province.client() as p:
        assert p.identity_providers.delete(province.code) is None
        with pytest.raises(NotFoundError):
            p.identity_providers.get(province.code)
        with pytest.raises(NotFoundError):
            p.identity_providers.delete(province.code)
    with commune.client() as c, pytest.raises(NotFoundError):
        c.identity_providers.get(commune.code)


async def test_another_unit_cannot_read_or_change_an_identity_provider(
        admin: Client, service: Service) -> None:
    province = new_unit(admin, service, kind="province")
    async with province.async_client() as p:
        made = await p.identity_providers.replace(
            province.code, display_name="VNeID", issuer=ISSUER, client_id="nentang",
            client_secret="bi-mat")
    other = new_unit(admin, service, kind="province")
    reader = client_in(admin, service, province.code, ["auditor"])
    async with other.async_client() as o:
        with pytest.raises(NotFoundError):
            await o.identity_providers.get(province.code)
        with pytest.raises(NotFoundError):
            await o.identity_providers.replace(province.code, display_name="Giả mạo",
                                               issuer="https://evil.example",
                                               client_id="x", client_secret="y")
        with pytest.raises(NotFoundError):
            await o.identity_providers.delete(province.code)
        with pytest.raises(NotFoundError):  # the other unit has none of its own
            await o.identity_providers.get(other.code)
    async with reader.async_client() as r:  # may read it, not change it
        assert await r.identity_providers.get(province.code) == made
        with pytest.raises(PermissionDeniedError):
            await r.identity_providers.delete(province.code)
    async with province.async_client() as p:
        assert await p.identity_providers.get(province.code) == made
