"""Working hours and business time (``leadflow.events.calendar``): every SLA deadline and
every "is this rep working now?" of routing is computed here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadflow.events.calendar import (
    BusinessCalendar,
    CalendarError,
    WorkingHours,
    WorkingPeriod,
    add_business_time,
    business_time_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def berlin_calendar(**kw: object) -> BusinessCalendar:
    return BusinessCalendar(calendar_id="de", timezone="Europe/Berlin", **kw)  # type: ignore[arg-type]


def ny_calendar(**kw: object) -> BusinessCalendar:
    return BusinessCalendar(calendar_id="us", timezone="America/New_York", **kw)  # type: ignore[arg-type]


def default_calendar() -> BusinessCalendar:
    """Mon-Fri 09:00-17:00 UTC: what a calendar is when only its id is given."""
    return BusinessCalendar(calendar_id="default")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- deadlines -------------------------------------------------------------------------


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
    with pytest.raises(CalendarError) as info:
        add_business_time(utc(2026, 3, 2, 10), -H, default_calendar())
    assert info.value.field == "duration"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(CalendarError):
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


# -- is_open: when someone is working -------------------------------------------------


def test_a_calendar_without_hours_is_nine_to_five_on_weekdays() -> None:
    hours = WorkingHours()
    assert hours.timezone == "UTC"
    assert hours.is_open(utc(2026, 3, 2, 9, 0))  # Monday, opening minute
    assert hours.is_open(utc(2026, 3, 2, 16, 59))
    assert not hours.is_open(utc(2026, 3, 2, 17, 0))  # closing is closed
    assert not hours.is_open(utc(2026, 3, 2, 8, 59))
    assert not hours.is_open(utc(2026, 3, 7, 12, 0))  # Saturday
    assert default_calendar().day_length() == timedelta(hours=8)


def test_is_open_reads_the_local_wall_clock_of_the_zone() -> None:
    hours = WorkingHours(timezone="America/New_York")
    # Monday 2026-01-05 09:30 EST is 14:30 UTC; 09:30 UTC is 04:30 EST.
    assert hours.is_open(utc(2026, 1, 5, 14, 30))
    assert not hours.is_open(utc(2026, 1, 5, 9, 30))
    # Friday 21:30 UTC is 16:30 EST: still open in New York, closed at 17:00 EST.
    assert hours.is_open(utc(2026, 1, 9, 21, 30))
    assert not hours.is_open(utc(2026, 1, 9, 22, 0))


def test_is_open_is_closed_on_a_holiday_and_open_the_day_after() -> None:
    hours = WorkingHours(timezone="Europe/Berlin", holidays=[date(2026, 12, 25)])
    assert not hours.is_open(datetime(2026, 12, 25, 11, 0, tzinfo=BERLIN))  # a Friday
    assert hours.is_open(datetime(2026, 12, 24, 11, 0, tzinfo=BERLIN))
    assert hours.is_open(datetime(2026, 12, 28, 9, 0, tzinfo=BERLIN))


def test_a_holiday_is_a_local_day_not_a_utc_day() -> None:
    # 2026-01-02 00:30 UTC is Friday 09:30 in Tokyo: that local day is the holiday, though
    # in UTC it is only just past midnight.
    hours = WorkingHours(timezone="Asia/Tokyo", holidays=[date(2026, 1, 2)])
    assert not hours.is_open(utc(2026, 1, 2, 0, 30))  # Friday 09:30 local, a holiday
    assert hours.is_open(utc(2026, 1, 5, 0, 30))  # Monday 09:30 local


def test_an_overnight_shift_is_two_periods_that_join() -> None:
    # Monday 22:00 to Tuesday 06:00 Berlin: open through local midnight.
    hours = WorkingHours(
        timezone="Europe/Berlin",
        hours={
            "mon": [WorkingPeriod(start="22:00", end="24:00")],
            "tue": [WorkingPeriod(start="00:00", end="06:00")],
        },
    )
    assert not hours.is_open(datetime(2026, 3, 2, 21, 59, tzinfo=BERLIN))
    assert hours.is_open(datetime(2026, 3, 2, 22, 0, tzinfo=BERLIN))
    assert hours.is_open(datetime(2026, 3, 2, 23, 59, 59, tzinfo=BERLIN))
    assert hours.is_open(datetime(2026, 3, 3, 0, 0, tzinfo=BERLIN))  # midnight is inside
    assert hours.is_open(datetime(2026, 3, 3, 5, 59, tzinfo=BERLIN))
    assert not hours.is_open(datetime(2026, 3, 3, 6, 0, tzinfo=BERLIN))
    # Eight real hours; the deadline arithmetic sees one stretch.
    start = datetime(2026, 3, 2, 22, 0, tzinfo=BERLIN)
    assert add_business_time(start, 8 * H, hours) == datetime(2026, 3, 3, 6, 0, tzinfo=BERLIN)
    assert business_time_between(start, start + 24 * H, hours) == 8 * H


def test_an_overnight_shift_whose_second_half_is_a_holiday_stops_at_midnight() -> None:
    hours = WorkingHours(
        hours={
            "mon": [WorkingPeriod(start="22:00", end="24:00")],
            "tue": [WorkingPeriod(start="00:00", end="06:00")],
        },
        holidays=[date(2026, 3, 3)],
    )
    assert hours.is_open(utc(2026, 3, 2, 23, 0))
    assert not hours.is_open(utc(2026, 3, 3, 1, 0))


def test_is_open_across_the_spring_forward_night() -> None:
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST. A Sunday 01:00-05:00 shift is three
    # real hours: 00:00-03:00 UTC.
    hours = WorkingHours(
        timezone="Europe/Berlin", hours={"sun": [WorkingPeriod(start="01:00", end="05:00")]}
    )
    assert not hours.is_open(utc(2026, 3, 28, 23, 59))
    assert hours.is_open(utc(2026, 3, 29, 0, 0))  # 01:00 CET
    assert hours.is_open(utc(2026, 3, 29, 1, 0))  # 03:00 CEST, right after the jump
    assert hours.is_open(utc(2026, 3, 29, 2, 59))  # 04:59 CEST
    assert not hours.is_open(utc(2026, 3, 29, 3, 0))  # 05:00 CEST
    ((start, end),) = hours.periods_on(date(2026, 3, 29))
    assert end - start == 3 * H


def test_is_open_across_the_fall_back_night() -> None:
    # New York 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00-03:00 local is three
    # real hours, and both 01:30s are inside.
    hours = WorkingHours(
        timezone="America/New_York", hours={"sun": [WorkingPeriod(start="01:00", end="03:00")]}
    )
    assert hours.is_open(utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    assert hours.is_open(utc(2026, 11, 1, 6, 30))  # 01:30 EST
    assert hours.is_open(utc(2026, 11, 1, 7, 59))  # 02:59 EST
    assert not hours.is_open(utc(2026, 11, 1, 8, 0))  # 03:00 EST
    ((start, end),) = hours.periods_on(date(2026, 11, 1))
    assert end - start == 3 * H


def test_nine_to_five_stays_eight_real_hours_on_a_dst_day_in_local_time() -> None:
    # Monday after the Berlin switch: 09:00 CEST is 07:00 UTC, not 08:00.
    hours = WorkingHours(timezone="Europe/Berlin")
    assert hours.is_open(utc(2026, 3, 30, 7, 0))
    assert not hours.is_open(utc(2026, 3, 27, 7, 0))  # the Friday before: 08:00 CET


def test_is_open_refuses_a_naive_datetime() -> None:
    with pytest.raises(CalendarError) as info:
        WorkingHours().is_open(datetime(2026, 3, 2, 10))
    assert info.value.field == "datetime"


def test_a_calendar_and_its_working_hours_agree() -> None:
    cal = BusinessCalendar(
        calendar_id="de",
        timezone="Europe/Berlin",
        holidays=[date(2026, 4, 3)],
        rep_ids=["r1"],
    )
    hours = cal.working_hours()
    assert hours == WorkingHours(timezone="Europe/Berlin", holidays=[date(2026, 4, 3)])
    start = datetime(2026, 4, 2, 15, 0, tzinfo=BERLIN)
    assert add_business_time(start, 8 * H, hours) == add_business_time(start, 8 * H, cal)
    assert hours.is_open(start) and cal.is_open(start)


def test_working_hours_without_working_time_name_themselves_in_the_error() -> None:
    with pytest.raises(CalendarError, match="working hours has no working hours") as info:
        add_business_time(utc(2026, 3, 2), H, WorkingHours(hours={}))
    assert info.value.field == "hours"
    assert not WorkingHours(hours={}).is_open(utc(2026, 3, 2, 10))


def test_working_hours_validate_like_a_calendar() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        WorkingHours(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="weekday"):
        WorkingHours(hours={"funday": []})
    with pytest.raises(ValidationError, match="HH:MM"):
        WorkingPeriod(start="9am", end="17:00")
    with pytest.raises(ValidationError, match="time of day"):
        WorkingPeriod(start="09:00", end="24:30")


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
    with pytest.raises(CalendarError) as info:
        add_business_time(utc(2026, 3, 2), H, cal)
    assert info.value.field == "hours"
    assert "calendar 'never'" in str(info.value)
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
