"""Consumed events and fired timers → SLA decisions (``domain``) → events + read tables.

Every routing/scoring event goes through one handler: learn the lead's segment and owner,
ask ``plan_for_event`` which clocks it meets, stops or starts, then record that. A consumer
batch is one transaction, so the handler only queues the event and the whole batch is
decided at flush (``UnitOfWork.batch``): a handful of statements per batch, not per event,
and the policy set and calendars come from an in-process cache checked once per batch. Timers
(``<sla_id>:warn``, ``<sla_id>:breach``, ``<sla_id>:esc``) are durable rows written in the
same transaction; their handlers re-check the SLA's status under a row lock, so a late or
repeated firing changes nothing that already happened.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from functools import partial

from leadflow.events import HandlerMap, TimerHandler, UnitOfWork, metrics, skip_historical
from leadflow.events.calendar import BusinessCalendar
from leadflow.events.catalogue.routing import (
    CustomerChurned,
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
from leadflow.events.envelope import Envelope, EventPayload, new_id
from leadflow.events.timers import Timer
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import (
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
    CustomerChurned,
    LeadPutOnHold,
    LeadQualified,
    LeadDisqualified,
    NurtureEnrolled,
    NurtureTouchDue,
    NurtureExited,
)


def _calendar_of(sla: SlaInstance, calendars: dict[str, BusinessCalendar]) -> BusinessCalendar:
    return calendars.get(sla.calendar_id) or calendars.get("default") or default_calendar()


async def on_lead_event(envelope: Envelope, uow: UnitOfWork, config: store.ConfigCache) -> None:
    """Queue one consumed event; the events of one unit of work (one consumer batch = one
    transaction) meet, stop and start clocks together when it flushes."""
    uow.batch(_decide_pending, list, partial(_decide_pending, uow, config)).append(envelope)


async def _decide_pending(
    uow: UnitOfWork, config_cache: store.ConfigCache, events: list[Envelope]
) -> None:
    """Lock the batch's leads, read their running clocks and the configuration once, decide
    every event in delivery order in memory, write everything back with one statement."""
    tx = uow.tx
    lead_ids = list(dict.fromkeys(e.lead_id for e in events))
    states, revision = await store.lock_leads(tx, lead_ids)
    config = await config_cache.get(uow.conn, revision)
    active = await store.active_slas(tx, lead_ids)
    batch = _Batch(uow, config, states, active)
    causation = uow.causation
    try:
        for envelope in events:
            uow.causation = envelope  # what this event causes names it, as if handled alone
            await batch.decide(envelope)
    finally:
        uow.causation = causation
    await store.write_batch(tx, batch.writes)
    uow.timers.note_scheduled(t.due_at for t in batch.writes.schedule.values())


class _Batch:
    """One batch's leads, running clocks and pending writes, kept in memory.

    Each event sees the state the events before it left (facts, last-seen times, clocks
    started or ended), exactly as if they had been handled one transaction at a time.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        config: store.SlaConfig,
        states: dict[uuid.UUID, store.LeadState],
        active: dict[uuid.UUID, list[SlaInstance]],
    ) -> None:
        self.uow = uow
        self.policy_set = config.policy_set
        self.calendars = config.calendars
        self.states = states
        self.active = active
        self.writes = store.BatchWrites()

    async def decide(self, envelope: Envelope) -> None:
        lead_id = envelope.lead_id
        event_type = envelope.event_type
        at = envelope.occurred_at
        facts, seen = self.states.get(lead_id, (LeadFacts(), {}))
        facts = facts_after(facts, envelope.payload)
        if seen.get(event_type) is None or seen[event_type] < at:
            seen = {**seen, event_type: at}
        self.states[lead_id] = self.writes.leads[lead_id] = (facts, seen)

        running = self.active.setdefault(lead_id, [])
        plan = plan_for_event(event_type, facts, self.policy_set.policies, running)
        for sla in plan.meet:
            await self._meet(lead_id, sla, event_type, at, _calendar_of(sla, self.calendars))
        for sla in plan.stop:
            await self._stop(lead_id, sla, event_type, at)
        for policy in plan.start:
            await self._start(lead_id, policy, envelope, facts, seen)

    def _end(self, lead_id: uuid.UUID, sla_id: str, closing: store.Closing) -> None:
        self.writes.closings[sla_id] = closing
        stored = sla_id not in self.writes.new
        for key in all_timer_keys(sla_id):
            self.writes.cancel_timer(key, stored=stored)
        running = self.active.get(lead_id, [])
        running[:] = [s for s in running if s.sla_id != sla_id]

    async def _meet(
        self,
        lead_id: uuid.UUID,
        sla: SlaInstance,
        event_type: str,
        at: datetime,
        calendar: BusinessCalendar,
    ) -> None:
        verdict = meet_sla(sla, at, calendar)
        late = 0.0 if verdict.on_time else max((at - sla.due_at).total_seconds(), 0.0)
        await self.uow.append(
            lead_id,
            SlaMet(
                sla_id=sla.sla_id,
                policy_id=sla.policy_id,
                met_by_event=event_type,
                elapsed_seconds=verdict.elapsed.total_seconds(),
                elapsed_business_seconds=verdict.elapsed_business.total_seconds(),
                on_time=verdict.on_time,
                late_by_seconds=late,
                rep_id=sla.rep_id,
                team_id=sla.team_id,
            ),
            occurred_at=at,
        )
        self._end(
            lead_id,
            sla.sla_id,
            store.Closing(
                "met",
                at,
                event_type,
                on_time=verdict.on_time,
                elapsed_seconds=verdict.elapsed.total_seconds(),
                elapsed_business_seconds=verdict.elapsed_business.total_seconds(),
                late_by_seconds=late,
            ),
        )

    async def _stop(
        self, lead_id: uuid.UUID, sla: SlaInstance, event_type: str, at: datetime
    ) -> None:
        """A clock ended without a verdict (reassigned, recycled, won...): neither met nor
        breached, so it stays out of compliance, but subscribers learn it is no longer
        running."""
        await self.uow.append(
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
        self._end(lead_id, sla.sla_id, store.Closing("stopped", at, event_type))

    async def _start(
        self,
        lead_id: uuid.UUID,
        policy: SlaPolicy,
        envelope: Envelope,
        facts: LeadFacts,
        seen: dict[str, datetime],
    ) -> None:
        version = self.policy_set.version
        calendar = choose_calendar(self.calendars, policy.calendar_id, facts.rep_id, facts.team_id)
        owner = facts if policy.side == "sales" else replace(facts, rep_id=None, team_id=None)
        started = start_sla(str(new_id()), policy, version, envelope.occurred_at, calendar, owner)
        sla = started.sla
        await self.uow.append(
            lead_id,
            SlaStarted(
                sla_id=sla.sla_id,
                policy_id=sla.policy_id,
                policy_version=version,
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
        self.writes.new[sla.sla_id] = store.NewSla(lead_id, sla, policy, envelope.event_type)
        ended = already_ended(
            policy, sla.started_at, {k: v for k, v in seen.items() if k != envelope.event_type}
        )
        if ended is not None:
            verdict, event_type, at = ended
            if verdict == "met":
                await self._meet(lead_id, sla, event_type, at, calendar)
            else:
                await self._stop(lead_id, sla, event_type, at)
            return
        for key, due, timer_kind in started.timers:
            self.writes.schedule_timer(Timer(key, timer_kind, due, {"sla_id": sla.sla_id}, lead_id))
        running = self.active.setdefault(lead_id, [])
        running.append(sla)
        running.sort(key=lambda s: (s.started_at, s.sla_id))


# -- timers ---------------------------------------------------------------------------


async def on_warn_timer(timer: Timer, uow: UnitOfWork) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
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
    await store.mark_warned(uow.tx, sla.sla_id, timer.due_at)


async def on_breach_timer(timer: Timer, uow: UnitOfWork, config: store.ConfigCache) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
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
    metrics.SLA_BREACHES.labels("sla-monitor", sla.policy_id).inc()
    await _escalate(uow, config, lead_id, replace(sla, status="breached"), breach_late=late)


async def on_escalation_timer(timer: Timer, uow: UnitOfWork, config: store.ConfigCache) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    await _escalate(uow, config, lead_id, sla)


async def _escalate(
    uow: UnitOfWork,
    config_cache: store.ConfigCache,
    lead_id: uuid.UUID,
    sla: SlaInstance,
    breach_late: float | None = None,
) -> None:
    """Raise every ladder step due by now (once each) and schedule the next one.

    ``breach_late`` is set when this is the breach itself: the clock is marked breached in
    the same statement that records the steps. The configuration comes from the cache (one
    revision read per timer sweep)."""
    config = await config_cache.get(uow.conn)
    policy = next((p for p in config.policy_set.policies if p.policy_id == sla.policy_id), None)
    calendar = _calendar_of(sla, config.calendars)
    decision = escalations_due(policy, sla, uow.clock.now(), calendar)
    breached_at = sla.due_at if breach_late is not None else None
    if policy is None:
        await store.record_escalations(
            uow.tx, sla.sla_id, [], breached_at=breached_at, late_by_seconds=breach_late
        )
        return
    times = escalation_due_times(policy, sla.due_at, calendar)
    raised: list[store.RaisedStep] = []
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
        raised.append(store.RaisedStep(number, step.action, raised_at, list(step.notify)))
    await store.record_escalations(
        uow.tx, sla.sla_id, raised, breached_at=breached_at, late_by_seconds=breach_late
    )
    if decision.next_due is not None:
        await uow.timers.schedule(
            timer_key(sla.sla_id, "esc"),
            decision.next_due,
            "sla.escalate",
            {"sla_id": sla.sla_id},
            lead_id=lead_id,
        )


def build_handlers(config: store.ConfigCache) -> tuple[HandlerMap, dict[str, TimerHandler]]:
    """The consumer and timer handlers, sharing ``config`` (the policy set and calendars
    parsed once per revision), which the kit's factory makes: nothing at import time."""
    # Imported history (``historical`` events) starts and stops no clock.
    handlers: HandlerMap = skip_historical(
        {cls: partial(on_lead_event, config=config) for cls in CONSUMED}
    )
    timer_handlers: dict[str, TimerHandler] = {
        "sla.warn": on_warn_timer,
        "sla.breach": partial(on_breach_timer, config=config),
        "sla.escalate": partial(on_escalation_timer, config=config),
    }
    return handlers, timer_handlers
