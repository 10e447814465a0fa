"""Pure SLA rules: deadline arithmetic, policies and the decisions they drive.

No I/O here. Handlers load state, call these functions, and persist what they return.
Business calendars and business time are the kernel's (``leadflow.events.calendar``), shared
with routing's rep working hours.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from leadflow.events.calendar import (
    BusinessCalendar,
    add_business_time,
    as_utc,
    business_time_between,
)
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned, LeadReassigned
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import EventPayload
from leadflow.events.lifecycle import Stage

EscalationAction = Literal["remind_owner", "notify_manager", "reassign", "return_to_marketing"]
DurationUnit = Literal["minutes", "hours", "days"]
TimerKind = Literal["sla.warn", "sla.breach", "sla.escalate"]

DEFAULT_CALENDAR_ID = "default"


class DomainError(ValueError):
    """A rule was given input it cannot work with; ``field`` names the culprit for problem+json."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------
# Business calendars (the type and its arithmetic are the kernel's: leadflow.events.calendar)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadFacts:
    """What sla-monitor knows about a lead: its segment and current owner."""

    grade: str | None = None
    region: str | None = None
    country: str | None = None
    channel: str | None = None
    rep_id: str | None = None
    team_id: str | None = None


def facts_after(facts: LeadFacts, payload: EventPayload) -> LeadFacts:
    """What an event teaches us about a lead's segment and owner (others leave it unchanged)."""
    snapshot: LeadSnapshot | None = getattr(payload, "lead", None)
    updates: dict[str, str | None] = {}
    if isinstance(snapshot, LeadSnapshot):
        for name in ("grade", "region", "country", "channel"):
            value = getattr(snapshot, name)
            if value is not None:
                updates[name] = value
    if isinstance(payload, LeadQualified):
        updates["grade"] = payload.grade
    if isinstance(payload, LeadAssigned | LeadReassigned):
        updates["rep_id"] = payload.rep_id
        updates["team_id"] = payload.team_id
    elif isinstance(payload, LeadAccepted):
        updates["rep_id"] = payload.rep_id
    return replace(facts, **updates) if updates else facts


def already_ended(
    policy: SlaPolicy, started_at: datetime, seen: Mapping[str, datetime]
) -> tuple[Literal["met", "stopped"], str, datetime] | None:
    """Did an event that ends this policy already happen at or after its start?

    Producers' topics are not ordered against each other: routing's ``lead.assigned`` can be
    consumed before scoring's ``lead.qualified`` that caused it. A clock whose ending we
    already saw is closed at once instead of breaching for nothing.
    """
    best: tuple[Literal["met", "stopped"], str, datetime] | None = None
    for kind, events in (("met", policy.met_on), ("stopped", policy.stop_on)):
        for event_type in events:
            at = seen.get(event_type)
            if at is not None and at >= started_at and (best is None or at < best[2]):
                best = (kind, event_type, at)  # type: ignore[assignment]
    return best


@dataclass(frozen=True)
class SlaInstance:
    """One running (or finished) SLA clock on a lead."""

    sla_id: str
    policy_id: str
    policy_version: int
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    business_time: bool
    calendar_id: str
    status: Literal["open", "breached", "met", "stopped"] = "open"
    rep_id: str | None = None
    team_id: str | None = None
    escalation_step: int = 0  # how many ladder steps were raised

    @property
    def is_active(self) -> bool:
        """Open or breached-but-unmet: a satisfying event still closes it (late)."""
        return self.status in ("open", "breached")


@dataclass(frozen=True)
class Plan:
    """What an incoming event does to a lead's SLAs."""

    meet: list[SlaInstance] = field(default_factory=list)
    stop: list[SlaInstance] = field(default_factory=list)
    start: list[SlaPolicy] = field(default_factory=list)


def plan_for_event(
    event_type: str,
    lead: LeadFacts,
    policies: Iterable[SlaPolicy],
    active: Iterable[SlaInstance],
) -> Plan:
    """Which active SLAs an event meets or stops, and which policies it starts.

    Meeting wins over stopping for the same SLA. An event that both ends and starts a policy
    (a nurture touch, a reassignment) ends the running clock and starts a fresh one. A policy
    already running and not ended by this event is not started twice.
    """
    policy_list = [p for p in policies if p.enabled]
    by_id = {p.policy_id: p for p in policy_list}
    meet: list[SlaInstance] = []
    stop: list[SlaInstance] = []
    still_running: set[str] = set()
    for sla in active:
        if not sla.is_active:
            continue
        policy = by_id.get(sla.policy_id)
        if policy is None:
            # The policy was removed or disabled: its clocks end with the next lifecycle event
            # that would have ended them under any policy, never silently keep escalating.
            still_running.add(sla.policy_id)
            continue
        if event_type in policy.met_on:
            meet.append(sla)
        elif event_type in policy.stop_on:
            stop.append(sla)
        else:
            still_running.add(sla.policy_id)
    start = [
        p
        for p in policy_list
        if event_type in p.start_on and p.policy_id not in still_running and p.segment.matches(lead)
    ]
    return Plan(meet=meet, stop=stop, start=start)


@dataclass(frozen=True)
class Started:
    sla: SlaInstance
    timers: list[tuple[str, datetime, TimerKind]]


def start_sla(
    sla_id: str,
    policy: SlaPolicy,
    policy_version: int,
    started_at: datetime,
    calendar: BusinessCalendar,
    lead: LeadFacts,
) -> Started:
    """A new SLA clock and the timers (key, due, kind) it needs."""
    started_at = as_utc(started_at)
    due = policy.deadline(started_at, calendar)
    warn = policy.warn_time(started_at, calendar)
    if warn is not None and warn >= due:
        warn = None
    sla = SlaInstance(
        sla_id=sla_id,
        policy_id=policy.policy_id,
        policy_version=policy_version,
        started_at=started_at,
        due_at=due,
        warn_at=warn,
        business_time=policy.duration.business,
        calendar_id=calendar.calendar_id,
        rep_id=lead.rep_id,
        team_id=lead.team_id,
    )
    timers: list[tuple[str, datetime, TimerKind]] = []
    if warn is not None:
        timers.append((timer_key(sla_id, "warn"), warn, "sla.warn"))
    timers.append((timer_key(sla_id, "breach"), due, "sla.breach"))
    return Started(sla=sla, timers=timers)


def timer_key(sla_id: str, what: Literal["warn", "breach", "esc"]) -> str:
    return f"{sla_id}:{what}"


def all_timer_keys(sla_id: str) -> list[str]:
    return [timer_key(sla_id, "warn"), timer_key(sla_id, "breach"), timer_key(sla_id, "esc")]


@dataclass(frozen=True)
class Met:
    elapsed: timedelta
    elapsed_business: timedelta
    on_time: bool


def meet_sla(sla: SlaInstance, met_at: datetime, calendar: BusinessCalendar) -> Met:
    met_at = as_utc(met_at)
    return Met(
        elapsed=max(met_at - sla.started_at, timedelta(0)),
        elapsed_business=business_time_between(sla.started_at, met_at, calendar),
        on_time=met_at <= sla.due_at,
    )


def should_warn(sla: SlaInstance, now: datetime) -> bool:
    """A warning is useful only while the SLA is still open and not yet due."""
    return sla.status == "open" and as_utc(now) < sla.due_at


def should_breach(sla: SlaInstance) -> bool:
    return sla.status == "open"


def escalation_due_times(
    policy: SlaPolicy, due_at: datetime, calendar: BusinessCalendar
) -> list[datetime]:
    """When each ladder step is raised; offsets count from the breach in the step's own time."""
    return [deadline_for(due_at, step.after, calendar) for step in policy.escalation]


@dataclass(frozen=True)
class EscalationDecision:
    raise_steps: list[tuple[int, EscalationStep]]  # (1-based step number, step)
    next_due: datetime | None  # when to fire again, None when the ladder is done


def escalations_due(
    policy: SlaPolicy | None,
    sla: SlaInstance,
    now: datetime,
    calendar: BusinessCalendar,
) -> EscalationDecision:
    """The ladder steps due by ``now`` that were not raised yet, and when the next one is due.

    Working from ``now`` (not from which timer fired) makes late or repeated firings safe: a
    service that was down raises every missed step once, in order.
    """
    if policy is None or sla.status != "breached":
        return EscalationDecision(raise_steps=[], next_due=None)
    now = as_utc(now)
    times = escalation_due_times(policy, sla.due_at, calendar)
    steps: list[tuple[int, EscalationStep]] = []
    next_due: datetime | None = None
    for index, (step, at) in enumerate(zip(policy.escalation, times, strict=True), start=1):
        if index <= sla.escalation_step:
            continue
        if at <= now:
            steps.append((index, step))
        else:
            next_due = at
            break
    return EscalationDecision(raise_steps=steps, next_due=next_due)


# --------------------------------------------------------------------------------------
# Compliance arithmetic
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    on_time: bool | None
    elapsed_seconds: float | None
    elapsed_business_seconds: float | None
    breached: bool = False  # the deadline passed unmet at some point (breached_at is set)


def verdict(o: Outcome) -> str | None:
    """An SLA's verdict, counted once per SLA: ``on_time`` (met by the deadline), ``late``
    (breached, whatever came after: met late, stopped by a reassignment, still open), or
    None (still running, or stopped before its deadline). docs/metrics.md, "SLA compliance";
    analytics counts the same verdicts from the events."""
    if o.status == "met" and o.on_time:
        return "on_time"
    if o.breached or (o.status == "met" and not o.on_time) or o.status == "breached":
        return "late"
    return None


def compliance(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Met-on-time % = on time / SLAs with a verdict; medians over met ones."""
    verdicts = [verdict(o) for o in outcomes]
    met_on_time = verdicts.count("on_time")
    late = verdicts.count("late")
    met_late = sum(1 for o in outcomes if o.status == "met" and not o.on_time)
    breached_open = sum(1 for o in outcomes if o.status == "breached")
    breached_stopped = sum(1 for o in outcomes if o.status == "stopped" and o.breached)
    running = sum(1 for o in outcomes if o.status == "open")
    stopped = sum(1 for o in outcomes if o.status == "stopped")
    decided = met_on_time + late
    elapsed = [
        o.elapsed_seconds for o in outcomes if o.status == "met" and o.elapsed_seconds is not None
    ]
    business = [
        o.elapsed_business_seconds
        for o in outcomes
        if o.status == "met" and o.elapsed_business_seconds is not None
    ]
    return {
        "total": len(outcomes),
        "met_on_time": met_on_time,
        "met_late": met_late,
        "breached_open": breached_open,
        "breached_stopped": breached_stopped,
        "late": late,
        "open": running,
        "stopped": stopped,
        "met_on_time_pct": round(100.0 * met_on_time / decided, 2) if decided else None,
        "median_elapsed_seconds": statistics.median(elapsed) if elapsed else None,
        "median_elapsed_business_seconds": statistics.median(business) if business else None,
    }
