"""SLA policies: which leads a policy applies to, how long it gives, its escalation ladder,
and the deadline arithmetic (business or calendar time) it is measured with."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from leadflow.events.calendar import (
    BusinessCalendar,
    add_business_time,
    as_utc,
    business_time_between,
)
from leadflow.events.lifecycle import Stage
from leadflow.sla_monitor.domain.facts import LeadFacts

EscalationAction = Literal["remind_owner", "notify_manager", "reassign", "return_to_marketing"]
DurationUnit = Literal["minutes", "hours", "days"]


class DomainError(ValueError):
    """A rule was given input it cannot work with; ``field`` names the culprit for problem+json."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def add_calendar_time(
    start: datetime, amount: float, unit: DurationUnit, zone: ZoneInfo | None = None
) -> datetime:
    """Calendar-time deadline: minutes/hours are elapsed time; days keep the local wall-clock.

    "14 days" from 12:00 is 12:00 fourteen local days later, even across a DST change.
    """
    start = as_utc(start)
    if amount < 0:
        raise DomainError("duration", "must not be negative")
    if unit == "days":
        whole = int(amount)
        local = start.astimezone(zone or UTC).replace(tzinfo=None)
        shifted = (local + timedelta(days=whole)).replace(tzinfo=zone or UTC)
        return shifted.astimezone(UTC) + timedelta(days=amount - whole)
    return start + _unit_delta(amount, unit)


def _unit_delta(amount: float, unit: DurationUnit) -> timedelta:
    if unit == "minutes":
        return timedelta(minutes=amount)
    if unit == "hours":
        return timedelta(hours=amount)
    return timedelta(days=amount)


class Segment(BaseModel):
    """Which leads a policy applies to; an empty list means "any"."""

    model_config = ConfigDict(frozen=True)

    grades: list[str] = []
    regions: list[str] = []
    countries: list[str] = []
    channels: list[str] = []

    def matches(self, lead: LeadFacts) -> bool:
        return (
            _grade_matches(self.grades, lead.grade)
            and _in(self.regions, lead.region)
            and _in(self.countries, lead.country)
            and _in(self.channels, lead.channel)
        )


def _in(allowed: Sequence[str], value: str | None) -> bool:
    if not allowed:
        return True
    return value is not None and value.strip().lower() in {a.strip().lower() for a in allowed}


def _grade_matches(allowed: Sequence[str], grade: str | None) -> bool:
    """``"A"`` covers A+, A and A-; ``"A+"`` only A+."""
    if not allowed:
        return True
    if not grade:
        return False
    g = grade.strip().upper()
    for a in allowed:
        a = a.strip().upper()
        if a == g or (len(a) == 1 and g[:1] == a):
            return True
    return False


class Duration(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: float = Field(ge=0)
    unit: DurationUnit = "hours"
    business: bool = True


class EscalationStep(BaseModel):
    """One rung of the ladder, raised ``after`` the breach (0 = at the breach)."""

    model_config = ConfigDict(frozen=True)

    action: EscalationAction
    after: Duration = Duration(amount=0)
    notify: list[str] = []


class SlaPolicy(BaseModel):
    """A service level: what starts the clock, what satisfies it, what stops it, how long."""

    model_config = ConfigDict(frozen=True)

    policy_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = ""
    side: Literal["sales", "marketing"] = "sales"
    measures: str | None = None  # accept, contact, sal_age, nurture_touch, mql_assignment
    start_on: list[str] = Field(min_length=1)
    met_on: list[str] = []
    stop_on: list[str] = []
    duration: Duration
    warn_at_pct: float | None = Field(default=75.0, gt=0, lt=100)
    escalation: list[EscalationStep] = []
    segment: Segment = Segment()
    calendar_id: str | None = None
    enabled: bool = True
    # The process stage (GET /v1/process) this policy holds to its promise; the process
    # map and the audit show it beside the stage, and a stage without one is a gap.
    stage: Stage | None = None

    @model_validator(mode="after")
    def _sane(self) -> SlaPolicy:
        if self.duration.amount <= 0:
            raise ValueError("duration.amount must be positive")
        if not self.met_on and not self.stop_on:
            raise ValueError("a policy needs met_on or stop_on events, or it can never end")
        return self

    def deadline(self, start: datetime, calendar: BusinessCalendar) -> datetime:
        return deadline_for(start, self.duration, calendar)

    def warn_time(self, start: datetime, calendar: BusinessCalendar) -> datetime | None:
        if self.warn_at_pct is None:
            return None
        fraction = self.warn_at_pct / 100.0
        d = self.duration
        if d.business:
            return add_business_time(start, _business_delta(d, calendar) * fraction, calendar)
        due = deadline_for(start, d, calendar)
        return as_utc(start) + (due - as_utc(start)) * fraction


def _business_delta(d: Duration, calendar: BusinessCalendar) -> timedelta:
    if d.unit == "days":
        return calendar.day_length() * d.amount
    return _unit_delta(d.amount, d.unit)


def deadline_for(start: datetime, d: Duration, calendar: BusinessCalendar) -> datetime:
    if d.business:
        return add_business_time(start, _business_delta(d, calendar), calendar)
    return add_calendar_time(start, d.amount, d.unit, calendar.zone)


def elapsed(
    start: datetime, end: datetime, business: bool, calendar: BusinessCalendar
) -> timedelta:
    if business:
        return business_time_between(start, end, calendar)
    return max(as_utc(end) - as_utc(start), timedelta(0))


def load_policies(source: Traversable) -> list[SlaPolicy]:
    """A policy list file, parsed as a publish is: ``ValidationError`` names the field."""
    return _POLICY_LIST.validate_json(source.read_bytes())


_POLICY_LIST: TypeAdapter[list[SlaPolicy]] = TypeAdapter(list[SlaPolicy])


@functools.cache
def _builtin_policies() -> tuple[SlaPolicy, ...]:
    return tuple(load_policies(resources.files("leadflow.sla_monitor").joinpath("policies.json")))


def default_policies() -> list[SlaPolicy]:
    """What a fresh install holds both sides to (the common demand-waterfall SLA): data, not
    code, in ``policies.json`` beside this module, shipped in the wheel and parsed once per
    process (``create_kit`` calls this, so a broken file stops the service at start)."""
    return list(_builtin_policies())
