"""Business calendars and deadline arithmetic: the heart of every SLA verdict."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadflow.sla_monitor.domain import (
    BusinessCalendar,
    DomainError,
    Duration,
    WorkingPeriod,
    add_business_time,
    add_calendar_time,
    business_time_between,
    deadline_for,
    default_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def berlin_calendar(**kw: object) -> BusinessCalendar:
    return BusinessCalendar(calendar_id="de", timezone="Europe/Berlin", **kw)  # type: ignore[arg-type]


def ny_calendar(**kw: object) -> BusinessCalendar:
    return BusinessCalendar(calendar_id="us", timezone="America/New_York", **kw)  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- the default calendar -------------------------------------------------------------


def test_default_calendar_is_weekdays_nine_to_five_utc() -> None:
    cal = default_calendar()
    assert cal.timezone == "UTC"
    assert cal.is_open(utc(2026, 3, 2, 9, 0))  # Monday
    assert not cal.is_open(utc(2026, 3, 2, 17, 0))
    assert not cal.is_open(utc(2026, 3, 7, 12, 0))  # Saturday
    assert cal.day_length() == timedelta(hours=8)


def test_deadline_within_the_same_working_day() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 2, 10, 0), 4 * H, cal) == utc(2026, 3, 2, 14, 0)


def test_deadline_rolls_over_to_next_morning() -> None:
    cal = default_calendar()
    # Monday 15:00 + 4h: 2h on Monday, 2h on Tuesday from 09:00.
    assert add_business_time(utc(2026, 3, 2, 15, 0), 4 * H, cal) == utc(2026, 3, 3, 11, 0)


def test_deadline_landing_on_close_is_the_close_not_next_opening() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 6, 13, 0), 4 * H, cal) == utc(2026, 3, 6, 17, 0)


def test_friday_afternoon_lead_is_due_monday() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 6, 16, 0), 4 * H, cal) == utc(2026, 3, 9, 12, 0)


def test_lead_created_at_weekend_starts_counting_monday_morning() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 7, 22, 30), 4 * H, cal) == utc(2026, 3, 9, 13, 0)


def test_lead_created_before_opening_starts_counting_at_opening() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 3, 6, 0), 1 * H, cal) == utc(2026, 3, 3, 10, 0)


def test_lead_created_after_close_starts_counting_next_morning() -> None:
    cal = default_calendar()
    assert add_business_time(utc(2026, 3, 3, 19, 0), 30 * timedelta(minutes=1), cal) == utc(
        2026, 3, 4, 9, 30
    )


def test_zero_duration_is_the_start_itself_even_outside_hours() -> None:
    cal = default_calendar()
    start = utc(2026, 3, 7, 3, 0)
    assert add_business_time(start, timedelta(0), cal) == start


def test_negative_duration_is_refused() -> None:
    with pytest.raises(DomainError) as info:
        add_business_time(utc(2026, 3, 2, 10), -H, default_calendar())
    assert info.value.field == "duration"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(DomainError):
        add_business_time(datetime(2026, 3, 2, 10), H, default_calendar())


def test_deadline_spans_a_holiday() -> None:
    # Thursday 2026-04-02 15:00 + 8h in Berlin, Good Friday 04-03 and Easter Monday 04-06 off.
    cal = berlin_calendar(holidays=[date(2026, 4, 3), date(2026, 4, 6)])
    start = datetime(2026, 4, 2, 15, 0, tzinfo=BERLIN)
    due = add_business_time(start, 8 * H, cal)
    assert due == datetime(2026, 4, 7, 15, 0, tzinfo=BERLIN)
    assert business_time_between(start, due, cal) == 8 * H


def test_lead_created_on_a_holiday_counts_from_next_working_day() -> None:
    cal = default_calendar().model_copy(update={"holidays": [date(2026, 12, 25)]})
    due = add_business_time(utc(2026, 12, 25, 11, 0), 2 * H, cal)
    # 12-25 is a Friday: next working time is Monday 12-28.
    assert due == utc(2026, 12, 28, 11, 0)


def test_split_shift_skips_the_lunch_break() -> None:
    periods = [WorkingPeriod(start="09:00", end="12:00"), WorkingPeriod(start="13:00", end="17:00")]
    cal = BusinessCalendar(calendar_id="lunch", hours={"mon": periods})
    assert add_business_time(utc(2026, 3, 2, 11, 0), 2 * H, cal) == utc(2026, 3, 2, 14, 0)
    assert business_time_between(utc(2026, 3, 2, 11), utc(2026, 3, 2, 14), cal) == 2 * H
    # Only Mondays work: the rest of Monday, then next Monday.
    assert add_business_time(utc(2026, 3, 2, 16, 0), 2 * H, cal) == utc(2026, 3, 9, 10, 0)


def test_period_ending_at_midnight_is_allowed() -> None:
    cal = BusinessCalendar(
        calendar_id="late", hours={"mon": [WorkingPeriod(start="20:00", end="24:00")]}
    )
    assert add_business_time(utc(2026, 3, 2, 21), 3 * H, cal) == utc(2026, 3, 3, 0, 0)


def test_working_hours_in_new_york_local_time() -> None:
    cal = ny_calendar()
    # 2026-01-05 Monday 16:00 EST (21:00 UTC) + 2h -> Tuesday 10:00 EST (15:00 UTC).
    start = datetime(2026, 1, 5, 16, 0, tzinfo=NEW_YORK)
    assert add_business_time(start, 2 * H, cal) == utc(2026, 1, 6, 15, 0)


# -- DST ------------------------------------------------------------------------------


def test_berlin_spring_forward_weekend_keeps_working_day_length() -> None:
    # DST starts Sunday 2026-03-29 in Berlin. Friday 16:00 CET + 2h -> Monday 10:00 CEST.
    cal = berlin_calendar()
    start = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)
    due = add_business_time(start, 2 * H, cal)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert due == utc(2026, 3, 30, 8, 0)
    assert business_time_between(start, due, cal) == 2 * H


def test_berlin_fall_back_weekend_keeps_working_day_length() -> None:
    # DST ends Sunday 2026-10-25. Friday 16:00 CEST + 9h = 1h Fri, 8h Mon -> Monday 17:00 CET.
    cal = berlin_calendar()
    start = datetime(2026, 10, 23, 16, 0, tzinfo=BERLIN)
    due = add_business_time(start, 9 * H, cal)
    assert due == datetime(2026, 10, 26, 17, 0, tzinfo=BERLIN)
    assert due == utc(2026, 10, 26, 16, 0)


def test_new_york_spring_forward_on_a_working_sunday() -> None:
    # A 24/7-ish Sunday shift 00:00-06:00 on the day clocks jump 02:00 -> 03:00 (2026-03-08):
    # only 5 real hours pass.
    cal = ny_calendar(hours={"sun": [WorkingPeriod(start="00:00", end="06:00")]})
    day = date(2026, 3, 8)
    ((start, end),) = cal.periods_on(day)
    assert end - start == 5 * H
    assert business_time_between(start, end, cal) == 5 * H


def test_new_york_fall_back_on_a_working_sunday() -> None:
    # 2026-11-01: clocks fall back 02:00 -> 01:00; a 00:00-06:00 shift lasts 7 real hours.
    cal = ny_calendar(hours={"sun": [WorkingPeriod(start="00:00", end="06:00")]})
    ((start, end),) = cal.periods_on(date(2026, 11, 1))
    assert end - start == 7 * H


def test_shift_starting_inside_the_dst_gap_starts_after_the_jump() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29; the shift effectively opens at 03:30 CEST.
    cal = berlin_calendar(hours={"sun": [WorkingPeriod(start="02:30", end="05:00")]})
    ((start, end),) = cal.periods_on(date(2026, 3, 29))
    assert start == utc(2026, 3, 29, 1, 30)
    assert end == datetime(2026, 3, 29, 5, 0, tzinfo=BERLIN)
    assert end - start == 90 * timedelta(minutes=1)


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


# -- business_time_between ------------------------------------------------------------


def test_business_time_between_over_a_weekend() -> None:
    cal = default_calendar()
    assert business_time_between(utc(2026, 3, 6, 16), utc(2026, 3, 9, 10), cal) == 2 * H


def test_business_time_between_reversed_is_zero() -> None:
    cal = default_calendar()
    assert business_time_between(utc(2026, 3, 9, 10), utc(2026, 3, 6, 16), cal) == timedelta(0)


def test_business_time_between_outside_hours_is_zero() -> None:
    cal = default_calendar()
    assert business_time_between(utc(2026, 3, 7, 1), utc(2026, 3, 8, 23), cal) == timedelta(0)


# -- validation -----------------------------------------------------------------------


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        BusinessCalendar(calendar_id="x", timezone="Mars/Olympus")


def test_overlapping_periods_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        BusinessCalendar(
            calendar_id="x",
            hours={
                "mon": [
                    WorkingPeriod(start="09:00", end="13:00"),
                    WorkingPeriod(start="12:00", end="17:00"),
                ]
            },
        )


def test_period_ending_before_start_is_refused() -> None:
    with pytest.raises(ValidationError):
        WorkingPeriod(start="17:00", end="09:00")


def test_bad_weekday_is_refused() -> None:
    with pytest.raises(ValidationError, match="weekday"):
        BusinessCalendar(calendar_id="x", hours={"funday": []})


def test_calendar_without_working_hours_cannot_compute_deadlines() -> None:
    cal = BusinessCalendar(calendar_id="never", hours={})
    with pytest.raises(DomainError) as info:
        add_business_time(utc(2026, 3, 2), H, cal)
    assert info.value.field == "hours"
    assert business_time_between(utc(2026, 3, 2), utc(2026, 3, 9), cal) == timedelta(0)


# -- properties -----------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=60 * 60 * 24 * 20).map(
    lambda s: timedelta(seconds=s)
)


def calendar_in(zone: str, holidays: list[date]) -> BusinessCalendar:
    return BusinessCalendar(
        calendar_id="p",
        timezone=zone,
        hours={
            "mon": [
                WorkingPeriod(start="08:00", end="12:00"),
                WorkingPeriod(start="13:00", end="18:00"),
            ],
            "tue": [WorkingPeriod(start="09:00", end="17:00")],
            "wed": [WorkingPeriod(start="00:00", end="24:00")],
            "thu": [
                WorkingPeriod(start="01:30", end="03:30"),
                WorkingPeriod(start="09:00", end="17:00"),
            ],
            "fri": [WorkingPeriod(start="09:00", end="15:00")],
            "sun": [WorkingPeriod(start="02:00", end="04:00")],
        },
        holidays=holidays,
    )


calendars = st.builds(
    calendar_in,
    st.sampled_from(ZONES),
    st.lists(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)), max_size=30),
)


@settings(max_examples=300)
@given(instants, durations, calendars)
def test_business_time_between_inverts_add_business_time(
    start: datetime, d: timedelta, cal: BusinessCalendar
) -> None:
    due = add_business_time(start, d, cal)
    assert due >= start
    assert business_time_between(start, due, cal) == d


@settings(max_examples=200)
@given(instants, durations, durations, calendars)
def test_deadlines_are_monotone_in_duration(
    start: datetime, d1: timedelta, d2: timedelta, cal: BusinessCalendar
) -> None:
    lo, hi = sorted((d1, d2))
    assert add_business_time(start, lo, cal) <= add_business_time(start, hi, cal)


@settings(max_examples=200)
@given(instants, instants, calendars)
def test_adding_the_business_time_between_never_overshoots(
    a: datetime, b: datetime, cal: BusinessCalendar
) -> None:
    a, b = sorted((a, b))
    between = business_time_between(a, b, cal)
    assert between <= b - a
    assert add_business_time(a, between, cal) <= b


@settings(max_examples=200)
@given(instants, instants, instants, calendars)
def test_business_time_is_additive_over_consecutive_spans(
    a: datetime, b: datetime, c: datetime, cal: BusinessCalendar
) -> None:
    a, b, c = sorted((a, b, c))
    assert business_time_between(a, c, cal) == business_time_between(
        a, b, cal
    ) + business_time_between(b, c, cal)


@settings(max_examples=100)
@given(instants, st.integers(min_value=1, max_value=60 * 60 * 24 * 5), calendars)
def test_a_positive_deadline_always_lands_inside_or_at_the_end_of_working_time(
    start: datetime, seconds: int, cal: BusinessCalendar
) -> None:
    due = add_business_time(start, timedelta(seconds=seconds), cal)
    assert cal.is_open(due - timedelta(microseconds=1))
