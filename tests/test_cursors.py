"""A cursor is the service's own: a forged one whose time is not an ISO 8601 moment with an
offset is refused with 422 ``invalid-cursor`` on every keyset-paged list, never a 500."""

from __future__ import annotations

import base64
import json
import uuid

import httpx

from tests.platform import Platform
from tests.test_cases import office, submit


def forged(moment: str) -> str:
    raw = json.dumps([moment, str(uuid.uuid4())]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_forged_cursors_are_refused_on_every_keyset_list(
        client: httpx.AsyncClient, platform: Platform) -> None:
    where = await office(platform, client)
    await submit(client, where)
    lists = ((where.cases(), where.officer), ("/api/v1/me/tasks", where.officer),
             (f"/api/v1/tenants/{where.province}/deliveries", where.admin),
             (f"/api/v1/tenants/{where.commune}/submissions", where.officer))
    for url, who in lists:
        for moment in ("not-a-date", "2026-12-07T08:00:00", "2026-13-45T00:00:00+00:00"):
            refused = await client.get(url, params={"cursor": forged(moment)},
                                       headers=who.headers)
            assert refused.status_code == 422, (url, moment, refused.text)
            assert refused.json()["code"] == "invalid-cursor"
        # The service's own cursors still work.
        first = await client.get(url, params={"limit": "1"}, headers=who.headers)
        assert first.status_code == 200, first.text
        following = first.json()["next_cursor"]
        if following:
            assert (await client.get(url, params={"limit": "1", "cursor": following},
                                     headers=who.headers)).status_code == 200
