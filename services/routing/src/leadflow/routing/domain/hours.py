"""A rep's working hours are the kernel's ``WorkingHours`` (``leadflow.events.calendar``), the
type sla-monitor's calendars use too: one notion of "at work now" for routing and SLAs.

Reps configured before that kept their hours as a list of windows (``[{"days": [0..6],
"start": "09:00", "end": "17:00"}]`` in the rep's time zone); that shape is still accepted and
read as the same hours, so stored reps and clients that send it keep working.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow.events.calendar import WEEKDAYS, WorkingHours, WorkingPeriod


class LegacyWindow(BaseModel):
    """The old shape of one window: hours on some weekdays (0 = Monday), rep's zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="0 = Monday ... 6 = Sunday")
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("days")
    @classmethod
    def _days_in_week(cls, days: list[int]) -> list[int]:
        if not days or any(d < 0 or d > 6 for d in days):
            raise ValueError("days must be weekday numbers 0 (Monday) .. 6 (Sunday)")
        return sorted(set(days))

    @model_validator(mode="after")
    def _start_before_end(self) -> LegacyWindow:
        if self.start >= self.end:
            raise ValueError("start must be before end (split overnight shifts in two windows)")
        return self


def _merged(spans: list[tuple[time, time]]) -> list[WorkingPeriod]:
    """One day's windows as periods; windows that overlap or touch become one period (the
    list shape allowed overlaps, ``WorkingHours`` does not)."""
    out: list[list[time]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [WorkingPeriod(start=s.strftime("%H:%M"), end=e.strftime("%H:%M")) for s, e in out]


def working_hours_of(value: Any, timezone: str) -> WorkingHours | dict[str, Any] | None:
    """What a rep's ``working_hours`` field holds, from either shape: None (always at work)
    for nothing or an empty list, the windows of a list as ``WorkingHours`` in the rep's zone,
    a ``WorkingHours`` (or its document) as given, in the rep's zone when it names none."""
    if value is None or value == []:
        return None
    if isinstance(value, list):
        days: dict[str, list[tuple[time, time]]] = defaultdict(list)
        for item in value:
            window = item if isinstance(item, LegacyWindow) else LegacyWindow.model_validate(item)
            for d in window.days:
                days[WEEKDAYS[d]].append((window.start, window.end))
        return WorkingHours(
            timezone=timezone, hours={d: _merged(spans) for d, spans in days.items()}
        )
    if isinstance(value, dict) and "timezone" not in value:
        return {**value, "timezone": timezone}
    if isinstance(value, WorkingHours) and "timezone" not in value.model_fields_set:
        return value.model_copy(update={"timezone": timezone})
    return value
