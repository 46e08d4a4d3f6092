"""Workflows, working calendars, reports and the audit trail through the SDK, against the live
service on each backend: the workflow lifecycle and its simulator, moving running cases to a
new version, calendar declarations, saving, running and exporting reports, reading the audit
trail page by page and verifying its hash chain, and the wall between units."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from live_service import Service
from nentang_sdk import Client, ConflictError, NotFoundError, ValidationError
from nentang_sdk.models import AuditRecord
from sdk_helpers import Unit, client_in, new_unit
from test_forms_and_submissions import (
    KEY,
    OTHER_UNIT,
    XLSX_MAGIC,
    form_definition,
    published_form,
    text,
)
from test_forms_and_submissions import valid_data as form_data

WORKFLOW = "xu-ly-thu"
REVIEW, RENAMED = "xu_ly", "tham_dinh"
YEAR = 2039  # no other test declares dates in this year


def workflow_definition(key: str = WORKFLOW, *, form: str = KEY,
                        review: str = REVIEW) -> dict[str, Any]:
    """Receipt → review → approved or refused; the reviewer's opinion is a required field."""
    return {
        "kind": "Workflow", "key": key, "title": text("Xử lý thử", "Test processing"),
        "form": form,
        "states": [
            {"name": "tiep_nhan", "type": "start", "title": text("Tiếp nhận", "Receipt")},
            {"name": review, "type": "task", "title": text("Xử lý", "Review")},
            {"name": "hoan_thanh", "type": "terminal", "outcome": "approved",
             "title": text("Hoàn thành", "Done")},
            {"name": "bi_tu_choi", "type": "terminal", "outcome": "rejected",
             "title": text("Bị từ chối", "Refused")},
        ],
        "actions": [
            {"name": "tiep_nhan_ho_so", "title": text("Tiếp nhận hồ sơ", "Accept"),
             "from": "tiep_nhan", "to": review, "roles": ["officer"]},
            {"name": "duyet", "title": text("Duyệt", "Approve"), "from": review,
             "to": "hoan_thanh", "roles": ["reviewer"],
             "fields": {"y_kien": {"title": text("Ý kiến", "Opinion"),
                                   "schema": {"type": "string", "minLength": 3},
                                   "required": True}}},
            {"name": "tu_choi", "title": text("Từ chối", "Refuse"), "from": review,
             "to": "bi_tu_choi", "roles": ["reviewer"], "comment": "required"},
        ],
    }


OFFICER = {"id": "can-bo", "roles": ["officer"], "at": "case"}
LEADER = {"id": "lanh-dao", "roles": ["reviewer"], "at": "case"}
HAPPY_PATH: list[dict[str, Any]] = [
    {"action": "tiep_nhan_ho_so", "actor": OFFICER},
    {"action": "duyet", "actor": LEADER, "fields": {"y_kien": "Đồng ý cấp"}},
]


def report_definition(key: str = "theo-loai", **extra: Any) -> dict[str, Any]:
    return {"key": key, "title": text("Theo loại", "By kind"), "form": KEY,
            "group_by": ["loai"],
            "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "so_luong"}], **extra}


# ---- workflows ---------------------------------------------------------------------------


def test_workflow_lifecycle_simulation_and_diff(nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    created = nt.workflows.create(code, definition=workflow_definition())
    assert (created.key, created.status, created.draft_version) == (WORKFLOW, "draft", 1)
    assert nt.workflows.get(code, WORKFLOW).definition == workflow_definition()

    # An unfinished draft saves; it is checked in full when published.
    unfinished = workflow_definition()
    unfinished["states"].append({"name": "mo_coi", "type": "task",
                                 "title": text("Mồ côi", "Orphan")})
    assert nt.workflows.update_version(code, WORKFLOW, 1, definition=unfinished).number == 1
    with pytest.raises(ValidationError) as refused:
        nt.workflows.publish(code, WORKFLOW, 1)
    assert refused.value.code == "workflow-not-publishable"
    assert {e.pointer for e in refused.value.errors} == {"/states/4"}, refused.value.errors
    nt.workflows.update_version(code, WORKFLOW, 1, definition=workflow_definition())

    run = nt.workflows.simulate(code, WORKFLOW, data=form_data(), steps=HAPPY_PATH)
    assert (run.version, run.path, run.state, run.refused) == (
        1, ["tiep_nhan", REVIEW, "hoan_thanh"], "hoan_thanh", None)
    assert [s.changes for s in run.steps][1] == {"y_kien": "Đồng ý cấp"}
    assert [(s.from_, s.to, s.moved) for s in run.steps] == [
        ("tiep_nhan", REVIEW, True), (REVIEW, "hoan_thanh", True)]
    assert run.problems == []
    stopped = nt.workflows.simulate(code, WORKFLOW, data=form_data(), version=1, steps=[
        HAPPY_PATH[0], {"action": "duyet", "actor": OFFICER, "fields": {"y_kien": "Được"}}])
    assert stopped.refused is not None
    assert (stopped.refused.step, stopped.refused.code, stopped.state) == (
        1, "not-allowed", REVIEW)
    with pytest.raises(ValidationError) as bad_sample:
        nt.workflows.simulate(code, WORKFLOW, data={"ho_ten": "X"}, steps=HAPPY_PATH)
    assert "/data/so_luong" in {e.pointer for e in bad_sample.value.errors}

    published = nt.workflows.publish(code, WORKFLOW, 1)
    assert (published.status, published.number) == ("published", 1)
    with pytest.raises(ConflictError):
        nt.workflows.update_version(code, WORKFLOW, 1, definition=workflow_definition())

    copied = nt.workflows.create_version(code, WORKFLOW)
    assert (copied.number, copied.status, copied.definition) == (2, "draft",
                                                                  workflow_definition())
    nt.workflows.update_version(code, WORKFLOW, 2,
                                definition=workflow_definition(review=RENAMED))
    diff = nt.workflows.diff(code, WORKFLOW, 1, 2)
    assert (diff.from_, diff.to, diff.same) == (1, 2, False)
    assert (diff.states.added, diff.states.removed) == ([RENAMED], [REVIEW])
    assert set(diff.actions.changed) == {"tiep_nhan_ho_so", "duyet", "tu_choi"}
    assert nt.workflows.version(code, WORKFLOW, 2).definition == workflow_definition(
        review=RENAMED)
    assert nt.workflows.discard_version(code, WORKFLOW, 2) is None
    with pytest.raises(NotFoundError):
        nt.workflows.version(code, WORKFLOW, 2)
    assert [(v.number, v.status) for v in nt.workflows.versions(code, WORKFLOW)] == [
        (1, "published")]


def test_migrating_running_cases_and_deprecating(admin: Client, service: Service, nt: Client,
                                                unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    nt.workflows.create(code, definition=workflow_definition())
    nt.workflows.publish(code, WORKFLOW, 1)
    at_start = nt.submissions.create(code, form=KEY, data=form_data(1)).case
    in_review = nt.submissions.create(code, form=KEY, data=form_data(2)).case
    assert at_start and in_review
    with client_in(admin, service, code, ["officer"]).client() as officer:
        officer.cases.act(code, in_review, "tiep_nhan_ho_so")

    nt.workflows.create_version(code, WORKFLOW, definition=workflow_definition(review=RENAMED))
    nt.workflows.publish(code, WORKFLOW, 2)
    dry = nt.workflows.migrate_cases(code, WORKFLOW, to_version=2)
    assert (dry.dry_run, dry.to_version, dry.remaining) == (True, 2, 0)
    assert [(c.case, c.to_state) for c in dry.moved] == [(at_start, "tiep_nhan")]
    assert [(c.case, c.state, c.code) for c in dry.cannot_move] == [
        (in_review, REVIEW, "state-not-mapped")]
    assert nt.cases.get(code, at_start).workflow.version == 1, "a dry run changes nothing"

    with pytest.raises(ValidationError) as unknown:
        nt.workflows.migrate_cases(code, WORKFLOW, to_version=2,
                                   states={"tiep_nhan": "khong_co"}, dry_run=False)
    assert [e.pointer for e in unknown.value.errors] == ["/states/tiep_nhan"]

    first = nt.workflows.migrate_cases(code, WORKFLOW, to_version=2, from_version=1,
                                       states={REVIEW: RENAMED}, dry_run=False, limit=1)
    assert (first.dry_run, len(first.moved), first.remaining) == (False, 1, 1)
    rest = nt.workflows.migrate_cases(code, WORKFLOW, to_version=2,
                                      states={REVIEW: RENAMED}, dry_run=False)
    assert sorted(str(c.case) for c in [*first.moved, *rest.moved]) == sorted(
        [str(at_start), str(in_review)])
    moved = nt.cases.get(code, in_review)
    assert (moved.workflow.version, moved.state.name) == (2, RENAMED)

    deprecated = nt.workflows.deprecate(code, WORKFLOW, 1)
    assert (deprecated.number, deprecated.status) == (1, "deprecated")
    current = nt.workflows.get(code, WORKFLOW)
    assert (current.status, current.latest_version) == ("published", 2)


def test_workflow_list_crosses_pages(nt: Client, unit: Unit) -> None:
    keys = [f"quy-trinh-{i}" for i in range(3)]
    for key in keys:
        nt.workflows.create(unit.code, definition=workflow_definition(key, form=f"mau-{key}"))
    pager = nt.workflows.list(unit.code, limit=2)
    assert pager.first_page().next_cursor
    assert [w.key for w in pager if w.key in keys] == keys
    assert all(w.definition is None and w.status == "draft" for w in pager)


# ---- calendars ---------------------------------------------------------------------------


def test_calendar_declared_inherited_and_dropped(admin: Client, service: Service,
                                                 nt: Client, unit: Unit) -> None:
    code = unit.code
    assert nt.calendars.get(code, year=YEAR).own is None
    declared = nt.calendars.replace(
        code, weekend=[7, 6],
        holidays={date(YEAR, 9, 2): "Quốc khánh", date(YEAR, 1, 1): "Tết Dương lịch"},
        working_days={date(YEAR, 5, 7): "Làm bù"})
    assert declared.own is not None and declared.own.weekend == [6, 7]
    assert [(d.date, d.name) for d in declared.own.holidays] == [
        (date(YEAR, 1, 1), "Tết Dương lịch"), (date(YEAR, 9, 2), "Quốc khánh")]
    assert [d.date for d in declared.own.working_days] == [date(YEAR, 5, 7)]

    commune = new_unit(admin, service, kind="commune", parent=code)
    nt.calendars.replace(commune.code, holidays={date(YEAR, 6, 15): "Ngày thành lập xã"},
                         working_days={date(YEAR, 9, 2): "Trực lễ"})
    below = nt.calendars.get(commune.code, year=YEAR)
    assert below.own is not None and below.own.weekend is None
    assert [(d.date, d.from_) for d in below.effective.holidays] == [
        (date(YEAR, 1, 1), "inherited"), (date(YEAR, 6, 15), "own")]
    assert below.effective.weekend == [6, 7]
    assert nt.calendars.get(commune.code, year=YEAR + 1).effective.holidays == []

    assert nt.calendars.delete(code) is None
    assert nt.calendars.get(code, year=YEAR).own is None
    after = nt.calendars.get(commune.code, year=YEAR)
    assert [d.date for d in after.effective.holidays] == [date(YEAR, 6, 15)]
    with pytest.raises(ValidationError) as bad:
        nt.calendars.replace(code, weekend=[0, 8])
    assert {e.pointer for e in bad.value.errors} == {"/weekend/0", "/weekend/1"}, (
        bad.value.errors)


# ---- reports -----------------------------------------------------------------------------


def test_reports_preview_save_run_export_replace_delete(admin: Client, service: Service,
                                                        nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    commune = new_unit(admin, service, kind="commune", parent=code)
    for n, kind, where in [(1, "ca_nhan", code), (2, "ca_nhan", code), (4, "to_chuc", code),
                           (8, "ca_nhan", commune.code)]:
        nt.submissions.create(where, form=KEY, data=form_data(n, kind))

    preview = nt.reports.preview(code, definition=report_definition())
    assert (preview.columns, preview.report, preview.tenant) == (
        ["loai", "count", "sum(so_luong)"], None, code)
    assert preview.rows == [["ca_nhan", 3, 11], ["to_chuc", 1, 4]]
    with pytest.raises(ValidationError) as bad:
        nt.reports.preview(code, definition=report_definition(group_by=["khong_co"]))
    assert [e.pointer for e in bad.value.errors] == ["/group_by/0"]
    with pytest.raises(NotFoundError):
        nt.reports.get(code, "theo-loai")  # a preview saves nothing

    saved = nt.reports.create(code, definition=report_definition())
    assert (saved.key, saved.form, saved.title) == ("theo-loai", KEY, text("Theo loại",
                                                                           "By kind"))
    with pytest.raises(ConflictError):
        nt.reports.create(code, definition=report_definition())
    assert nt.reports.get(code, "theo-loai").definition == report_definition()

    result = nt.reports.run(code, "theo-loai")
    assert (result.report, result.rollup, result.rows) == ("theo-loai", "none", preview.rows)
    rolled = nt.reports.run(code, "theo-loai", rollup="children")
    assert rolled.rollup == "children" and rolled.columns[0] == "$tenant"
    assert sorted(tuple(r) for r in rolled.rows) == sorted([
        (code, "ca_nhan", 2, 3), (code, "to_chuc", 1, 4), (commune.code, "ca_nhan", 1, 8)])

    exported = nt.reports.export(code, "theo-loai")
    assert exported.content_type.startswith("text/csv")
    assert exported.filename is not None and exported.filename.startswith(f"theo-loai-{code}-")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows == [["loai", "count", "sum(so_luong)"], ["ca_nhan", "3", "11"],
                    ["to_chuc", "1", "4"]]
    workbook = nt.reports.export(code, "theo-loai", format="xlsx")
    assert workbook.content.startswith(XLSX_MAGIC)
    assert workbook.filename is not None and workbook.filename.endswith(".xlsx")

    replaced = nt.reports.replace(code, "theo-loai", definition=report_definition(
        filters=[{"field": "so_luong", "op": "gte", "value": 2}]))
    assert replaced.definition is not None and replaced.definition["filters"]
    assert nt.reports.run(code, "theo-loai").rows == [["ca_nhan", 2, 10], ["to_chuc", 1, 4]]

    for key in ("b-bao-cao", "c-bao-cao"):
        nt.reports.create(code, definition=report_definition(key))
    pager = nt.reports.list(code, limit=2)
    assert len(pager.first_page().items) == 2
    assert [r.key for r in pager] == ["b-bao-cao", "c-bao-cao", "theo-loai"]
    assert all(r.definition is None for r in pager)

    assert nt.reports.delete(code, "theo-loai") is None
    with pytest.raises(NotFoundError):
        nt.reports.get(code, "theo-loai")
    assert [r.key for r in nt.reports.list(code)] == ["b-bao-cao", "c-bao-cao"]
    assert nt.reports.list(commune.code).to_list() == [], "units below do not inherit reports"


# ---- audit -------------------------------------------------------------------------------


def _assert_chained(records: list[AuditRecord]) -> None:
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


def test_audit_trail_pages_and_its_chain_verifies(nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    nt.reports.create(code, definition=report_definition())
    nt.reports.export(code, "theo-loai")
    nt.calendars.replace(code, holidays={date(YEAR, 4, 30): "Giải phóng miền Nam"})

    pager = nt.audit.list(code, limit=2)
    pages = list(pager.pages())
    assert len(pages) >= 3 and all(len(p.items) == 2 for p in pages[:-1])
    records = [r for page in pages for r in page.items]
    _assert_chained(records)
    assert all(r.tenant == code for r in records)
    actions = [r.action for r in records]
    assert actions[0] == "tenant.create"
    assert {"form.create", "form.publish", "report.create", "report.export",
            "calendar.replace"} <= set(actions), actions
    export = next(r for r in records if r.action == "report.export")
    assert export.after is not None and export.after["format"] == "csv"
    assert export.resource_id == "theo-loai" and export.actor.startswith("client:")

    verified = nt.audit.verify(code)
    assert (verified.ok, verified.tenant, verified.broken_seq) == (True, code, None)
    assert verified.checked >= len(records) and verified.head_seq >= records[-1].seq


async def test_async_client_audit_and_reports(unit: Unit) -> None:
    async with unit.async_client() as nt:
        await nt.forms.create(unit.code, definition=form_definition())
        await nt.forms.publish(unit.code, KEY, 1)
        for n in range(3):
            await nt.submissions.create(unit.code, form=KEY, data=form_data(n))
        saved = await nt.reports.create(unit.code, definition=report_definition())
        result = await nt.reports.run(unit.code, saved.key)
        assert result.rows == [["ca_nhan", 3, 3]]
        exported = await nt.reports.export(unit.code, saved.key)
        assert exported.content.decode("utf-8-sig").splitlines()[1] == "ca_nhan,3,3"
        records = [r async for r in nt.audit.list(unit.code, limit=2)]
        _assert_chained(records)
        assert "report.export" in [r.action for r in records]
        assert (await nt.audit.verify(unit.code)).ok is True
        reports = [r.key async for r in nt.reports.list(unit.code, limit=1)]
        assert reports == ["theo-loai"]
        calendar = await nt.calendars.get(unit.code, year=YEAR)
        assert calendar.tenant == unit.code


# ---- the wall between units --------------------------------------------------------------


def test_another_unit_cannot_touch_workflows_calendars_reports_or_audit(
        admin: Client, service: Service, nt: Client, unit: Unit) -> None:
    code = unit.code
    published_form(nt, code)
    nt.workflows.create(code, definition=workflow_definition())
    nt.workflows.publish(code, WORKFLOW, 1)
    nt.workflows.create_version(code, WORKFLOW)
    nt.reports.create(code, definition=report_definition())
    nt.calendars.replace(code, holidays={date(YEAR, 12, 24): "Ngày thử"})
    before_workflow = nt.workflows.get(code, WORKFLOW)
    before_versions = nt.workflows.versions(code, WORKFLOW)
    before_report = nt.reports.get(code, "theo-loai")
    before_calendar = nt.calendars.get(code, year=YEAR)
    before_audit = nt.audit.list(code).to_list()

    stranger = new_unit(admin, service)
    with stranger.client() as other:
        own = stranger.code
        attempts: list[Callable[[], object]] = [
            lambda: other.workflows.get(code, WORKFLOW),
            lambda: other.workflows.list(code).to_list(),
            lambda: other.workflows.versions(code, WORKFLOW),
            lambda: other.workflows.version(code, WORKFLOW, 1),
            lambda: other.workflows.update_version(code, WORKFLOW, 2,
                                                   definition=workflow_definition()),
            lambda: other.workflows.publish(code, WORKFLOW, 2),
            lambda: other.workflows.discard_version(code, WORKFLOW, 2),
            lambda: other.workflows.deprecate(code, WORKFLOW, 1),
            lambda: other.workflows.diff(code, WORKFLOW, 1, 2),
            lambda: other.workflows.simulate(code, WORKFLOW, data=form_data(),
                                             steps=HAPPY_PATH),
            lambda: other.workflows.migrate_cases(code, WORKFLOW, to_version=1,
                                                  dry_run=False),
            lambda: other.calendars.get(code),
            lambda: other.calendars.replace(code, weekend=[7]),
            lambda: other.calendars.delete(code),
            lambda: other.reports.get(code, "theo-loai"),
            lambda: other.reports.list(code).to_list(),
            lambda: other.reports.run(code, "theo-loai"),
            lambda: other.reports.export(code, "theo-loai"),
            lambda: other.reports.replace(code, "theo-loai",
                                          definition=report_definition(group_by=[])),
            lambda: other.reports.delete(code, "theo-loai"),
            lambda: other.reports.preview(code, definition=report_definition()),
            lambda: other.audit.list(code).to_list(),
            lambda: other.audit.verify(code),
        ]
        for attempt in attempts:
            with pytest.raises(OTHER_UNIT):
                attempt()
        # Under its own code the first unit's definitions do not exist.
        hidden: list[Callable[[], object]] = [
            lambda: other.workflows.get(own, WORKFLOW),
            lambda: other.reports.get(own, "theo-loai"),
            lambda: other.reports.delete(own, "theo-loai"),
        ]
        for attempt in hidden:
            with pytest.raises(NotFoundError):
                attempt()
        own_records = other.audit.list(own).to_list()
        assert own_records and all(r.tenant == own for r in own_records)

    after_workflow = nt.workflows.get(code, WORKFLOW)
    assert (after_workflow.definition, after_workflow.latest_version,
            after_workflow.draft_version) == (before_workflow.definition, 1, 2)
    assert nt.workflows.versions(code, WORKFLOW) == before_versions
    assert nt.reports.get(code, "theo-loai") == before_report
    assert nt.calendars.get(code, year=YEAR) == before_calendar
    after_audit = nt.audit.list(code).to_list()
    assert after_audit[:len(before_audit)] == before_audit
    assert all(r.actor != f"client:{stranger.client_id}" for r in after_audit)
    assert nt.audit.verify(code).ok is True

