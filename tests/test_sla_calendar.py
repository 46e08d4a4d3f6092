"""SLA arithmetic (:mod:`app.workflows.calendar`).

1. Differential: ``elapsed``, ``due`` and ``working_days_between`` against a naive reference
   written here (a walk over local days and pause boundaries), for random calendars, offsets,
   time zones and pauses.
2. Properties: round trip through ``due``, additivity, monotonicity, pauses only subtract,
   working time never exceeds calendar time, deadlines compose.
3. Hand-written Vietnamese cases (the 2026 holidays below are an example calendar, not an
   official one), ``parse_duration``, calendar inheritance and SLA status.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.workflows.calendar import (
    VIETNAM_OFFSET,
    CalendarSpec,
    DurationError,
    Mode,
    WorkingCalendar,
    due,
    effective_calendar,
    elapsed,
    parse_duration,
    sla_status,
)

Pauses = list[tuple[datetime, datetime | None]]

ICT = timezone(VIETNAM_OFFSET)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIFFERENTIAL = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- naive reference ----------------------------------------------------------------------


def naive_is_working(cal: WorkingCalendar, day: date) -> bool:
    if day in cal.holidays:
        return False
    if day in cal.working_days:
        return True
    return day.isoweekday() not in cal.weekend


def local_day(cal: WorkingCalendar, moment: datetime) -> date:
    return (moment.astimezone(UTC) + cal.utc_offset).date()


def next_midnight(cal: WorkingCalendar, moment: datetime) -> datetime:
    tomorrow = local_day(cal, moment) + DAY
    return datetime.combine(tomorrow, time(), tzinfo=timezone(cal.utc_offset)).astimezone(UTC)


def counts(cal: WorkingCalendar, mode: Mode, moment: datetime) -> bool:
    return mode == "calendar" or naive_is_working(cal, local_day(cal, moment))


def ref_elapsed(
    start: datetime, end: datetime, mode: Mode, cal: WorkingCalendar, pauses: Pauses
) -> timedelta:
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    if e <= s:
        return timedelta(0)
    spans = [(p.astimezone(UTC), (q or e).astimezone(UTC)) for p, q in pauses]
    points = {s, e} | {x for span in spans for x in span if s < x < e}
    cursor = next_midnight(cal, s)
    while cursor < e:
        points.add(cursor)
        cursor = next_midnight(cal, cursor)
    ordered = sorted(points)
    total = timedelta(0)
    for a, b in pairwise(ordered):
        middle = a + (b - a) / 2
        if any(p <= middle < q for p, q in spans):
            continue
        if counts(cal, mode, middle):
            total += b - a
    return total


def ref_due(
    start: datetime, duration: timedelta, mode: Mode, cal: WorkingCalendar, pauses: Pauses
) -> datetime | None:
    if any(q is None for _, q in pauses):
        return None
    if duration <= timedelta(0):
        return start
    spans = [(p.astimezone(UTC), q.astimezone(UTC)) for p, q in pauses if q is not None]
    cursor = start.astimezone(UTC)
    spent = timedelta(0)
    while True:
        boundaries = [next_midnight(cal, cursor)]
        boundaries += [x for span in spans for x in span if x > cursor]
        step_end = min(boundaries)
        paused = any(p <= cursor < q for p, q in spans)
        if not paused and counts(cal, mode, cursor):
            if spent + (step_end - cursor) >= duration:
                return cursor + (duration - spent)
            spent += step_end - cursor
        cursor = step_end


# --- strategies ---------------------------------------------------------------------------

OFFSETS = st.integers(-12 * 4, 14 * 4).map(lambda quarters: timedelta(minutes=15 * quarters))
ZONES: st.SearchStrategy[tzinfo] = st.one_of(
    st.just(UTC),
    st.just(ICT),
    st.just(ZoneInfo("Europe/Paris")),
    st.just(ZoneInfo("America/New_York")),
    OFFSETS.map(timezone),
)
MOMENTS = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=ZONES,
    allow_imaginary=False,
)
SPANS = st.one_of(
    st.timedeltas(min_value=-2 * DAY, max_value=12 * DAY),
    st.timedeltas(min_value=timedelta(0), max_value=120 * DAY),
    st.timedeltas(min_value=timedelta(0), max_value=900 * DAY),
)


def _in_zone(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone)


@st.composite
def calendars(draw: st.DrawFn, around: date | None = None) -> WorkingCalendar:
    """Random weekends (empty to six days), and holidays and make-up days clustered near
    ``around`` (so they matter) plus a few anywhere in 2024-2030."""
    weekend = draw(st.frozensets(st.integers(1, 7), max_size=6))
    centre = around or draw(st.dates(date(2024, 1, 1), date(2030, 12, 31)))
    near = st.integers(-40, 200).map(lambda days: centre + timedelta(days=days))
    anywhere = st.dates(date(2024, 1, 1), date(2030, 12, 31))
    holidays = draw(st.frozensets(st.one_of(near, anywhere), max_size=40))
    working_days = draw(st.frozensets(st.one_of(near, anywhere), max_size=25))
    offset = draw(st.one_of(st.just(VIETNAM_OFFSET), OFFSETS))
    return WorkingCalendar(
        weekend=weekend, holidays=holidays, working_days=working_days, utc_offset=offset
    )


@st.composite
def pause_lists(draw: st.DrawFn, anchor: datetime, allow_open: bool = True) -> Pauses:
    """Up to four pauses near ``anchor``: overlapping, empty, before it, or open."""
    pauses: Pauses = []
    for _ in range(draw(st.integers(0, 4))):
        begin = anchor + draw(st.timedeltas(min_value=-10 * DAY, max_value=60 * DAY))
        begin = _in_zone(begin, draw(ZONES))
        if allow_open and draw(st.integers(0, 5)) == 0:
            pauses.append((begin, None))
        else:
            length = draw(st.timedeltas(min_value=timedelta(0), max_value=15 * DAY))
            pauses.append((begin, _in_zone(begin + length, draw(ZONES))))
    return pauses


@st.composite
def scenarios(
    draw: st.DrawFn, allow_open: bool = True
) -> tuple[WorkingCalendar, datetime, datetime, Pauses]:
    start = draw(MOMENTS)
    end = _in_zone(start + draw(SPANS), draw(ZONES))
    cal = draw(calendars(around=start.date()))
    return cal, start, end, draw(pause_lists(start, allow_open))


MODES: st.SearchStrategy[Mode] = st.sampled_from(["calendar", "working"])
DURATIONS = st.one_of(
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=3 * DAY),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=60 * DAY),
)


# --- differential -------------------------------------------------------------------------


@DIFFERENTIAL
@given(scenarios(), MODES)
def test_elapsed_matches_reference(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses], mode: Mode
) -> None:
    cal, start, end, pauses = case
    got = elapsed(start, end, mode=mode, calendar=cal, pauses=pauses)
    assert got == ref_elapsed(start, end, mode, cal, pauses)


@DIFFERENTIAL
@given(scenarios(), MODES, DURATIONS)
def test_due_matches_reference(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses], mode: Mode, duration: timedelta
) -> None:
    cal, start, _, pauses = case
    got = due(start, duration, mode=mode, calendar=cal, pauses=pauses)
    assert got == ref_due(start, duration, mode, cal, pauses)
    if got is not None:
        assert got.tzinfo is UTC


@FAST
@given(calendars(), st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.integers(-5, 800))
def test_working_days_between_matches_counting(cal: WorkingCalendar, first: date, n: int) -> None:
    last = first + timedelta(days=n)
    expected = sum(naive_is_working(cal, first + timedelta(days=i)) for i in range(max(n, 0)))
    assert cal.working_days_between(first, last) == expected
    assert cal.is_working_day(first) == naive_is_working(cal, first)


# --- properties ---------------------------------------------------------------------------


@FAST
@given(scenarios(allow_open=False), MODES, DURATIONS)
def test_elapsed_until_due_is_the_duration(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses], mode: Mode, duration: timedelta
) -> None:
    cal, start, _, pauses = case
    deadline = due(start, duration, mode=mode, calendar=cal, pauses=pauses)
    assert deadline is not None
    assert elapsed(start, deadline, mode=mode, calendar=cal, pauses=pauses) == duration
    just_before = deadline - timedelta(microseconds=1)
    assert elapsed(start, just_before, mode=mode, calendar=cal, pauses=pauses) < duration


@FAST
@given(scenarios(), MODES, st.data())
def test_elapsed_is_additive(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses], mode: Mode, data: st.DataObject
) -> None:
    cal, start, end, pauses = case
    middle = _in_zone(start + data.draw(SPANS), data.draw(ZONES))
    a, b, c = sorted([start, middle, end])

    def run(x: datetime, y: datetime) -> timedelta:
        return elapsed(x, y, mode=mode, calendar=cal, pauses=pauses)

    assert run(a, b) + run(b, c) == run(a, c)


@FAST
@given(scenarios(allow_open=False), MODES, DURATIONS, DURATIONS)
def test_due_is_monotone(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses],
    mode: Mode,
    first: timedelta,
    second: timedelta,
) -> None:
    cal, start, _, pauses = case
    short, long = sorted([first, second])
    early = due(start, short, mode=mode, calendar=cal, pauses=pauses)
    late = due(start, long, mode=mode, calendar=cal, pauses=pauses)
    assert early is not None and late is not None
    assert early <= late


@FAST
@given(scenarios())
def test_working_time_never_exceeds_calendar_time(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses],
) -> None:
    cal, start, end, pauses = case
    working = elapsed(start, end, mode="working", calendar=cal, pauses=pauses)
    assert working <= elapsed(start, end, mode="calendar", calendar=cal, pauses=pauses)


@FAST
@given(scenarios(), MODES, st.data())
def test_a_pause_never_adds_time(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses], mode: Mode, data: st.DataObject
) -> None:
    cal, start, end, pauses = case
    extra = data.draw(pause_lists(start))
    before = elapsed(start, end, mode=mode, calendar=cal, pauses=pauses)
    after = elapsed(start, end, mode=mode, calendar=cal, pauses=pauses + extra)
    assert timedelta(0) <= after <= before


@FAST
@given(scenarios(), MODES, DURATIONS, DURATIONS)
def test_deadlines_compose(
    case: tuple[WorkingCalendar, datetime, datetime, Pauses],
    mode: Mode,
    first: timedelta,
    second: timedelta,
) -> None:
    cal, start, _, _ = case
    halfway = due(start, first, mode=mode, calendar=cal)
    assert halfway is not None
    assert due(start, first + second, mode=mode, calendar=cal) == due(
        halfway, second, mode=mode, calendar=cal
    )


def test_a_ten_year_deadline_does_not_walk_day_by_day(monkeypatch: pytest.MonkeyPatch) -> None:
    holidays = frozenset(date(2024, 1, 1) + timedelta(days=3 * i) for i in range(1500))
    cal = WorkingCalendar(holidays=holidays)
    calls = 0
    original = WorkingCalendar._days_before

    def counting(self: WorkingCalendar, ordinal: int) -> int:
        nonlocal calls
        calls += 1
        return original(self, ordinal)

    monkeypatch.setattr(WorkingCalendar, "_days_before", counting)
    start = datetime(2024, 1, 2, 9, tzinfo=ICT)
    deadline = due(start, parse_duration("P3650D"), mode="working", calendar=cal)
    assert deadline is not None
    assert calls < 200
    monkeypatch.undo()
    assert elapsed(start, deadline, mode="working", calendar=cal) == 3650 * DAY


# --- Vietnamese reality (an example 2026 calendar) ----------------------------------------

TET_2026 = {date(2026, 2, 14) + timedelta(days=i): "Tết Nguyên đán" for i in range(9)}
NATIONAL_2026 = CalendarSpec(
    weekend=frozenset({6, 7}),
    holidays={
        date(2026, 1, 1): "Tết Dương lịch",
        **TET_2026,
        date(2026, 4, 30): "Ngày Giải phóng miền Nam",
        date(2026, 5, 1): "Quốc tế Lao động",
        date(2026, 9, 2): "Quốc khánh",
    },
)
VN_2026 = effective_calendar([NATIONAL_2026])
RECEIVED = datetime(2026, 4, 24, 10, tzinfo=ICT)  # a Friday
FIVE_DAYS = parse_duration("P5D")


def local(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.astimezone(ICT)


def test_five_working_days_skip_the_weekend_and_30_4_and_1_5() -> None:
    deadline = due(RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026)
    assert local(deadline) == datetime(2026, 5, 5, 10, tzinfo=ICT)
    assert deadline is not None and deadline.tzinfo is UTC
    assert local(due(RECEIVED, FIVE_DAYS, mode="calendar", calendar=VN_2026)) == datetime(
        2026, 4, 29, 10, tzinfo=ICT
    )


def test_tet_is_not_working_time() -> None:
    before_tet = datetime(2026, 2, 13, 8, tzinfo=ICT)
    deadline = due(before_tet, FIVE_DAYS, mode="working", calendar=VN_2026)
    assert local(deadline) == datetime(2026, 2, 27, 8, tzinfo=ICT)


def test_a_make_up_saturday_counts() -> None:
    make_up = CalendarSpec(working_days={date(2026, 4, 25): "Làm bù"})
    cal = effective_calendar([NATIONAL_2026, make_up])
    assert cal.is_working_day(date(2026, 4, 25))
    deadline = due(RECEIVED, FIVE_DAYS, mode="working", calendar=cal)
    assert local(deadline) == datetime(2026, 5, 4, 10, tzinfo=ICT)


def test_a_commune_holiday_from_the_chain() -> None:
    province = CalendarSpec()
    commune = CalendarSpec(holidays={date(2026, 4, 28): "Lễ hội làng"})
    cal = effective_calendar([NATIONAL_2026, province, commune])
    deadline = due(RECEIVED, FIVE_DAYS, mode="working", calendar=cal)
    assert local(deadline) == datetime(2026, 5, 6, 10, tzinfo=ICT)
    neighbour = effective_calendar([NATIONAL_2026, province, CalendarSpec()])
    assert local(due(RECEIVED, FIVE_DAYS, mode="working", calendar=neighbour)) == datetime(
        2026, 5, 5, 10, tzinfo=ICT
    )


def test_a_province_cancels_a_national_holiday() -> None:
    province = CalendarSpec(working_days={date(2026, 5, 1): "Không nghỉ"})
    cal = effective_calendar([NATIONAL_2026, province, CalendarSpec()])
    assert cal.is_working_day(date(2026, 5, 1))
    assert not cal.is_working_day(date(2026, 4, 30))
    deadline = due(RECEIVED, FIVE_DAYS, mode="working", calendar=cal)
    assert local(deadline) == datetime(2026, 5, 4, 10, tzinfo=ICT)


def test_waiting_on_the_applicant_shifts_the_deadline_by_the_paused_working_time() -> None:
    asked = datetime(2026, 4, 27, 9, tzinfo=ICT)
    answered = datetime(2026, 4, 29, 15, tzinfo=ICT)
    paused = elapsed(asked, answered, mode="working", calendar=VN_2026)
    assert paused == 2 * DAY + 6 * HOUR
    deadline = due(
        RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026, pauses=[(asked, answered)]
    )
    assert local(deadline) == datetime(2026, 5, 7, 16, tzinfo=ICT)
    unpaused = due(RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026)
    assert unpaused is not None and deadline is not None
    assert elapsed(unpaused, deadline, mode="working", calendar=VN_2026) == paused


def test_a_pause_over_the_holidays_only_costs_its_working_time() -> None:
    asked = datetime(2026, 4, 29, 12, tzinfo=ICT)
    answered = datetime(2026, 5, 4, 12, tzinfo=ICT)
    deadline = due(
        RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026, pauses=[(asked, answered)]
    )
    assert local(deadline) == datetime(2026, 5, 6, 10, tzinfo=ICT)


def test_an_open_pause_makes_the_deadline_unknown() -> None:
    asked = datetime(2026, 4, 27, 9, tzinfo=ICT)
    pauses: Pauses = [(asked, None)]
    assert due(RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026, pauses=pauses) is None
    now = datetime(2026, 6, 1, tzinfo=ICT)
    status = sla_status(RECEIVED, FIVE_DAYS, now, mode="working", calendar=VN_2026, pauses=pauses)
    assert status == "paused"
    spent = elapsed(RECEIVED, now, mode="working", calendar=VN_2026, pauses=pauses)
    assert spent == 23 * HOUR


@pytest.mark.parametrize(
    ("now", "due_soon", "expected"),
    [
        (datetime(2026, 4, 24, 10, tzinfo=ICT), None, "on_time"),
        (datetime(2026, 5, 2, 12, tzinfo=ICT), None, "on_time"),  # 1 day 10 hours left
        (datetime(2026, 5, 4, 9, tzinfo=ICT), None, "on_time"),  # 1 day 1 hour left
        (datetime(2026, 5, 4, 10, tzinfo=ICT), None, "due_soon"),  # exactly 1 day left
        (datetime(2026, 5, 5, 9, 59, tzinfo=ICT), None, "due_soon"),
        (datetime(2026, 5, 5, 10, tzinfo=ICT), None, "overdue"),
        (datetime(2026, 5, 2, 12, tzinfo=ICT), 2 * DAY, "due_soon"),
        (datetime(2026, 5, 4, 10, tzinfo=ICT), HOUR, "on_time"),
        (datetime(2026, 4, 20, tzinfo=ICT), None, "on_time"),  # before the case started
    ],
)
def test_status_thresholds(now: datetime, due_soon: timedelta | None, expected: str) -> None:
    status = sla_status(
        RECEIVED, FIVE_DAYS, now, mode="working", calendar=VN_2026, due_soon=due_soon
    )
    assert status == expected


def test_default_threshold_is_a_fifth_of_a_short_duration() -> None:
    four_hours = parse_duration("PT4H")
    start = datetime(2026, 4, 24, 8, tzinfo=ICT)

    def at(hour: int, minute: int) -> str:
        now = datetime(2026, 4, 24, hour, minute, tzinfo=ICT)
        return sla_status(start, four_hours, now, mode="calendar", calendar=VN_2026)

    assert at(11, 11) == "on_time"
    assert at(11, 12) == "due_soon"  # 48 minutes (20%) left
    assert at(12, 0) == "overdue"


def test_a_closed_pause_covering_now_is_paused_and_a_finished_one_is_not() -> None:
    asked = datetime(2026, 4, 27, 9, tzinfo=ICT)
    answered = datetime(2026, 4, 29, 15, tzinfo=ICT)
    pauses: Pauses = [(asked, answered)]

    def at(now: datetime) -> str:
        return sla_status(RECEIVED, FIVE_DAYS, now, mode="working", calendar=VN_2026, pauses=pauses)

    assert at(datetime(2026, 4, 28, tzinfo=ICT)) == "paused"
    assert at(answered) == "on_time"
    assert at(datetime(2026, 5, 7, 16, tzinfo=ICT)) == "overdue"


def test_elapsed_over_a_weekend_only_is_zero() -> None:
    saturday = datetime(2026, 4, 25, 8, tzinfo=ICT)
    sunday_night = datetime(2026, 4, 26, 23, 59, tzinfo=ICT)
    assert elapsed(saturday, sunday_night, mode="working", calendar=VN_2026) == timedelta(0)
    assert elapsed(sunday_night, saturday, mode="calendar", calendar=VN_2026) == timedelta(0)


def test_working_days_are_local_days() -> None:
    # 17:00 UTC on a Friday is already Saturday in Vietnam.
    friday_evening_utc = datetime(2026, 4, 24, 17, tzinfo=UTC)
    monday = datetime(2026, 4, 27, tzinfo=ICT)
    assert elapsed(friday_evening_utc, monday, mode="working", calendar=VN_2026) == timedelta(0)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 4, 24, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        elapsed(naive, RECEIVED, mode="working", calendar=VN_2026)
    with pytest.raises(ValueError, match="timezone-aware"):
        due(naive, FIVE_DAYS, mode="working", calendar=VN_2026)
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_status(RECEIVED, FIVE_DAYS, naive, mode="working", calendar=VN_2026)
    with pytest.raises(ValueError, match="timezone-aware"):
        due(RECEIVED, FIVE_DAYS, mode="working", calendar=VN_2026, pauses=[(naive, None)])


def test_bad_pauses_modes_and_calendars_are_refused() -> None:
    later = RECEIVED + DAY
    with pytest.raises(ValueError, match="pause"):
        elapsed(RECEIVED, later, mode="working", calendar=VN_2026, pauses=[(later, RECEIVED)])
    with pytest.raises(ValueError, match="mode"):
        elapsed(RECEIVED, later, mode="office", calendar=VN_2026)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="working weekday"):
        WorkingCalendar(weekend=frozenset(range(1, 8)))
    with pytest.raises(ValueError, match=r"1\.\.7"):
        WorkingCalendar(weekend=frozenset({0, 6}))
    with pytest.raises(ValueError, match="utc_offset"):
        WorkingCalendar(utc_offset=timedelta(hours=24))


# --- parse_duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P5D", 5 * DAY),
        ("PT4H", 4 * HOUR),
        ("P1DT12H", DAY + 12 * HOUR),
        ("P2W", 14 * DAY),
        ("PT30M", timedelta(minutes=30)),
        ("PT90S", timedelta(seconds=90)),
        ("P1.5D", DAY + 12 * HOUR),
        ("P3650D", 3650 * DAY),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P1M", "years and months are not allowed; use days, e.g. P30D"),
        ("P1Y", "years and months are not allowed"),
        ("P1Y2M3D", "years and months are not allowed"),
        ("P0Y5D", "years and months are not allowed"),
        ("5 days", "not an ISO 8601 duration"),
        ("", "not an ISO 8601 duration"),
        ("p5d", "not an ISO 8601 duration"),
        (" P5D", "not an ISO 8601 duration"),
        ("P99999999999D", "not an ISO 8601 duration"),
        ("P0D", "positive"),
        ("PT0S", "positive"),
        ("-P1D", "positive"),
        ("P3651D", "at most P3650D"),
        ("P9999D", "at most P3650D"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message.replace(".", r"\.")) as caught:
        parse_duration(text)
    assert isinstance(caught.value, ValueError)


def test_parse_duration_refuses_non_strings() -> None:
    with pytest.raises(DurationError):
        parse_duration(5)  # type: ignore[arg-type]


# --- calendar specs and inheritance -------------------------------------------------------


def test_effective_calendar_defaults() -> None:
    cal = effective_calendar([])
    assert cal == WorkingCalendar()
    assert cal.weekend == frozenset({6, 7})
    assert cal.utc_offset == VIETNAM_OFFSET


def test_the_nearest_weekend_wins() -> None:
    ministry = CalendarSpec(weekend=frozenset({7}))
    province = CalendarSpec()
    commune = CalendarSpec(weekend=frozenset({5, 6}))
    assert effective_calendar([ministry, province]).weekend == frozenset({7})
    assert effective_calendar([ministry, province, commune]).weekend == frozenset({5, 6})
    assert effective_calendar([province, CalendarSpec(weekend=frozenset())]).weekend == frozenset()


def test_the_nearest_mention_of_a_date_wins() -> None:
    day = date(2026, 5, 1)
    national = CalendarSpec(holidays={day: "Quốc tế Lao động"})
    province = CalendarSpec(working_days={day: "Không nghỉ"})
    commune = CalendarSpec(holidays={day: "Nghỉ theo xã"})
    assert not effective_calendar([national]).is_working_day(day)
    cancelled = effective_calendar([national, province])
    assert cancelled.is_working_day(day)
    assert day in cancelled.working_days and day not in cancelled.holidays
    restored = effective_calendar([national, province, commune])
    assert not restored.is_working_day(day)
    assert day in restored.holidays and day not in restored.working_days
    assert effective_calendar([national, CalendarSpec(), CalendarSpec()]).holidays == {day}


def test_a_holiday_beats_a_make_up_day_in_a_hand_built_calendar() -> None:
    saturday = date(2026, 4, 25)
    cal = WorkingCalendar(holidays=frozenset({saturday}), working_days=frozenset({saturday}))
    assert not cal.is_working_day(saturday)


def test_calendar_spec_json_round_trip() -> None:
    document: dict[str, Any] = {
        "weekend": [6, 7],
        "holidays": [
            {"date": "2026-09-02", "name": "Quốc khánh"},
            {"date": "2026-04-30", "name": "Ngày Giải phóng miền Nam"},
        ],
        "working_days": [{"date": "2026-01-03", "name": "Làm bù"}],
    }
    spec = CalendarSpec.from_json(document)
    assert spec.weekend == frozenset({6, 7})
    assert spec.holidays[date(2026, 9, 2)] == "Quốc khánh"
    assert spec.working_days == {date(2026, 1, 3): "Làm bù"}
    assert spec.to_json() == {
        "weekend": [6, 7],
        "holidays": [
            {"date": "2026-04-30", "name": "Ngày Giải phóng miền Nam"},
            {"date": "2026-09-02", "name": "Quốc khánh"},
        ],
        "working_days": [{"date": "2026-01-03", "name": "Làm bù"}],
    }
    assert CalendarSpec.from_json(spec.to_json()) == spec
    empty = CalendarSpec.from_json({})
    assert empty == CalendarSpec()
    assert empty.weekend is None
    assert CalendarSpec.from_json(empty.to_json()) == empty
    assert hash(spec) == hash(CalendarSpec.from_json(document))


def test_calendar_spec_is_a_snapshot() -> None:
    holidays = {date(2026, 9, 2): "Quốc khánh"}
    spec = CalendarSpec(holidays=holidays)
    holidays[date(2026, 9, 3)] = "later"
    assert dict(spec.holidays) == {date(2026, 9, 2): "Quốc khánh"}
    with pytest.raises(TypeError):
        spec.holidays[date(2026, 9, 4)] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    "document",
    [
        {
            "holidays": [{"date": "2026-05-01", "name": "a"}],
            "working_days": [{"date": "2026-05-01", "name": "b"}],
        },
        {"holidays": [{"date": "2026-05-01", "name": "a"}, {"date": "2026-05-01", "name": "b"}]},
        {"weekend": [0]},
        {"weekend": [8]},
        {"holidays": [{"date": "2026-02-30", "name": "a"}]},
    ],
)
def test_calendar_spec_refuses_nonsense(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CalendarSpec.from_json(document)
