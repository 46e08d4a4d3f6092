"""Cross-tenant cases for a tenant's working calendar (see tests/isolation.py).

The victims declare no calendar of their own; the owner's control run makes one with the PUT
case before its GET and DELETE cases run (POST/PUT first, DELETE last)."""

from __future__ import annotations

import httpx

from tests.isolation import Attack, World, isolation_case

PATH = "/api/v1/tenants/{tenant}/calendar"


@isolation_case("PUT", PATH)
def replace_calendar(world: World, victim: str) -> Attack:
    """A valid declaration: the owner's own request succeeds with it."""
    return Attack("PUT", PATH.format(tenant=victim), json={
        "weekend": [6, 7],
        "holidays": [{"date": "2036-09-02", "name": "Quốc khánh"}],
        "working_days": [{"date": "2036-09-06", "name": "Làm bù"}]})


@isolation_case("GET", PATH)
def read_calendar(world: World, victim: str) -> Attack:
    return Attack("GET", PATH.format(tenant=victim), params={"year": "2036"})


def _refused_before_lookup(response: httpx.Response, victim: str) -> None:
    """The victim has no calendar yet: a 404 saying so would mean the request got past the
    authorisation check, so only the check's own refusals count."""
    assert response.status_code in (403, 404), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] != "calendar-not-found", response.text


@isolation_case("DELETE", PATH)
def delete_calendar(world: World, victim: str) -> Attack:
    return Attack("DELETE", PATH.format(tenant=victim), check=_refused_before_lookup)
