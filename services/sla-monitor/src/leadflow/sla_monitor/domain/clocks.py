"""SLA clocks: which clocks an event meets, stops or starts; their deadlines, warnings,
breaches and escalation ladder steps. Pure: the instant is always passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from leadflow.events.calendar import BusinessCalendar, as_utc, business_time_between
from leadflow.sla_monitor.domain.facts import LeadFacts
from leadflow.sla_monitor.domain.policies import EscalationStep, SlaPolicy, deadline_for

TimerKind = Literal["sla.warn", "sla.breach", "sla.escalate"]


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
