"""What a clock's timer does when it fires — warn, breach, escalate — decided without I/O.

A timer handler locks the clock's row, reads the policy set and calendars, asks one of
these functions, and carries the ``Decision`` out: the events (each ``Stamped`` at the time
it stands for: a warning at the warn time, a breach at the deadline, a ladder step at the
time it fell due), the next escalation timer, and the clock's changed columns
(``ClockChange``). Working from ``now`` (not from which timer fired) makes late or repeated
firings safe: a service that was down raises every missed step once, in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from leadflow.events.batch import Decision, Stamped
from leadflow.events.calendar import BusinessCalendar, as_utc
from leadflow.events.catalogue.sla import EscalationRaised, SlaBreached, SlaWarning
from leadflow.events.timers import Timer
from leadflow.sla_monitor.domain.clocks import (
    SlaInstance,
    escalation_due_times,
    escalations_due,
    should_breach,
    should_warn,
    timer_key,
)
from leadflow.sla_monitor.domain.policies import SlaPolicy


@dataclass(frozen=True)
class RaisedStep:
    """A ladder step raised: its number (1-based), action, when it fell due, who to tell."""

    step: int
    action: str
    at: datetime
    notify: list[str]


@dataclass(frozen=True)
class ClockChange:
    """A clock's columns a timer changes: warned, breached (and how late then), steps."""

    warned_at: datetime | None = None
    breached_at: datetime | None = None
    late_by_seconds: float | None = None
    raised: list[RaisedStep] = field(default_factory=list)


def decide_warning(sla: SlaInstance, warn_at: datetime, now: datetime) -> Decision[ClockChange]:
    """A warning, at the warn time, while the clock is open and not yet due; else nothing."""
    if not should_warn(sla, now):
        return Decision()
    warning = SlaWarning(
        sla_id=sla.sla_id,
        policy_id=sla.policy_id,
        due_at=sla.due_at,
        rep_id=sla.rep_id,
        team_id=sla.team_id,
    )
    return Decision(
        state=ClockChange(warned_at=warn_at),
        events=[Stamped(warning, warn_at)],
        occurred_at=warn_at,
    )


def decide_breach(
    sla: SlaInstance,
    lead_id: uuid.UUID,
    policy: SlaPolicy | None,
    calendar: BusinessCalendar,
    now: datetime,
) -> Decision[ClockChange]:
    """The breach (at the deadline, late by now minus it) and every ladder step already due;
    nothing when the clock is no longer open (met, stopped, or breached before)."""
    if not should_breach(sla):
        return Decision()
    late = max((as_utc(now) - sla.due_at).total_seconds(), 0.0)
    breach = SlaBreached(
        sla_id=sla.sla_id,
        policy_id=sla.policy_id,
        due_at=sla.due_at,
        late_by_seconds=late,
        rep_id=sla.rep_id,
        team_id=sla.team_id,
    )
    ladder = decide_escalation(replace(sla, status="breached"), lead_id, policy, calendar, now)
    steps = ladder.state or ClockChange()
    return Decision(
        state=ClockChange(breached_at=sla.due_at, late_by_seconds=late, raised=steps.raised),
        events=[Stamped(breach, sla.due_at), *ladder.events],
        schedule=tuple(ladder.schedule),
        occurred_at=sla.due_at,
    )


def decide_escalation(
    sla: SlaInstance,
    lead_id: uuid.UUID,
    policy: SlaPolicy | None,
    calendar: BusinessCalendar,
    now: datetime,
) -> Decision[ClockChange]:
    """The ladder steps due by ``now`` not raised yet (each at the time it fell due) and the
    timer for the next one; nothing for a clock that is not breached or whose policy is gone."""
    if policy is None:
        return Decision()
    due = escalations_due(policy, sla, now, calendar)
    times = escalation_due_times(policy, sla.due_at, calendar)
    raised: list[RaisedStep] = []
    events: list[Stamped] = []
    for number, step in due.raise_steps:
        at = times[number - 1]
        raised.append(RaisedStep(number, step.action, at, list(step.notify)))
        events.append(
            Stamped(
                EscalationRaised(
                    sla_id=sla.sla_id,
                    policy_id=sla.policy_id,
                    step=number,
                    action=step.action,
                    rep_id=sla.rep_id,
                    team_id=sla.team_id,
                    notify=list(step.notify),
                ),
                at,
            )
        )
    schedule = []
    if due.next_due is not None:
        key = timer_key(sla.sla_id, "esc")
        schedule.append(Timer(key, "sla.escalate", due.next_due, {"sla_id": sla.sla_id}, lead_id))
    return Decision(
        state=ClockChange(raised=raised) if raised else None,
        events=tuple(events),
        schedule=tuple(schedule),
    )
