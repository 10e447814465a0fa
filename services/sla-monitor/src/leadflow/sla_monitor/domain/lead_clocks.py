"""What one consumed event does to a lead's SLA clocks, decided without I/O.

``LeadClocks`` is a lead as sla-monitor keeps it: its segment and owner (``LeadFacts``), when
each event type was last seen, the clocks still running, and what changed since it was
loaded (clocks started, clocks ended) so that the batch handler's ``save`` can write it
with set-based SQL. ``decide_event`` is the whole consumer-side rule: learn the facts, meet
or stop the running clocks the event ends, start the policies it starts (closing at once a
clock whose ending was already seen: topics are not ordered against each other), and say
which timers to schedule or cancel. The kernel threads the state through a batch's events
in arrival order, appends the events and writes the timers (``leadflow.events.batch``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from leadflow.events.batch import Decision, Stamped
from leadflow.events.calendar import BusinessCalendar
from leadflow.events.catalogue.sla import SlaMet, SlaStarted, SlaStopped
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.timers import Timer
from leadflow.sla_monitor.domain.calendars import choose_calendar, default_calendar
from leadflow.sla_monitor.domain.clocks import (
    SlaInstance,
    all_timer_keys,
    meet_sla,
    plan_for_event,
    start_sla,
)
from leadflow.sla_monitor.domain.facts import LeadFacts, already_ended, facts_after
from leadflow.sla_monitor.domain.policies import SlaPolicy


@dataclass(frozen=True)
class Closing:
    """How a clock ended: ``met`` (with its verdict) or ``stopped`` (no verdict)."""

    status: Literal["met", "stopped"]
    at: datetime
    by_event: str
    on_time: bool | None = None
    elapsed_seconds: float | None = None
    elapsed_business_seconds: float | None = None
    late_by_seconds: float | None = None  # met: how long after the deadline (0 on time)


@dataclass(frozen=True)
class NewClock:
    """A clock started since the lead was loaded: inserted by ``save`` (with its final
    status when it also ended in the same batch)."""

    sla: SlaInstance
    policy: SlaPolicy
    started_by_event: str


@dataclass(frozen=True)
class LeadClocks:
    """A lead's SLA state: facts, last-seen event times, running clocks (open, or breached
    and not yet met), and the clocks started and ended since it was loaded."""

    facts: LeadFacts = field(default_factory=LeadFacts)
    seen: Mapping[str, datetime] = field(default_factory=dict)
    running: tuple[SlaInstance, ...] = ()
    started: Mapping[str, NewClock] = field(default_factory=dict)
    ended: Mapping[str, Closing] = field(default_factory=dict)


def _mint_sla_id() -> str:
    return str(new_id())


@dataclass(frozen=True)
class SlaRules:
    """What every decision of a batch reads: the policy set in force and the calendars.

    ``new_sla_id`` mints a clock's id (time-ordered UUIDs, so clocks started by one event
    list in policy order); a test passes a deterministic one."""

    policies: Sequence[SlaPolicy]
    policies_version: int
    calendars: Mapping[str, BusinessCalendar]
    new_sla_id: Callable[[], str] = _mint_sla_id

    def calendar_of(self, sla: SlaInstance) -> BusinessCalendar:
        """The calendar a running clock was started on (the default if it was deleted)."""
        return (
            self.calendars.get(sla.calendar_id)
            or self.calendars.get("default")
            or default_calendar()
        )


class _Draft:
    """One decision being put together: the lead's state as it changes, and its output."""

    def __init__(self, lead_id: uuid.UUID, state: LeadClocks) -> None:
        self.lead_id = lead_id
        self.state = state
        self.running = list(state.running)
        self.started = dict(state.started)
        self.ended = dict(state.ended)
        self.events: list[Stamped] = []
        self.schedule: list[Timer] = []
        self.cancel: list[str] = []
        self.fresh: set[str] = set()  # started by this event, timers not scheduled yet

    def end(self, sla: SlaInstance, closing: Closing) -> None:
        self.ended[sla.sla_id] = closing
        if sla.sla_id not in self.fresh:  # its timers are stored, or scheduled in this batch
            self.cancel.extend(all_timer_keys(sla.sla_id))
        self.running = [s for s in self.running if s.sla_id != sla.sla_id]

    def meet(self, sla: SlaInstance, event_type: str, at: datetime, cal: BusinessCalendar) -> None:
        verdict = meet_sla(sla, at, cal)
        late = 0.0 if verdict.on_time else max((at - sla.due_at).total_seconds(), 0.0)
        elapsed = verdict.elapsed.total_seconds()
        business = verdict.elapsed_business.total_seconds()
        self.events.append(
            Stamped(
                SlaMet(
                    sla_id=sla.sla_id,
                    policy_id=sla.policy_id,
                    met_by_event=event_type,
                    elapsed_seconds=elapsed,
                    elapsed_business_seconds=business,
                    on_time=verdict.on_time,
                    late_by_seconds=late,
                    rep_id=sla.rep_id,
                    team_id=sla.team_id,
                ),
                at,
            )
        )
        self.end(
            sla,
            Closing(
                "met",
                at,
                event_type,
                on_time=verdict.on_time,
                elapsed_seconds=elapsed,
                elapsed_business_seconds=business,
                late_by_seconds=late,
            ),
        )

    def stop(self, sla: SlaInstance, event_type: str, at: datetime) -> None:
        """A clock ended without a verdict (reassigned, recycled, won...): neither met nor
        breached, so it stays out of compliance, but subscribers learn it no longer runs."""
        self.events.append(
            Stamped(
                SlaStopped(
                    sla_id=sla.sla_id,
                    policy_id=sla.policy_id,
                    stopped_by_event=event_type,
                    rep_id=sla.rep_id,
                    team_id=sla.team_id,
                ),
                at,
            )
        )
        self.end(sla, Closing("stopped", at, event_type))

    def start(
        self,
        policy: SlaPolicy,
        event: Envelope,
        facts: LeadFacts,
        seen: Mapping[str, datetime],
        rules: SlaRules,
    ) -> None:
        version = rules.policies_version
        calendar = choose_calendar(rules.calendars, policy.calendar_id, facts.rep_id, facts.team_id)
        owner = facts if policy.side == "sales" else replace(facts, rep_id=None, team_id=None)
        started = start_sla(rules.new_sla_id(), policy, version, event.occurred_at, calendar, owner)
        sla = started.sla
        self.fresh.add(sla.sla_id)
        self.events.append(
            Stamped(
                SlaStarted(
                    sla_id=sla.sla_id,
                    policy_id=sla.policy_id,
                    policy_version=version,
                    started_by_event=event.event_type,
                    rep_id=sla.rep_id,
                    team_id=sla.team_id,
                    started_at=sla.started_at,
                    warn_at=sla.warn_at,
                    due_at=sla.due_at,
                    business_time=sla.business_time,
                    calendar_id=sla.calendar_id,
                ),
                sla.started_at,
            )
        )
        self.started[sla.sla_id] = NewClock(sla, policy, event.event_type)
        ended = already_ended(
            policy, sla.started_at, {k: v for k, v in seen.items() if k != event.event_type}
        )
        if ended is not None:
            verdict, event_type, at = ended
            if verdict == "met":
                self.meet(sla, event_type, at, calendar)
            else:
                self.stop(sla, event_type, at)
            return
        for key, due, timer_kind in started.timers:
            self.schedule.append(Timer(key, timer_kind, due, {"sla_id": sla.sla_id}, self.lead_id))
        self.running.append(sla)
        self.running.sort(key=lambda s: (s.started_at, s.sla_id))


def decide_event(
    state: LeadClocks | None, event: Envelope, rules: SlaRules
) -> Decision[LeadClocks]:
    """What ``event`` does to the lead's clocks: learn its facts, meet and stop the clocks
    it ends, start the policies it starts. Pure: the time is the event's, ids come from
    ``rules.new_sla_id``.

    Meeting wins over stopping for the same clock; an event that both ends and starts a
    policy (a nurture touch, a reassignment) ends the running clock and starts a fresh one.
    """
    state = state or LeadClocks()
    event_type = event.event_type
    at = event.occurred_at
    facts = facts_after(state.facts, event.payload)
    seen = state.seen
    if seen.get(event_type) is None or seen[event_type] < at:
        seen = {**seen, event_type: at}

    draft = _Draft(event.lead_id, state)
    plan = plan_for_event(event_type, facts, rules.policies, draft.running)
    for sla in plan.meet:
        draft.meet(sla, event_type, at, rules.calendar_of(sla))
    for sla in plan.stop:
        draft.stop(sla, event_type, at)
    for policy in plan.start:
        draft.start(policy, event, facts, seen, rules)
    new_state = LeadClocks(
        facts=facts,
        seen=seen,
        running=tuple(draft.running),
        started=draft.started,
        ended=draft.ended,
    )
    return Decision(
        state=new_state,
        events=draft.events,
        schedule=draft.schedule,
        cancel=draft.cancel,
        occurred_at=at,
    )
