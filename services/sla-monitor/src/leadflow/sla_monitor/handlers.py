"""Consumed events and fired timers → SLA decisions (``domain``) → events + read tables.

Every routing/scoring event goes through one handler: learn the lead's segment and owner,
ask ``plan_for_event`` which clocks it meets, stops or starts, then record that. Timers
(``<sla_id>:warn``, ``<sla_id>:breach``, ``<sla_id>:esc``) are durable rows written in the
same transaction; their handlers re-check the SLA's status under a row lock, so a late or
repeated firing changes nothing that already happened.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from leadflow.events import metrics
from leadflow.events.catalogue.routing import (
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadContacted,
    LeadPutOnHold,
    LeadReassigned,
    LeadRecycled,
    LeadRejected,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import (
    LeadDisqualified,
    LeadQualified,
    NurtureEnrolled,
    NurtureExited,
    NurtureTouchDue,
)
from leadflow.events.catalogue.sla import (
    EscalationRaised,
    SlaBreached,
    SlaMet,
    SlaStarted,
    SlaStopped,
    SlaWarning,
)
from leadflow.events.consumer import HandlerMap, UnitOfWork
from leadflow.events.envelope import Envelope, EventPayload, new_id
from leadflow.events.timers import Timer, TimerHandler
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import (
    BusinessCalendar,
    LeadFacts,
    SlaInstance,
    SlaPolicy,
    all_timer_keys,
    already_ended,
    choose_calendar,
    default_calendar,
    escalation_due_times,
    escalations_due,
    facts_after,
    meet_sla,
    plan_for_event,
    should_breach,
    should_warn,
    start_sla,
    timer_key,
)

CONSUMED: tuple[type[EventPayload], ...] = (
    LeadAssigned,
    LeadReassigned,
    LeadAccepted,
    LeadRejected,
    LeadContacted,
    LeadSalesQualified,
    LeadRecycled,
    OpportunityOpened,
    DealWon,
    DealLost,
    LeadPutOnHold,
    LeadQualified,
    LeadDisqualified,
    NurtureEnrolled,
    NurtureTouchDue,
    NurtureExited,
)


def _calendar_of(sla: SlaInstance, calendars: dict[str, BusinessCalendar]) -> BusinessCalendar:
    return calendars.get(sla.calendar_id) or calendars.get("default") or default_calendar()


async def on_lead_event(envelope: Envelope, uow: UnitOfWork) -> None:
    """Meet, stop and start the lead's SLA clocks for one consumed event."""
    conn = uow.conn
    lead_id = envelope.lead_id
    event_type = envelope.event_type
    at = envelope.occurred_at
    state = await store.lead_state(conn, lead_id)
    facts, seen = state if state is not None else (LeadFacts(), {})
    facts = facts_after(facts, envelope.payload)
    if seen.get(event_type) is None or seen[event_type] < at:
        seen[event_type] = at
    await store.save_lead_state(conn, lead_id, facts, seen)

    policy_set = await store.current_policy_set(conn)
    active = await store.active_slas(conn, lead_id)
    plan = plan_for_event(event_type, facts, policy_set.policies, active)
    if not (plan.meet or plan.stop or plan.start):
        return
    calendars = await store.calendars(conn)

    for sla in plan.meet:
        await _meet(uow, lead_id, sla, event_type, at, _calendar_of(sla, calendars))
    for sla in plan.stop:
        await _stop(uow, lead_id, sla, event_type, at)
    for policy in plan.start:
        await _start(uow, lead_id, policy, policy_set.version, envelope, facts, calendars, seen)


async def _meet(
    uow: UnitOfWork,
    lead_id: uuid.UUID,
    sla: SlaInstance,
    event_type: str,
    at: datetime,
    calendar: BusinessCalendar,
) -> None:
    verdict = meet_sla(sla, at, calendar)
    await uow.append(
        lead_id,
        SlaMet(
            sla_id=sla.sla_id,
            policy_id=sla.policy_id,
            met_by_event=event_type,
            elapsed_seconds=verdict.elapsed.total_seconds(),
            elapsed_business_seconds=verdict.elapsed_business.total_seconds(),
            on_time=verdict.on_time,
            rep_id=sla.rep_id,
            team_id=sla.team_id,
        ),
        occurred_at=at,
    )
    await store.mark_met(
        uow.conn,
        sla.sla_id,
        met_at=at,
        met_by_event=event_type,
        on_time=verdict.on_time,
        elapsed_seconds=verdict.elapsed.total_seconds(),
        elapsed_business_seconds=verdict.elapsed_business.total_seconds(),
    )
    await _cancel_timers(uow, sla.sla_id)


async def _stop(
    uow: UnitOfWork, lead_id: uuid.UUID, sla: SlaInstance, event_type: str, at: datetime
) -> None:
    """A clock ended without a verdict (reassigned, recycled, won...): neither met nor
    breached, so it stays out of compliance, but subscribers learn it is no longer running."""
    await uow.append(
        lead_id,
        SlaStopped(
            sla_id=sla.sla_id,
            policy_id=sla.policy_id,
            stopped_by_event=event_type,
            rep_id=sla.rep_id,
            team_id=sla.team_id,
        ),
        occurred_at=at,
    )
    await store.mark_stopped(uow.conn, sla.sla_id, at=at, by_event=event_type)
    await _cancel_timers(uow, sla.sla_id)


async def _cancel_timers(uow: UnitOfWork, sla_id: str) -> None:
    for key in all_timer_keys(sla_id):
        await uow.timers.cancel(key)


async def _start(
    uow: UnitOfWork,
    lead_id: uuid.UUID,
    policy: SlaPolicy,
    policy_version: int,
    envelope: Envelope,
    facts: LeadFacts,
    calendars: dict[str, BusinessCalendar],
    seen: dict[str, datetime],
) -> None:
    calendar = choose_calendar(calendars, policy.calendar_id, facts.rep_id, facts.team_id)
    owner = facts if policy.side == "sales" else replace(facts, rep_id=None, team_id=None)
    started = start_sla(
        str(new_id()), policy, policy_version, envelope.occurred_at, calendar, owner
    )
    sla = started.sla
    await uow.append(
        lead_id,
        SlaStarted(
            sla_id=sla.sla_id,
            policy_id=sla.policy_id,
            policy_version=policy_version,
            started_by_event=envelope.event_type,
            rep_id=sla.rep_id,
            team_id=sla.team_id,
            started_at=sla.started_at,
            warn_at=sla.warn_at,
            due_at=sla.due_at,
            business_time=sla.business_time,
            calendar_id=sla.calendar_id,
        ),
        occurred_at=sla.started_at,
    )
    await store.insert_sla(uow.conn, lead_id, sla, policy, envelope.event_type)
    ended = already_ended(
        policy, sla.started_at, {k: v for k, v in seen.items() if k != envelope.event_type}
    )
    if ended is not None:
        verdict, event_type, at = ended
        if verdict == "met":
            await _meet(uow, lead_id, sla, event_type, at, calendar)
        else:
            await _stop(uow, lead_id, sla, event_type, at)
        return
    for key, due, timer_kind in started.timers:
        await uow.timers.schedule(key, due, timer_kind, {"sla_id": sla.sla_id}, lead_id=lead_id)


# -- timers ---------------------------------------------------------------------------


async def on_warn_timer(timer: Timer, uow: UnitOfWork) -> None:
    found = await store.get_sla(uow.conn, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    if not should_warn(sla, uow.clock.now()):
        return
    await uow.append(
        lead_id,
        SlaWarning(
            sla_id=sla.sla_id,
            policy_id=sla.policy_id,
            due_at=sla.due_at,
            rep_id=sla.rep_id,
            team_id=sla.team_id,
        ),
        occurred_at=timer.due_at,
    )
    await store.mark_warned(uow.conn, sla.sla_id, timer.due_at)


async def on_breach_timer(timer: Timer, uow: UnitOfWork) -> None:
    found = await store.get_sla(uow.conn, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    if not should_breach(sla):
        return
    now = uow.clock.now()
    late = max((now - sla.due_at).total_seconds(), 0.0)
    await uow.append(
        lead_id,
        SlaBreached(
            sla_id=sla.sla_id,
            policy_id=sla.policy_id,
            due_at=sla.due_at,
            late_by_seconds=late,
            rep_id=sla.rep_id,
            team_id=sla.team_id,
        ),
        occurred_at=sla.due_at,
    )
    await store.mark_breached(uow.conn, sla.sla_id, at=sla.due_at, late_by_seconds=late)
    metrics.SLA_BREACHES.labels("sla-monitor", sla.policy_id).inc()
    await _escalate(uow, lead_id, replace(sla, status="breached"))


async def on_escalation_timer(timer: Timer, uow: UnitOfWork) -> None:
    found = await store.get_sla(uow.conn, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    await _escalate(uow, lead_id, sla)


async def _escalate(uow: UnitOfWork, lead_id: uuid.UUID, sla: SlaInstance) -> None:
    """Raise every ladder step due by now (once each) and schedule the next one."""
    policy_set = await store.current_policy_set(uow.conn)
    policy = next((p for p in policy_set.policies if p.policy_id == sla.policy_id), None)
    calendars = await store.calendars(uow.conn)
    calendar = _calendar_of(sla, calendars)
    decision = escalations_due(policy, sla, uow.clock.now(), calendar)
    if policy is None:
        return
    times = escalation_due_times(policy, sla.due_at, calendar)
    for number, step in decision.raise_steps:
        raised_at = times[number - 1]
        await uow.append(
            lead_id,
            EscalationRaised(
                sla_id=sla.sla_id,
                policy_id=sla.policy_id,
                step=number,
                action=step.action,
                rep_id=sla.rep_id,
                team_id=sla.team_id,
                notify=list(step.notify),
            ),
            occurred_at=raised_at,
        )
        await store.record_escalation(
            uow.conn, sla.sla_id, number, step.action, raised_at, list(step.notify)
        )
    if decision.next_due is not None:
        await uow.timers.schedule(
            timer_key(sla.sla_id, "esc"),
            decision.next_due,
            "sla.escalate",
            {"sla_id": sla.sla_id},
            lead_id=lead_id,
        )


HANDLERS: HandlerMap = {cls: on_lead_event for cls in CONSUMED}
TIMER_HANDLERS: dict[str, TimerHandler] = {
    "sla.warn": on_warn_timer,
    "sla.breach": on_breach_timer,
    "sla.escalate": on_escalation_timer,
}
