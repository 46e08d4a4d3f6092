"""SLA arithmetic for workflow cases: working calendars, durations and a pausable clock.

Everything here is pure: no database, no clock (callers pass ``now``), no global state.

Working time is counted in whole local days (00:00-24:00 at the calendar's UTC offset), not
office hours: one working day of SLA is 24 hours that fall on working days. Internally an
instant is an integer count of microseconds since 1970-01-01 UTC, and a calendar maps it to
a monotone "working clock" (microseconds of working time since a fixed origin), so elapsed
working time is a difference of two clock readings and a deadline is the clock's inverse.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

import isodate

Mode = Literal["calendar", "working"]
SlaStatus = Literal["on_time", "due_soon", "overdue", "paused"]
Pause = tuple[datetime, datetime | None]

VIETNAM_OFFSET = timedelta(hours=7)
"""Vietnam (ICT) has no daylight saving time, so a fixed offset is exact."""

MAX_DURATION = timedelta(days=3650)
DEFAULT_WEEKEND: frozenset[int] = frozenset({6, 7})

_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MODES: frozenset[str] = frozenset({"calendar", "working"})


class DurationError(ValueError):
    """An SLA duration that is not a positive ISO 8601 duration in days, weeks or time."""


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``P5D``, ``PT4H``, ``P1DT12H`` or ``P2W``.

    Years and months are refused because their length depends on the start date, which
    makes "working" arithmetic ambiguous; ``P30D`` says what is meant.
    """
    if not isinstance(text, str):
        raise DurationError(f"a duration must be a string, not {type(text).__name__}")
    try:
        parsed = isodate.parse_duration(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DurationError(
            f"{text!r} is not an ISO 8601 duration (examples: P5D, PT4H, P1DT12H, P2W)"
        ) from exc
    date_part = text.split("T", 1)[0]
    if isinstance(parsed, isodate.Duration) or "Y" in date_part or "M" in date_part:
        raise DurationError("years and months are not allowed; use days, e.g. P30D")
    if not isinstance(parsed, timedelta):
        raise DurationError(f"{text!r} is not a duration")
    if parsed <= timedelta(0):
        raise DurationError(f"a duration must be positive, got {text!r}")
    if parsed > MAX_DURATION:
        raise DurationError(f"a duration may be at most P3650D, got {text!r}")
    return parsed


def _check_weekend(weekend: frozenset[int]) -> None:
    bad = sorted(day for day in weekend if not isinstance(day, int) or not 1 <= day <= 7)
    if bad:
        raise ValueError(f"weekend days are ISO weekdays 1..7, got {bad}")


def _check_dates(kind: str, days: Mapping[date, str] | frozenset[date]) -> None:
    for day in days:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"{kind} must be keyed by dates, got {day!r}")


@dataclass(frozen=True)
class CalendarSpec:
    """What one tenant declares; :func:`effective_calendar` layers a chain of these.

    The mappings are copied into read-only views. Equality compares everything; the hash
    covers only ``weekend``, which keeps it consistent with equality.
    """

    weekend: frozenset[int] | None = None
    holidays: Mapping[date, str] = field(default_factory=dict, hash=False)
    working_days: Mapping[date, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.weekend is not None:
            object.__setattr__(self, "weekend", frozenset(self.weekend))
            _check_weekend(self.weekend)
        object.__setattr__(self, "holidays", MappingProxyType(dict(self.holidays)))
        object.__setattr__(self, "working_days", MappingProxyType(dict(self.working_days)))
        _check_dates("holidays", self.holidays)
        _check_dates("working_days", self.working_days)
        both = sorted(set(self.holidays) & set(self.working_days))
        if both:
            listed = ", ".join(day.isoformat() for day in both)
            raise ValueError(f"a date cannot be both a holiday and a working day: {listed}")

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> CalendarSpec:
        """Build from the stored JSON shape (already validated against its JSON Schema)."""
        weekend_raw = document.get("weekend")
        weekend = None if weekend_raw is None else frozenset(int(day) for day in weekend_raw)
        return cls(
            weekend=weekend,
            holidays=_dated_names("holidays", document.get("holidays") or ()),
            working_days=_dated_names("working_days", document.get("working_days") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """The inverse of :meth:`from_json`; dates as ISO strings, in date order."""
        document: dict[str, Any] = {}
        if self.weekend is not None:
            document["weekend"] = sorted(self.weekend)
        document["holidays"] = [
            {"date": day.isoformat(), "name": self.holidays[day]} for day in sorted(self.holidays)
        ]
        document["working_days"] = [
            {"date": day.isoformat(), "name": self.working_days[day]}
            for day in sorted(self.working_days)
        ]
        return document


def _dated_names(kind: str, entries: Sequence[Mapping[str, Any]]) -> dict[date, str]:
    named: dict[date, str] = {}
    for entry in entries:
        day = date.fromisoformat(entry["date"])
        if day in named:
            raise ValueError(f"{kind} lists {day.isoformat()} more than once")
        named[day] = str(entry.get("name", ""))
    return named


@dataclass(frozen=True)
class WorkingCalendar:
    """The effective calendar of one tenant.

    A date is a working day if it is not a holiday and either is a make-up working day or
    falls on a weekday outside ``weekend``. Lookups are precomputed once per instance so
    counting working days between any two dates costs O(log H) for H listed dates.
    """

    weekend: frozenset[int] = DEFAULT_WEEKEND
    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    utc_offset: timedelta = VIETNAM_OFFSET

    _offset_us: int = field(init=False, repr=False, compare=False)
    _week_prefix: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _flipped: frozenset[int] = field(init=False, repr=False, compare=False)
    _flip_ordinals: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _flip_prefix: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weekend = frozenset(self.weekend)
        _check_weekend(weekend)
        if len(weekend) == 7:
            raise ValueError("a week needs at least one working weekday")
        _check_dates("holidays", frozenset(self.holidays))
        _check_dates("working_days", frozenset(self.working_days))
        if not -timedelta(hours=24) < self.utc_offset < timedelta(hours=24):
            raise ValueError("utc_offset must lie strictly between -24h and +24h")
        holidays = frozenset(self.holidays)
        working_days = frozenset(self.working_days)

        prefix = [0]
        for weekday in range(1, 8):
            prefix.append(prefix[-1] + (weekday not in weekend))

        # Dates whose status differs from the plain weekly rule, with +1/-1 per date.
        delta: dict[int, int] = {}
        for day in holidays:
            if day.isoweekday() not in weekend:
                delta[day.toordinal()] = -1
        for day in working_days - holidays:
            if day.isoweekday() in weekend:
                delta[day.toordinal()] = 1
        ordinals = tuple(sorted(delta))
        flip_prefix = [0]
        for ordinal in ordinals:
            flip_prefix.append(flip_prefix[-1] + delta[ordinal])

        set_ = object.__setattr__
        set_(self, "weekend", weekend)
        set_(self, "holidays", holidays)
        set_(self, "working_days", working_days)
        set_(self, "_offset_us", self.utc_offset // _MICROSECOND)
        set_(self, "_week_prefix", tuple(prefix))
        set_(self, "_flipped", frozenset(delta))
        set_(self, "_flip_ordinals", ordinals)
        set_(self, "_flip_prefix", tuple(flip_prefix))

    def is_working_day(self, day: date) -> bool:
        """Make-up working days beat the weekend; holidays are never working days."""
        return self._is_working_ordinal(day.toordinal())

    def working_days_between(self, first: date, last: date) -> int:
        """How many working days lie in ``[first, last)``; 0 if ``last <= first``."""
        if last <= first:
            return 0
        return self._days_before(last.toordinal()) - self._days_before(first.toordinal())

    def _is_working_ordinal(self, ordinal: int) -> bool:
        base = (ordinal - 1) % 7 + 1 not in self.weekend
        return base != (ordinal in self._flipped)

    def _days_before(self, ordinal: int) -> int:
        """Working days from a fixed origin up to (not including) ``ordinal``; monotone."""
        weeks, rest = divmod(ordinal - 1, 7)
        base = weeks * self._week_prefix[7] + self._week_prefix[rest]
        return base + self._flip_prefix[bisect_left(self._flip_ordinals, ordinal)]

    def _clock(self, instant_us: int) -> int:
        """Working microseconds from the origin up to ``instant_us`` (UTC microseconds)."""
        day, into = divmod(instant_us + self._offset_us, _DAY_US)
        ordinal = _EPOCH_ORDINAL + day
        reading = self._days_before(ordinal) * _DAY_US
        if self._is_working_ordinal(ordinal):
            reading += into
        return reading

    def _first_ordinal_with(self, count: int) -> int:
        """The smallest ordinal ``o`` with ``_days_before(o) >= count``."""
        per_week = self._week_prefix[7]
        weeks, rest = divmod(count, per_week)
        weekday = next(i for i, seen in enumerate(self._week_prefix) if seen >= rest)
        # Exact for the weekly rule alone; listed dates only move it a little, so gallop.
        guess = 1 + weeks * 7 + weekday

        def enough(ordinal: int) -> bool:
            return self._days_before(ordinal) >= count

        return _first_true(enough, guess)

    def _instant_at(self, reading: int) -> int:
        """The earliest instant (UTC microseconds) whose clock reading is ``reading``."""
        days, into = divmod(reading, _DAY_US)
        if into == 0:
            ordinal = self._first_ordinal_with(days)
        else:
            ordinal = self._first_ordinal_with(days + 1) - 1
        return (ordinal - _EPOCH_ORDINAL) * _DAY_US + into - self._offset_us


def _first_true(predicate: Callable[[int], bool], guess: int) -> int:
    """The smallest integer where a monotone (False..., True...) predicate holds."""
    step = 1
    if predicate(guess):
        high = guess
        low = guess - step
        while predicate(low):
            high = low
            step *= 2
            low = guess - step
    else:
        low = guess
        high = guess + step
        while not predicate(high):
            low = high
            step *= 2
            high = guess + step
    while high - low > 1:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle
    return high


def effective_calendar(chain: Sequence[CalendarSpec]) -> WorkingCalendar:
    """Layer tenant calendars, root first (ministry, province, commune).

    The nearest spec that sets a weekend wins (default Saturday and Sunday). For each date,
    the nearest spec that mentions it decides: a commune can add a local holiday, and a
    province can cancel a national holiday by listing the date as a working day.
    """
    weekend = DEFAULT_WEEKEND
    is_holiday: dict[date, bool] = {}
    for spec in chain:
        if spec.weekend is not None:
            weekend = spec.weekend
        for day in spec.holidays:
            is_holiday[day] = True
        for day in spec.working_days:
            is_holiday[day] = False
    return WorkingCalendar(
        weekend=weekend,
        holidays=frozenset(day for day, holiday in is_holiday.items() if holiday),
        working_days=frozenset(day for day, holiday in is_holiday.items() if not holiday),
    )


def _to_us(moment: datetime, what: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(instant_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=instant_us)


def _clock_for(mode: Mode, calendar: WorkingCalendar) -> Callable[[int], int]:
    if mode not in _MODES:
        raise ValueError(f"mode must be 'calendar' or 'working', got {mode!r}")
    if mode == "working":
        return calendar._clock
    return _identity


def _identity(instant_us: int) -> int:
    return instant_us


def _pause_spans(
    pauses: Sequence[Pause], open_until: int | None, after: int
) -> list[tuple[int, int]] | None:
    """Pauses as sorted, merged microsecond spans that end after ``after``.

    An open pause runs to ``open_until``; if that is None an open pause makes the result
    None (the clock's future is unknown).
    """
    spans: list[tuple[int, int]] = []
    for pause_start, pause_end in pauses:
        low = _to_us(pause_start, "a pause start")
        if pause_end is None:
            if open_until is None:
                return None
            high = open_until
        else:
            high = _to_us(pause_end, "a pause end")
            if high < low:
                raise ValueError("a pause cannot end before it starts")
        low = max(low, after)
        if high > low:
            spans.append((low, high))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def elapsed(
    start: datetime,
    end: datetime,
    *,
    mode: Mode,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
) -> timedelta:
    """Clock time in ``[start, end]`` outside every pause (an open pause runs to ``end``).

    Overlapping pauses count once. In "working" mode only time on working days counts.
    """
    clock = _clock_for(mode, calendar)
    low = _to_us(start, "start")
    high = _to_us(end, "end")
    spans = _pause_spans(pauses, high, low)
    if high <= low:
        return timedelta(0)
    assert spans is not None
    total = clock(high) - clock(low)
    for pause_low, pause_high in spans:
        if pause_low >= high:
            break
        total -= clock(min(pause_high, high)) - clock(pause_low)
    return timedelta(microseconds=total)


def due(
    start: datetime,
    duration: timedelta,
    *,
    mode: Mode,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
) -> datetime | None:
    """The earliest instant by which ``duration`` has elapsed, in UTC.

    None while any pause is open: the deadline is unknown while the case waits on the
    applicant. A duration of zero or less is due at ``start``.
    """
    clock = _clock_for(mode, calendar)
    low = _to_us(start, "start")
    spans = _pause_spans(pauses, None, low)
    if spans is None:
        return None
    if duration <= timedelta(0):
        return _from_us(low)
    remaining = duration // _MICROSECOND
    cursor = low
    for pause_low, pause_high in spans:
        available = clock(pause_low) - clock(cursor)
        if available >= remaining:
            break
        remaining -= available
        cursor = pause_high
    target = clock(cursor) + remaining
    if mode == "working":
        return _from_us(calendar._instant_at(target))
    return _from_us(target)


def sla_status(
    start: datetime,
    duration: timedelta,
    now: datetime,
    *,
    mode: Mode,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
    due_soon: timedelta | None = None,
) -> SlaStatus:
    """Where a case stands at ``now``.

    "paused" wins while a pause covers ``now``, even if the case is already late. Otherwise
    "due_soon" applies when what is left is at most ``due_soon`` or, by default, the smaller
    of 20% of ``duration`` and one day (of the same mode's time).
    """
    at = _to_us(now, "now")
    for pause_start, pause_end in pauses:
        if _to_us(pause_start, "a pause start") <= at and (
            pause_end is None or at < _to_us(pause_end, "a pause end")
        ):
            return "paused"
    spent = elapsed(start, now, mode=mode, calendar=calendar, pauses=pauses)
    if spent >= duration:
        return "overdue"
    threshold = due_soon if due_soon is not None else min(duration / 5, timedelta(days=1))
    if duration - spent <= threshold:
        return "due_soon"
    return "on_time"
