"""Serving data to other platforms: a unit publishes a data service, trusts its gateway's
signed tokens, and answers calls: only with the gateway's token, only to the consumers the
service lists, and with exactly the fields it exposes. The X-Road metaservices describe it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.platform import Platform
from tests.test_cases import Office, act, office, submit

GATEWAY = "https://lgsp.hanoi.gov.vn"
CONSUMER = "VN/GOV/000.00.00.G22/CSDL-DOANH-NGHIEP"
OTHER = "VN/GOV/000.00.00.G99/KHAC"


@pytest.fixture(scope="module")
def gateway_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "lgsp-1"})


def token(key: ECKey, *, client: str = CONSUMER, audience: str = "nentang", expires: int = 300,
          issuer: str = GATEWAY) -> str:
    now = int(time.time())
    return jwt.encode({"alg": "ES256", "kid": key.kid},
                      {"iss": issuer, "aud": audience, "iat": now, "exp": now + expires,
                       "client": client, "jti": str(uuid.uuid4())}, key)


def public(key: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


async def published(client: httpx.AsyncClient, where: Office, key: ECKey,
                    **changes: Any) -> dict[str, Any]:
    trust = await client.put(f"/api/v1/tenants/{where.province}/gateway-trust",
                             headers=where.admin.headers,
                             json={"issuer": GATEWAY, "audience": "nentang", "keys": public(key)})
    assert trust.status_code == 200, trust.text
    made = await client.post(f"/api/v1/tenants/{where.province}/data-services",
                             headers=where.admin.headers, json={
                                 "name": "ho-kinh-doanh", "title": "Hộ kinh doanh đã nộp",
                                 "source": "cases", "form": "ho-kinh-doanh",
                                 "fields": ["ten_ho_kinh_doanh", "loai_chu_the"],
                                 "filters": ["loai_chu_the"], "consumers": [CONSUMER],
                                 **changes})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def bearer(value: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}", **headers}


async def test_an_allowed_consumer_gets_exactly_the_exposed_fields(
        client: httpx.AsyncClient, platform: Platform, gateway_key: ECKey) -> None:
    where = await office(platform, client)
    service = await published(client, where, gateway_key)
    assert service["code"] == "ho-kinh-doanh.v1"
    case_id = (await submit(client, where))["case"]
    await act(client, where, case_id, "tiep_nhan_ho_so", where.officer)

    url = f"/gateway/{where.province}/services/ho-kinh-doanh"
    answer = await client.get(url, headers=bearer(token(gateway_key),
                                                  **{"X-Road-Client": CONSUMER}))
    assert answer.status_code == 200, answer.text
    [record] = answer.json()["items"]
    assert record["id"] == case_id and record["tenant"] == where.commune
    assert record["state"] == "xem_xet_ho_so"
    assert set(record["data"]) == {"ten_ho_kinh_doanh", "loai_chu_the"}

    kind = record["data"]["loai_chu_the"]
    same = await client.get(url, params={"loai_chu_the": kind},
                            headers=bearer(token(gateway_key)))
    assert [r["id"] for r in same.json()["items"]] == [case_id]
    other = await client.get(url, params={"loai_chu_the": "khac"},
                             headers=bearer(token(gateway_key)))
    assert other.json()["items"] == []
    unknown = await client.get(url, params={"chu_ho_ho_ten": "x"},
                               headers=bearer(token(gateway_key)))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["parameter"] == "chu_ho_ho_ten"
    audit = await client.get(f"/api/v1/tenants/{where.province}/audit", params={"limit": "500"},
                             headers=where.admin.headers)
    calls = [a for a in audit.json()["items"] if a["action"] == "data_service.call"]
    assert calls and calls[-1]["actor"] == f"gateway:{CONSUMER}"


async def test_only_the_gateways_token_is_trusted_never_the_headers(
        client: httpx.AsyncClient, platform: Platform, gateway_key: ECKey) -> None:
    where = await office(platform, client)
    await published(client, where, gateway_key)
    url = f"/gateway/{where.province}/services/ho-kinh-doanh"
    stranger = ECKey.generate_key("P-256", parameters={"kid": "lgsp-1"})
    for headers in (
            {"X-Road-Client": CONSUMER},  # the header alone proves nothing
            bearer(token(stranger)),  # signed by someone else with the same kid
            bearer(token(gateway_key, expires=-120)),  # expired
            bearer(token(gateway_key, audience="another-platform")),
            bearer(token(gateway_key, issuer="https://lgsp.other.gov.vn")),
            bearer(token(gateway_key), **{"X-Road-Client": OTHER}),  # header disagrees
            bearer("not-a-token")):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    not_listed = await client.get(url, headers=bearer(token(gateway_key, client=OTHER)))
    assert (not_listed.status_code, not_listed.json()["code"]) == (403, "consumer-not-allowed")


async def test_the_metaservices_describe_what_a_consumer_may_call(
        client: httpx.AsyncClient, platform: Platform, gateway_key: ECKey) -> None:
    where = await office(platform, client)
    await published(client, where, gateway_key)
    await published(client, where, gateway_key, name="so-lieu", title="Số liệu",
                    consumers=[OTHER])
    await published(client, where, gateway_key, fields=["ten_ho_kinh_doanh"], filters=[])
    base = f"/gateway/{where.province}"
    listed = await client.get(f"{base}/listMethods", headers=bearer(token(gateway_key)))
    assert [s["service_code"] for s in listed.json()["service"]] == [
        "ho-kinh-doanh.v2", "so-lieu.v1"]
    allowed = await client.get(f"{base}/allowedMethods", headers=bearer(token(gateway_key)))
    assert [s["service_code"] for s in allowed.json()["service"]] == ["ho-kinh-doanh.v2"]
    document = await client.get(f"{base}/getOpenAPI", params={"serviceCode": "ho-kinh-doanh.v1"},
                                headers=bearer(token(gateway_key)))
    assert document.status_code == 200, document.text
    [(path, item)] = document.json()["paths"].items()
    assert path.endswith("/services/ho-kinh-doanh.v1")
    data = item["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["items"]["items"]["properties"]["data"]
    assert set(data["properties"]) == {"ten_ho_kinh_doanh", "loai_chu_the"}
    assert [p["name"] for p in item["get"]["parameters"]] == ["loai_chu_the", "cursor"]
    not_theirs = await client.get(f"{base}/getOpenAPI", params={"serviceCode": "so-lieu"},
                                  headers=bearer(token(gateway_key)))
    assert not_theirs.status_code == 403
    assert (await client.get(f"{base}/listMethods")).status_code == 401


async def test_one_units_gateway_cannot_reach_another_unit(
        client: httpx.AsyncClient, platform: Platform, gateway_key: ECKey) -> None:
    where = await office(platform, client)
    await published(client, where, gateway_key)
    elsewhere = await office(platform, client)
    other_key = ECKey.generate_key("P-256", parameters={"kid": "lgsp-2"})
    await published(client, elsewhere, other_key)
    # The second province's gateway token, aimed at the first province.
    refused = await client.get(f"/gateway/{where.province}/services/ho-kinh-doanh",
                               headers=bearer(token(other_key)))
    assert refused.status_code == 401
    # A unit below inherits its province's gateway, and sees only its own subtree.
    below = await client.get(f"/gateway/{where.commune}/listMethods",
                             headers=bearer(token(gateway_key)))
    assert below.status_code == 200 and below.json()["service"] == []


async def test_publishing_checks_fields_consumers_and_personal_data(
        client: httpx.AsyncClient, platform: Platform, gateway_key: ECKey) -> None:
    where = await office(platform, client)
    base = f"/api/v1/tenants/{where.province}/data-services"
    good = {"name": "ds", "title": "T", "source": "cases", "form": "ho-kinh-doanh",
            "fields": ["ten_ho_kinh_doanh"], "consumers": [CONSUMER]}
    for change, pointer in (({"form": "khong-co"}, "/form"),
                            ({"fields": ["ten_ho_kinh_doanh", "khong_co"]}, "/fields/1"),
                            ({"filters": ["loai_chu_the"]}, "/filters/0"),
                            ({"consumers": ["VN/GOV"]}, "/consumers/0"),
                            ({"fields": ["chu_ho_ho_ten"]}, "/fields/0")):
        refused = await client.post(base, json={**good, **change}, headers=where.admin.headers)
        assert refused.status_code == 422, (change, refused.text)
        assert [e["pointer"] for e in refused.json()["errors"]] == [pointer]
    assert (await client.get(base, headers=where.admin.headers)).json() == []
    personal = await client.post(base, headers=where.admin.headers, json={
        **good, "fields": ["chu_ho_ho_ten"], "personal_data": "basic"})
    assert personal.status_code == 201, personal.text
    await platform.role_for(where.province, "sharing_admin", ["tenants:read", "tenants:write"],
                            by=where.admin)
    limited = await platform.client_for(where.province, ["sharing_admin"], by=where.admin)
    refused = await client.post(base, headers=limited.headers, json={
        **good, "name": "ds2", "fields": ["chu_ho_ho_ten"], "personal_data": "basic"})
    assert (refused.status_code, refused.json()["code"]) == (403, "personal-data-not-allowed")
    bad_keys = await client.put(f"/api/v1/tenants/{where.province}/gateway-trust",
                                headers=where.admin.headers,
                                json={"issuer": GATEWAY, "audience": "nentang",
                                      "keys": {"keys": [gateway_key.as_dict(private=True)]}})
    assert bad_keys.status_code == 422 and bad_keys.json()["errors"][0]["pointer"] == "/keys"
