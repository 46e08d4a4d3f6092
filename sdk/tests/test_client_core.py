"""The SDK's core against the live service: errors as exceptions, pagination, retries with
backoff and ``Retry-After``, one idempotency key per logical create, token caching and early
renewal, and an official's browser sign-in (authorization code + PKCE)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fault_proxy import fault_proxy
from live_service import Service, free_port
from nentang_sdk import (
    AsyncClient,
    AuthenticationError,
    BearerToken,
    Client,
    ClientCredentials,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
    login_with_browser,
)
from nentang_sdk.auth import LoginError
from sdk_helpers import new_code, new_unit

FAST = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.05)
TENANTS = "/api/v1/tenants"


def test_errors_are_typed_exceptions_carrying_the_problem(admin: Client,
                                                          service: Service) -> None:
    with pytest.raises(NotFoundError) as missing:
        admin.tenants.get("KHONGCO")
    assert missing.value.status == 404 and missing.value.code.endswith("not-found")

    with pytest.raises(ValidationError) as invalid:
        admin.tenants.create(code="x y", name="", kind="province", parent=service.root)
    pointers = {e.pointer for e in invalid.value.errors}
    assert {"/code", "/name"} <= pointers, invalid.value.errors
    assert "/code" in str(invalid.value)

    code = new_code("P")
    admin.tenants.create(code=code, name="Tỉnh thử", kind="province", parent=service.root)
    with pytest.raises(ConflictError):
        admin.tenants.create(code=code, name="Tỉnh thử", kind="province", parent=service.root)

    with pytest.raises(AuthenticationError), Client(
            service.base_url, client_id=service.admin_client_id,
            client_secret="wrong") as wrong:
        wrong.tenants.get(service.root)


def test_another_units_client_is_refused_and_nothing_changes(admin: Client,
                                                             service: Service) -> None:
    owner = new_unit(admin, service)
    other = new_unit(admin, service)
    with other.client() as intruder, owner.client() as own:
        before = own.tenants.get(owner.code)
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.tenants.get(owner.code)
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.tenants.update(owner.code, name="Đã bị đổi tên")
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.tenants.create(code=new_code("C"), name="Xã lạ", kind="commune",
                                    parent=owner.code)
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.users.create(owner.code, username="ke_la", display_name="Kẻ lạ")
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.clients.list(owner.code).to_list()
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            intruder.grants.create(owner.code, principal_id=other.client_id, role="tenant_admin")
        assert own.tenants.get(owner.code) == before
        assert own.tenants.children(owner.code).to_list() == []
        assert [u.username for u in own.users.list(owner.code)] == []
        assert [c.client_id for c in own.clients.list(owner.code)] == [owner.client_id]


def test_lists_follow_cursors_across_pages(admin: Client, service: Service) -> None:
    unit = new_unit(admin, service)
    with unit.client() as client:
        codes = {new_code("C") for _ in range(5)}
        for code in codes:
            client.tenants.create(code=code, name=f"Xã {code}", kind="commune", parent=unit.code)
        pager = client.tenants.children(unit.code, limit=2)
        assert [len(p.items) for p in pager.pages()] == [2, 2, 1]
        assert {t.code for t in pager} == codes
        assert len(pager.first_page().items) == 2


async def test_async_client_mirrors_the_sync_one(async_admin: AsyncClient,
                                                 service: Service) -> None:
    code = new_code("P")
    created = await async_admin.tenants.create(code=code, name="Tỉnh async", kind="province",
                                               parent=service.root)
    assert created.code == code
    children = {new_code("C") for _ in range(3)}
    for child in children:
        await async_admin.tenants.create(code=child, name="Xã", kind="commune", parent=code)
    seen = {t.code async for t in async_admin.tenants.children(code, limit=2)}
    assert seen == children
    assert len((await async_admin.tenants.children(code, limit=2).first_page()).items) == 2
    with pytest.raises(NotFoundError):
        await async_admin.tenants.get("KHONGCO")


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(admin: Client,
                                                                 service: Service) -> None:
    """The service creates the unit, the answer is lost on the way back (502): the SDK sends
    the create again with the same key and the service replays its first answer, so exactly
    one unit exists."""
    parent = new_unit(admin, service)
    with fault_proxy(service.base_url) as proxy, parent.client(proxy.url,
                                                                         retries=FAST) as client:
        proxy.fail("POST", TENANTS, status=502, after_forwarding=True)
        code = new_code("C")
        created = client.tenants.create(code=code, name="Xã", kind="commune", parent=parent.code)
        attempts = proxy.requests_to("POST", TENANTS)
    assert created.code == code
    assert [a.answered for a in attempts] == [502, 201]
    keys = {a.headers.get("Idempotency-Key") for a in attempts}
    assert len(keys) == 1 and None not in keys
    with parent.client() as direct:
        assert [t.code for t in direct.tenants.children(parent.code)] == [code]


def test_each_logical_create_gets_its_own_key(admin: Client, service: Service) -> None:
    parent = new_unit(admin, service)
    with fault_proxy(service.base_url) as proxy, parent.client(proxy.url, retries=FAST) as client:
        for _ in range(2):
            client.tenants.create(code=new_code("C"), name="Xã", kind="commune",
                                  parent=parent.code)
        keys = [a.headers.get("Idempotency-Key") for a in proxy.requests_to("POST", TENANTS)]
    assert len(set(keys)) == 2


def test_retry_after_is_honoured_and_reads_retry_on_503_and_408(admin: Client,
                                                                 service: Service) -> None:
    path = f"{TENANTS}/{service.root}"
    with fault_proxy(service.base_url) as proxy, Client(
            proxy.url, client_id=service.admin_client_id,
            client_secret=service.admin_client_secret, retries=FAST) as client:
        client.tenants.get(service.root)  # token fetched before the faults
        proxy.fail("GET", path, status=503, headers={"Retry-After": "1"})
        proxy.fail("GET", path, status=408)
        assert client.tenants.get(service.root).code == service.root
        attempts = proxy.requests_to("GET", path)[1:]
    assert [a.answered for a in attempts] == [503, 408, 200]
    # Retry-After: 1 means at least a second between the first and second attempt.
    assert attempts[1].at - attempts[0].at >= 0.9


def test_plain_posts_are_not_repeated_after_a_server_error(admin: Client,
                                                           service: Service) -> None:
    unit = new_unit(admin, service)
    roles = f"{TENANTS}/{unit.code}/roles"
    with fault_proxy(service.base_url) as proxy, unit.client(proxy.url, retries=FAST) as client:
        proxy.fail("POST", roles, status=503, after_forwarding=True)
        with pytest.raises(ServerError) as failed:
            client.roles.create(unit.code, key="kiem_tra", name="Kiểm tra",
                                permissions=["tenants:read"])
        assert failed.value.status == 503
        assert len(proxy.requests_to("POST", roles)) == 1
        # A 429 means the service did not act, so even a plain POST is sent again.
        proxy.fail("POST", roles, status=429, headers={"Retry-After": "0"})
        client.roles.create(unit.code, key="doc", name="Đọc", permissions=["tenants:read"])
        assert [a.answered for a in proxy.requests_to("POST", roles)][1:] == [429, 201]


def test_retries_give_up_with_the_last_error(admin: Client, service: Service) -> None:
    path = f"{TENANTS}/{service.root}"
    with fault_proxy(service.base_url) as proxy, Client(
            proxy.url, client_id=service.admin_client_id,
            client_secret=service.admin_client_secret, retries=FAST) as client:
        client.tenants.get(service.root)
        proxy.fail("GET", path, status=500, times=10)
        with pytest.raises(ServerError):
            client.tenants.get(service.root)
        assert len(proxy.requests_to("GET", path)) == 1 + 1 + FAST.max_retries
        proxy.faults.clear()
        proxy.fail("GET", path, drop=True)  # connection closed unanswered: a read is repeated
        assert client.tenants.get(service.root).code == service.root
        assert [a.answered for a in proxy.requests_to("GET", path)][-2:] == [None, 200]
    with Client(f"http://127.0.0.1:{free_port()}", token="x", retries=FAST) as nowhere, \
            pytest.raises(TransportError):
        nowhere.platform.health()


def test_the_services_own_rate_limit_is_a_rate_limit_error(admin: Client,
                                                           service: Service) -> None:
    unit = new_unit(admin, service)
    slow = admin.clients.create(unit.code, name="chậm", roles=["api_client"],
                                rate_limit_per_minute=1)
    assert slow.client_secret
    with Client(service.base_url, client_id=slow.client_id, client_secret=slow.client_secret,
                retries=RetryPolicy(max_retries=2, max_wait=1.0)) as client:
        client.tenants.get(unit.code)
        with pytest.raises(RateLimitError) as limited:
            client.tenants.get(unit.code)
    assert limited.value.retry_after is not None and limited.value.retry_after > 1


def test_tokens_are_cached_renewed_early_and_refetched_when_refused(admin: Client,
                                                                    service: Service) -> None:
    now = [1000.0]
    auth = ClientCredentials(client_id=service.admin_client_id,
                             client_secret=service.admin_client_secret, refresh_before=60,
                             clock=lambda: now[0])
    with fault_proxy(service.base_url) as proxy, Client(proxy.url, auth=auth) as client:
        for _ in range(3):
            client.tenants.get(service.root)
        assert len(proxy.requests_to("POST", "/oauth/token")) == 1
        now[0] += 3600 - 61  # the service's tokens live an hour in this run
        client.tenants.get(service.root)
        assert len(proxy.requests_to("POST", "/oauth/token")) == 1
        now[0] += 2  # within a minute of expiry: renewed before it can expire in flight
        client.tenants.get(service.root)
        assert len(proxy.requests_to("POST", "/oauth/token")) == 2
        auth._token = "not-a-token"  # the service refuses it: fetched again, once
        assert client.tenants.get(service.root).code == service.root
        assert len(proxy.requests_to("POST", "/oauth/token")) == 3
    with pytest.raises(AuthenticationError), Client(service.base_url,
                                                    auth=BearerToken("nope")) as bare:
        bare.tenants.get(service.root)


def _browser(base_url: str, tenant: str, username: str, password: str):  # type: ignore[no-untyped-def]
    """What an official does in the browser: open the sign-in page, submit the form, and
    follow the redirect back to the tool."""
    failures: list[BaseException] = []

    def open_browser(url: str) -> None:
        try:
            with httpx.Client(trust_env=False) as browser:
                assert browser.get(url).status_code == 200
                form = dict(parse_qsl(urlsplit(url).query))
                answer = browser.post(f"{base_url}/oauth/authorize", data={
                    **form, "tenant": tenant, "username": username, "password": password,
                    "totp": ""})
                assert answer.status_code == 303, answer.text
                browser.get(answer.headers["location"])
        except BaseException as error:
            failures.append(error)
            raise

    return open_browser, failures


def test_an_official_signs_in_through_the_browser_with_pkce(admin: Client,
                                                            service: Service) -> None:
    unit = new_unit(admin, service)
    password = "Mật-khẩu-rất-dài-2026"
    user = admin.users.create(unit.code, username="can_bo", display_name="Cán bộ",
                              password=password, roles=["officer"])
    opener, failures = _browser(service.base_url, unit.code, "can_bo", password)
    session = login_with_browser(service.base_url, tenant=unit.code, open_browser=opener,
                                 timeout=30)
    assert not failures
    with Client(service.base_url, auth=session) as official:
        me = official.users.me()
        assert str(user.id) in str(me)
        session.invalidate()  # renewed with the rotating refresh token
        assert official.tenants.get(unit.code).code == unit.code
    assert session.refresh_token

    wrong, _ = _browser(service.base_url, unit.code, "can_bo", "sai-mat-khau")

    def refused(url: str) -> None:
        try:
            wrong(url)
        except AssertionError:
            # A wrong password re-renders the form; the official gives up and the tool's
            # redirect receives an error instead.
            asked = dict(parse_qsl(urlsplit(url).query))
            httpx.get(asked["redirect_uri"], trust_env=False,
                      params={"error": "access_denied", "state": asked["state"]})

    with pytest.raises(LoginError, match="access_denied"):
        login_with_browser(service.base_url, open_browser=refused, timeout=30)

    def forged(url: str) -> None:
        asked = dict(parse_qsl(urlsplit(url).query))
        httpx.get(asked["redirect_uri"], trust_env=False,
                  params={"code": "stolen", "state": "someone-elses"})

    with pytest.raises(LoginError, match="state"):
        login_with_browser(service.base_url, open_browser=forged, timeout=30)
