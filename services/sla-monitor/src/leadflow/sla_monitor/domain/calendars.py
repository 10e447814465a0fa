"""Which business calendar an SLA clock runs on (the calendar type is the kernel's)."""

from __future__ import annotations

from collections.abc import Mapping

from leadflow.events.calendar import BusinessCalendar

DEFAULT_CALENDAR_ID = "default"


def default_calendar() -> BusinessCalendar:
    """Mon-Fri 09:00-17:00 UTC: what a fresh install holds sales to until ops configure one."""
    return BusinessCalendar(calendar_id=DEFAULT_CALENDAR_ID, name="Mon-Fri 9-17 UTC")


def choose_calendar(
    calendars: Mapping[str, BusinessCalendar],
    policy_calendar_id: str | None,
    rep_id: str | None,
    team_id: str | None,
) -> BusinessCalendar:
    """The calendar an SLA runs on: the policy's own, else the rep's, else the team's, else default.

    A policy naming a calendar means "measure this in *these* hours" (a marketing-side policy
    runs on marketing's clock); otherwise the owner's working hours apply.
    """
    if policy_calendar_id and policy_calendar_id in calendars:
        return calendars[policy_calendar_id]
    if rep_id:
        for cal in calendars.values():
            if rep_id in cal.rep_ids:
                return cal
    if team_id:
        for cal in calendars.values():
            if team_id in cal.team_ids:
                return cal
    return calendars.get(DEFAULT_CALENDAR_ID) or default_calendar()
