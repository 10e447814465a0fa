"""SLA deadline arithmetic on top of the kernel's calendar: the default calendar, calendar
(not business) time, and business days counted in the calendar's day length. The calendar
itself is tested in tests/unit/events/test_calendar.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from leadflow.sla_monitor.domain import (
    Duration,
    add_calendar_time,
    deadline_for,
    default_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_default_calendar_is_weekdays_nine_to_five_utc() -> None:
    cal = default_calendar()
    assert cal.timezone == "UTC"
    assert cal.is_open(utc(2026, 3, 2, 9, 0))  # Monday
    assert not cal.is_open(utc(2026, 3, 2, 17, 0))
    assert not cal.is_open(utc(2026, 3, 7, 12, 0))  # Saturday
    assert cal.day_length() == timedelta(hours=8)


def test_calendar_days_keep_local_wall_clock_across_dst() -> None:
    # 14 calendar days from Friday 2026-03-20 12:00 Berlin -> 2026-04-03 12:00 Berlin (CEST),
    # which is one real hour less than 14*24h.
    start = datetime(2026, 3, 20, 12, 0, tzinfo=BERLIN)
    due = add_calendar_time(start, 14, "days", BERLIN)
    assert due == datetime(2026, 4, 3, 12, 0, tzinfo=BERLIN)
    assert due - start == timedelta(days=14) - H


def test_calendar_hours_are_elapsed_time_across_dst() -> None:
    start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)
    due = add_calendar_time(start, 3, "hours", BERLIN)
    assert due - start == 3 * H
    assert due.astimezone(BERLIN).hour == 5  # 01:00 CET + 3h real = 05:00 CEST


def test_business_days_count_the_calendars_day_length() -> None:
    cal = default_calendar()
    # Tuesday 15:00 + 1 business day (8h) -> Wednesday 15:00.
    due = deadline_for(utc(2026, 3, 3, 15), Duration(amount=1, unit="days"), cal)
    assert due == utc(2026, 3, 4, 15)
    custom = cal.model_copy(update={"business_day_hours": 4.0})
    assert deadline_for(utc(2026, 3, 3, 9), Duration(amount=1, unit="days"), custom) == utc(
        2026, 3, 3, 13
    )


def test_calendar_time_ignores_working_hours() -> None:
    due = deadline_for(
        utc(2026, 3, 7, 22), Duration(amount=30, unit="minutes", business=False), default_calendar()
    )
    assert due == utc(2026, 3, 7, 22, 30)
