"""Cases through the SDK: conditional actions carry the ETag by themselves and a stale copy
is refused with ``CaseChangedError``; claiming, releasing, assigning, history, the inbox and
delegations; and another unit's client can do none of it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from live_service import Service
from nentang_sdk import AsyncClient, CaseChangedError, Client, NotFoundError, PermissionDeniedError
from nentang_sdk.models import Case
from sdk_helpers import Unit, client_in, new_unit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import demo_process

APPLICANT = {"ho_ten": "Trần Thị Bình", "ngay_sinh": "1991-03-04",
             "so_dinh_danh": "001191000123", "dia_chi": "Phường Hoàn Kiếm, Hà Nội"}


@dataclass
class Office:
    unit: Unit
    portal: Unit
    officer: Unit
    colleague: Unit


def office(admin: Client, service: Service) -> Office:
    unit = new_unit(admin, service)
    with unit.client() as owner:
        demo_process.publish(owner, unit.code)
    return Office(unit, client_in(admin, service, unit.code, ["api_client"]),
                  client_in(admin, service, unit.code, ["officer"]),
                  client_in(admin, service, unit.code, ["officer"]))


def open_case(where: Office) -> UUID:
    with where.portal.client() as portal:
        submission = portal.submissions.create(where.unit.code, form=demo_process.FORM_KEY,
                                               data=APPLICANT)
    assert submission.case is not None
    return submission.case


def test_actions_are_conditional_on_the_copy_you_decided_on(admin: Client,
                                                           service: Service) -> None:
    where = office(admin, service)
    case_id = open_case(where)
    code = where.unit.code
    with where.officer.client() as officer, where.colleague.client() as colleague:
        mine = officer.cases.get(code, case_id)
        theirs = colleague.cases.get(code, case_id)
        assert [a.name for a in mine.actions] == ["tiep_nhan_ho_so"]

        moved = officer.cases.act(code, mine, "tiep_nhan_ho_so", comment="Đủ giấy tờ")
        assert isinstance(moved, Case) and moved.state.name == "xem_xet"
        history = officer.cases.history(code, case_id)

        with pytest.raises(CaseChangedError) as stale:
            colleague.cases.act(code, theirs, "tiep_nhan_ho_so")
        assert stale.value.status == 412 and "read it again" in str(stale.value)
        assert officer.cases.history(code, case_id) == history

        # Given only the ID, the SDK reads the case and acts on what it read.
        done = colleague.cases.act(code, case_id, "phe_duyet")
        assert isinstance(done, Case) and done.status == "closed" and done.outcome == "approved"
        steps = [h.action for h in officer.cases.history(code, case_id)]
        assert steps[-2:] == ["tiep_nhan_ho_so", "phe_duyet"]


async def test_the_async_client_acts_the_same_way(admin: Client, service: Service) -> None:
    where = office(admin, service)
    case_id = open_case(where)
    code = where.unit.code
    async with where.officer.async_client() as officer, \
            where.colleague.async_client() as colleague:
        seen = await colleague.cases.get(code, case_id)
        moved = await officer.cases.act(code, case_id, "tiep_nhan_ho_so")
        assert isinstance(moved, Case) and moved.state.name == "xem_xet"
        with pytest.raises(CaseChangedError):
            await colleague.cases.act(code, seen, "tiep_nhan_ho_so")
        open_cases = [c.id async for c in officer.cases.list(code, status="open")]
        assert case_id in open_cases


def test_claim_release_assign_and_the_inbox(admin: Client, service: Service) -> None:
    where = office(admin, service)
    case_id = open_case(where)
    code = where.unit.code
    with where.officer.client() as officer, where.unit.client() as supervisor:
        inbox = {t.case: t for t in officer.tasks.list(tenant=code)}
        assert inbox[case_id].actions == ["tiep_nhan_ho_so"]
        assert officer.cases.claim(code, case_id).assignee is not None
        assert officer.cases.release(code, case_id).assignee is None
        officer_id = officer.users.me()["id"]
        assigned = supervisor.cases.assign(code, case_id, assignee=officer_id)
        assert assigned.assignee == officer_id
        assert [c.id for c in supervisor.cases.list(code, state="tiep_nhan")] == [case_id]


def test_delegations_are_given_listed_and_ended(admin: Client, service: Service) -> None:
    where = office(admin, service)
    with where.officer.client() as officer, where.colleague.client() as colleague:
        colleague_id = colleague.users.me()["id"]
        now = datetime.now(UTC)
        given = officer.tasks.delegate(delegate=colleague_id, starts_at=now,
                                       ends_at=now + timedelta(days=3), reason="Nghỉ phép")
        assert given.id in [d.id for d in officer.tasks.delegations()]
        assert given.id in [d.id for d in colleague.tasks.delegations()]
        ended = officer.tasks.end_delegation(given.id)
        assert ended.id == given.id


def test_another_units_client_cannot_touch_the_case(admin: Client, service: Service) -> None:
    where = office(admin, service)
    case_id = open_case(where)
    code = where.unit.code
    other = new_unit(admin, service)
    refused = (NotFoundError, PermissionDeniedError)
    with other.client() as intruder, where.officer.client() as officer:
        before = officer.cases.get(code, case_id)
        attempts = [
            lambda: intruder.cases.get(code, case_id),
            lambda: intruder.cases.history(code, case_id),
            lambda: intruder.cases.act(code, before, "tiep_nhan_ho_so"),
            lambda: intruder.cases.act(code, case_id, "tiep_nhan_ho_so"),
            lambda: intruder.cases.claim(code, case_id),
            lambda: intruder.cases.release(code, case_id),
            lambda: intruder.cases.assign(code, case_id, assignee=intruder.users.me()["id"]),
            lambda: intruder.cases.list(code).to_list(),
        ]
        for attempt in attempts:
            with pytest.raises(refused):
                attempt()
        assert case_id not in [t.case for t in intruder.tasks.list()]
        assert officer.cases.get(code, case_id) == before


async def test_another_units_async_client_is_refused_too(admin: Client,
                                                         service: Service) -> None:
    where = office(admin, service)
    case_id = open_case(where)
    other = new_unit(admin, service)
    intruder: AsyncClient
    async with other.async_client() as intruder:
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            await intruder.cases.act(where.unit.code, case_id, "tiep_nhan_ho_so")
    with where.officer.client() as officer:
        assert officer.cases.get(where.unit.code, case_id).state.name == "tiep_nhan"
