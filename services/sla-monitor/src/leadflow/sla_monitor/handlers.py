"""Consumed events and fired timers → SLA decisions (``domain``) → events + read tables.

Every routing/scoring event goes through one batch handler (``LeadClockHandler``, the
kernel's ``BatchHandler``): the consumer batch's leads are loaded once, each event is decided
purely (``domain.decide_event``: learn the lead's segment and owner, meet, stop or start
clocks) and what changed is saved with one statement: a handful of statements per batch, not
per event, and the policy set and calendars come from an in-process cache checked once per
batch. Timers
(``<sla_id>:warn``, ``<sla_id>:breach``, ``<sla_id>:esc``) are durable rows written in the
same transaction; their handlers re-check the SLA's status under a row lock, so a late or
repeated firing changes nothing that already happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from leadflow.events import HandlerMap, TimerHandler, UnitOfWork, metrics, skip_historical
from leadflow.events.batch import Appended, Decision, on_batch
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
    SlaWarning,
)
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.sql import Tx
from leadflow.events.timers import Timer
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import (
    LeadClocks,
    SlaInstance,
    SlaRules,
    decide_event,
    default_calendar,
    escalation_due_times,
    escalations_due,
    should_breach,
    should_warn,
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


def _calendar_of(sla: SlaInstance, calendars: Mapping[str, BusinessCalendar]) -> BusinessCalendar:
    return calendars.get(sla.calendar_id) or calendars.get("default") or default_calendar()


@dataclass
class SlaBatch:
    """A batch's context: the policy set and calendars in force, read with its leads (the
    configuration revision rides on the statement that locks them)."""

    rules: SlaRules | None = None


class LeadClockHandler:
    """The consumer side as a kernel ``BatchHandler``: ``load`` locks the batch's leads and
    reads their running clocks (two statements), ``decide`` is ``domain.decide_event``
    (pure), ``save`` writes facts, started and ended clocks with one statement. The kernel
    decides the batch's events in arrival order, appends the SLA events (each caused by the
    event decided) and writes the timers."""

    def __init__(self, config: store.ConfigCache) -> None:
        self.config = config

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> SlaBatch:
        return SlaBatch()

    async def load(
        self, tx: Tx, lead_ids: Sequence[uuid.UUID], ctx: SlaBatch
    ) -> dict[uuid.UUID, LeadClocks]:
        states, revision = await store.load_leads(tx, lead_ids)
        config = await self.config.get(tx, revision)
        ctx.rules = SlaRules(
            policies=config.policy_set.policies,
            policies_version=config.policy_set.version,
            calendars=config.calendars,
        )
        return states

    def decide(
        self, state: LeadClocks | None, event: Envelope, ctx: SlaBatch
    ) -> Decision[LeadClocks]:
        assert ctx.rules is not None, "load sets the rules before any decision"
        return decide_event(state, event, ctx.rules)

    async def save(
        self, tx: Tx, changed: Mapping[uuid.UUID, LeadClocks], ctx: SlaBatch
    ) -> Sequence[Appended]:
        await store.save_leads(tx, changed)
        return ()


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
    config = await config_cache.get(uow.tx)
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
    batch = on_batch(LeadClockHandler(config))
    handlers: HandlerMap = skip_historical(dict.fromkeys(CONSUMED, batch))
    timer_handlers: dict[str, TimerHandler] = {
        "sla.warn": on_warn_timer,
        "sla.breach": partial(on_breach_timer, config=config),
        "sla.escalate": partial(on_escalation_timer, config=config),
    }
    return handlers, timer_handlers
