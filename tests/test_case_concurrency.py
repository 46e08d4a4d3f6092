"""1,000 concurrent, conflicting transitions on the same cases: each case moves exactly once,
every loser is told so (412), and nothing is lost or doubled in the database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select

from app.cases.models import Case, CaseHistory
from tests.conftest import Backend
from tests.platform import Platform
from tests.test_cases import office, submit

CASES = 10
REQUESTS = 1_000
# Two different transitions out of the start state, raced against each other.
ACTIONS = ({"action": "tiep_nhan_ho_so", "body": {}},
           {"action": "yeu_cau_bo_sung",
            "body": {"fields": {"noi_dung_can_bo_sung": "Bản sao giấy tờ"}}})


async def test_conflicting_transitions_move_each_case_once(
        client: httpx.AsyncClient, platform: Platform, backend: Backend) -> None:
    where = await office(platform, client)
    case_ids = [(await submit(client, where))["case"] for _ in range(CASES)]

    async def attempt(index: int) -> tuple[str, str, int]:
        case_id = case_ids[index % CASES]
        choice = ACTIONS[(index // CASES) % len(ACTIONS)]
        response = await client.post(
            where.cases(f"/{case_id}/actions/{choice['action']}"), json=choice["body"],
            headers={**where.officer.headers, "If-Match": f'"{case_id}.1"'})
        return case_id, choice["action"], response.status_code

    results = await asyncio.gather(*(attempt(i) for i in range(REQUESTS)))
    statuses = Counter(status for _case, _action, status in results)
    assert set(statuses) <= {200, 412}, statuses
    winners = {case_id: action for case_id, action, status in results if status == 200}
    assert sorted(winners) == sorted(case_ids), "every case moved exactly once"
    assert statuses[200] == CASES and statuses[412] == REQUESTS - CASES

    engine = backend.superuser_engine()
    try:
        async with engine.connect() as conn:
            ids = [uuid.UUID(c) for c in case_ids]
            rows = (await conn.execute(select(Case.id, Case.state, Case.revision)
                                       .where(Case.id.in_(ids)))).all()
            actions = dict((await conn.execute(
                select(CaseHistory.case_id, func.count())
                .where(CaseHistory.case_id.in_(ids), CaseHistory.kind == "action")
                .group_by(CaseHistory.case_id))).all())
    finally:
        await engine.dispose()
    targets = {"tiep_nhan_ho_so": "xem_xet_ho_so", "yeu_cau_bo_sung": "cho_bo_sung"}
    assert {(str(r.id), r.state, r.revision) for r in rows} == {
        (c, targets[winners[c]], 2) for c in case_ids}
    assert actions == dict.fromkeys(ids, 1)
