"""A rep's working hours are the kernel's ``WorkingHours`` (one type with sla-monitor's
calendars): availability is its ``is_open``, and the older list-of-windows shape that stored
reps and clients send is read as the same hours."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from leadflow.events.calendar import WorkingHours, WorkingPeriod
from leadflow.routing.domain import Rep, RoutingState, unavailable_reason

WED_15_UTC = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # 16:00 in Berlin, a Wednesday


def test_the_old_window_list_is_read_as_working_hours_in_the_reps_zone() -> None:
    rep = Rep(
        id="a",
        timezone="Europe/Berlin",
        working_hours=[
            {"days": [0, 2], "start": "09:00", "end": "12:00"},
            {"days": [2], "start": "11:00", "end": "17:30"},  # overlaps: one period
        ],
    )
    assert rep.working_hours == WorkingHours(
        timezone="Europe/Berlin",
        hours={
            "mon": [WorkingPeriod(start="09:00", end="12:00")],
            "wed": [WorkingPeriod(start="09:00", end="17:30")],
        },
    )
    assert unavailable_reason(rep, RoutingState(), WED_15_UTC) is None


def test_a_rep_document_round_trips_in_the_new_shape() -> None:
    rep = Rep(id="a", timezone="Asia/Tokyo", working_hours=[{"days": [4]}])
    doc = rep.model_dump(mode="json")
    assert doc["working_hours"]["timezone"] == "Asia/Tokyo"
    assert doc["working_hours"]["hours"] == {"fri": [{"start": "09:00", "end": "17:00"}]}
    assert Rep.model_validate(doc) == rep


def test_no_hours_or_an_empty_list_means_always_available() -> None:
    assert Rep(id="a").working_hours is None
    assert Rep(id="a", working_hours=[]).working_hours is None
    night = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # a Sunday night
    assert unavailable_reason(Rep(id="a", working_hours=[]), RoutingState(), night) is None


def test_hours_without_a_zone_are_in_the_reps_zone() -> None:
    rep = Rep(id="a", timezone="America/New_York", working_hours={"hours": {"wed": []}})
    assert rep.working_hours is not None and rep.working_hours.timezone == "America/New_York"


def test_outside_working_hours_names_the_local_time_and_zone() -> None:
    rep = Rep(id="a", working_hours=WorkingHours(timezone="Asia/Tokyo"))  # Thu 00:00 there
    assert unavailable_reason(rep, RoutingState(), WED_15_UTC) == (
        "outside working hours (Thu 00:00 Asia/Tokyo)"
    )


def test_a_holiday_makes_the_rep_unavailable_all_day() -> None:
    hours = WorkingHours(timezone="Europe/Berlin", holidays=[date(2026, 11, 18)])
    rep = Rep(id="a", working_hours=hours)
    assert unavailable_reason(rep, RoutingState(), WED_15_UTC) == (
        "outside working hours (Wed 16:00 Europe/Berlin)"
    )


def test_an_overnight_shift_is_two_periods_and_open_across_midnight() -> None:
    rep = Rep(
        id="night",
        timezone="UTC",
        working_hours={
            "hours": {
                "wed": [{"start": "22:00", "end": "24:00"}],
                "thu": [{"start": "00:00", "end": "06:00"}],
            }
        },
    )
    for hour, day in ((23, 18), (2, 19)):
        at = datetime(2026, 11, day, hour, 0, tzinfo=UTC)
        assert unavailable_reason(rep, RoutingState(), at) is None
    assert unavailable_reason(rep, RoutingState(), WED_15_UTC) is not None


def test_a_bad_window_or_period_is_refused_naming_working_hours() -> None:
    with pytest.raises(ValidationError) as old:
        Rep(id="a", working_hours=[{"days": [7]}])
    assert old.value.errors()[0]["loc"][0] == "working_hours"
    with pytest.raises(ValidationError) as new:
        Rep(id="a", working_hours={"hours": {"mon": [{"start": "17:00", "end": "09:00"}]}})
    assert new.value.errors()[0]["loc"][0] == "working_hours"
