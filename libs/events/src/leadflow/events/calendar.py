"""Working hours: when a business (a team, a rep, an SLA's clock) is open, and business time.

One type for every service that asks "is this person or team working now?" (routing's rep
availability) or "when has N hours of working time passed?" (sla-monitor's deadlines):

- ``WorkingHours``: weekly working periods in local wall-clock time of one IANA zone, plus
  holidays (whole local days off); ``is_open(instant)``, ``periods_on(day)``,
  ``intervals_from(instant)``.
- ``BusinessCalendar``: named ``WorkingHours`` with the length of a "business day" and whose
  clock it is (reps and teams), as sla-monitor stores and serves them.
- ``add_business_time`` / ``business_time_between``: deadline arithmetic.

Business time is *real elapsed time while the business is open*: working hours are written
in local wall-clock time and converted to instants per day, so a 9-17 day is eight real hours
even on a DST change day, and an interval that crosses a DST jump (rare, at night) counts the
hours that really passed. A working time skipped by a spring-forward gap maps past the gap.
A shift over midnight is two periods (``mon 22:00-24:00`` and ``tue 00:00-06:00``): they join
into one open stretch because open/closed is decided on instants, never per local day.

Pure (no I/O, no clock): the caller passes the instant. Core layer: pydantic and zoneinfo only.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
# How far ahead deadline arithmetic looks for working time before declaring the hours empty.
MAX_SEARCH_DAYS = 366 * 5


class CalendarError(ValueError):
    """Calendar arithmetic was given input it cannot work with; ``field`` names the culprit
    (``duration``, ``datetime``, ``hours``, ``holidays``) so an API can answer problem+json."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@functools.lru_cache(maxsize=1024)
def _parse_hhmm(text: str) -> int:
    """Minutes since local midnight; cached because routing asks ``is_open`` per rep per lead."""
    m = _HHMM.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not HH:MM")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day (00:00-24:00)")
    return hours * 60 + minutes


class WorkingPeriod(BaseModel):
    """One stretch of working hours on a weekday, local wall-clock, ``end`` may be ``24:00``."""

    model_config = ConfigDict(frozen=True)

    start: str
    end: str

    @model_validator(mode="after")
    def _ordered(self) -> WorkingPeriod:
        if _parse_hhmm(self.start) >= _parse_hhmm(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self

    @property
    def start_minute(self) -> int:
        return _parse_hhmm(self.start)

    @property
    def end_minute(self) -> int:
        return _parse_hhmm(self.end)


def nine_to_five() -> dict[str, list[WorkingPeriod]]:
    """Mon-Fri 09:00-17:00: the hours a calendar has when none are given."""
    day = [WorkingPeriod(start="09:00", end="17:00")]
    return {d: list(day) for d in WEEKDAYS[:5]}


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _weekday_keys(value: dict[str, list[WorkingPeriod]]) -> dict[str, list[WorkingPeriod]]:
    out: dict[str, list[WorkingPeriod]] = {}
    for key, periods in value.items():
        day = key.strip().lower()[:3]
        if day not in WEEKDAYS:
            raise ValueError(f"{key!r} is not a weekday (mon..sun)")
        ordered = sorted(periods, key=lambda p: p.start_minute)
        for before, after in itertools.pairwise(ordered):
            if after.start_minute < before.end_minute:
                raise ValueError(f"working periods overlap on {day}")
        out[day] = ordered
    return out


class _Hours:
    """The arithmetic both models share; they declare ``timezone``, ``hours``, ``holidays``.

    A mixin rather than a common base model so that each model keeps its fields in the order
    its API documents them (pydantic puts a base model's fields first).
    """

    if TYPE_CHECKING:
        timezone: str
        hours: dict[str, list[WorkingPeriod]]
        holidays: list[date]

    def _label(self) -> str:
        return "working hours"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def has_working_time(self) -> bool:
        return any(self.hours.get(d) for d in WEEKDAYS)

    def longest_day(self) -> timedelta:
        """The working time of the longest weekday (zero when there is none)."""
        return timedelta(
            minutes=max(
                (sum(p.end_minute - p.start_minute for p in ps) for ps in self.hours.values()),
                default=0,
            )
        )

    def periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of one local date as aware UTC instants (empty on holidays)."""
        if day in self.holidays:
            return []
        periods = self.hours.get(WEEKDAYS[day.weekday()], [])
        zone = self.zone
        out: list[tuple[datetime, datetime]] = []
        for p in periods:
            start = _local_instant(day, p.start_minute, zone)
            end = _local_instant(day, p.end_minute, zone)
            if end > start:
                out.append((start, end))
        return out

    def intervals_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) that end after ``instant``, clipped to start no earlier."""
        if not self.has_working_time():
            raise CalendarError("hours", f"{self._label()} has no working hours")
        instant = as_utc(instant)
        # Start a day early: a local day's intervals may begin before ``instant``'s local date.
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_SEARCH_DAYS):
            for start, end in self.periods_on(day):
                if end <= instant:
                    continue
                yield (max(start, instant), end)
            day += timedelta(days=1)
        raise CalendarError(
            "holidays", f"{self._label()} has no working time in {MAX_SEARCH_DAYS} days"
        )

    def is_open(self, instant: datetime) -> bool:
        """Is ``instant`` inside working time? Periods are half-open: 17:00 of 09-17 is closed.

        The local day before and after are asked too, so a period of the neighbouring local
        day that covers ``instant`` in real time (a DST shift, a 24:00 end) counts.
        """
        instant = as_utc(instant)
        day = instant.astimezone(self.zone).date()
        return any(
            s <= instant < e
            for d in (day - timedelta(days=1), day, day + timedelta(days=1))
            for s, e in self.periods_on(d)
        )


class WorkingHours(_Hours, BaseModel):
    """When someone works: weekly periods in one time zone, and holidays (whole days off)."""

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"
    hours: dict[str, list[WorkingPeriod]] = Field(default_factory=nine_to_five)
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone_ok(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("hours")
    @classmethod
    def _days_ok(cls, value: dict[str, list[WorkingPeriod]]) -> dict[str, list[WorkingPeriod]]:
        return _weekday_keys(value)


class BusinessCalendar(_Hours, BaseModel):
    """Working hours per weekday in one time zone, plus holidays (whole local days off)."""

    model_config = ConfigDict(frozen=True)

    calendar_id: str = Field(min_length=1, max_length=100)
    name: str = ""
    timezone: str = "UTC"
    hours: dict[str, list[WorkingPeriod]] = Field(default_factory=nine_to_five)
    holidays: list[date] = []
    # Length of one "business day" for durations in days; defaults to the longest working day.
    business_day_hours: float | None = Field(default=None, gt=0, le=24)
    # Whose clock this is: reps and teams listed here are held to these hours.
    rep_ids: list[str] = []
    team_ids: list[str] = []

    @field_validator("timezone")
    @classmethod
    def _zone_ok(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("hours")
    @classmethod
    def _days_ok(cls, value: dict[str, list[WorkingPeriod]]) -> dict[str, list[WorkingPeriod]]:
        return _weekday_keys(value)

    def _label(self) -> str:
        return f"calendar {self.calendar_id!r}"

    def working_hours(self) -> WorkingHours:
        """The calendar's hours without its name and owners."""
        return WorkingHours(timezone=self.timezone, hours=self.hours, holidays=self.holidays)

    def day_length(self) -> timedelta:
        """What one business day is worth when a policy counts in days."""
        if self.business_day_hours is not None:
            return timedelta(hours=self.business_day_hours)
        return self.longest_day() or timedelta(hours=8)


Hours = WorkingHours | BusinessCalendar
"""What the arithmetic below accepts: a rep's working hours or a named calendar."""


def _local_instant(day: date, minute_of_day: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time; a time skipped by DST maps past the gap."""
    if minute_of_day >= 24 * 60:
        naive = datetime.combine(day + timedelta(days=1), time(0))
    else:
        naive = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60))
    return naive.replace(tzinfo=zone).astimezone(UTC)


def as_utc(instant: datetime) -> datetime:
    """``instant`` in UTC; a naive datetime is refused (whose wall clock would it be?)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError("datetime", "naive datetimes are ambiguous; pass an aware datetime")
    return instant.astimezone(UTC)


def add_business_time(start: datetime, duration: timedelta, calendar: Hours) -> datetime:
    """The instant at which ``duration`` of working time has passed after ``start``.

    A deadline that lands exactly on the close of business is that close (Friday 17:00), not
    the next opening. A zero duration is ``start`` itself.
    """
    if duration < timedelta(0):
        raise CalendarError("duration", "must not be negative")
    start = as_utc(start)
    if duration == timedelta(0):
        return start
    remaining = duration
    for s, e in calendar.intervals_from(start):
        span = e - s
        if remaining <= span:
            return s + remaining
        remaining -= span
    raise AssertionError("unreachable: intervals_from raises when exhausted")  # pragma: no cover


def business_time_between(a: datetime, b: datetime, calendar: Hours) -> timedelta:
    """Working time in ``[a, b)``; zero when ``b`` is not after ``a``."""
    a, b = as_utc(a), as_utc(b)
    if b <= a:
        return timedelta(0)
    total = timedelta(0)
    if not calendar.has_working_time():
        return total
    day = a.astimezone(calendar.zone).date() - timedelta(days=1)
    last = b.astimezone(calendar.zone).date() + timedelta(days=1)
    while day <= last:
        for s, e in calendar.periods_on(day):
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total
