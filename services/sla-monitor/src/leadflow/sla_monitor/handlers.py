"""Consumed events and fired timers → SLA decisions (``domain``) → events + read tables.

Every routing/scoring event goes through one batch handler (``LeadClockHandler``, the
kernel's ``BatchHandler``): the consumer batch's leads are loaded once, each event is decided
purely (``domain.decide_event``: learn the lead's segment and owner, meet, stop or start
clocks) and what changed is saved with one statement: a handful of statements per batch, not
per event, and the policy set and calendars come from an in-process cache checked once per
batch. Timers
(``<sla_id>:warn``, ``<sla_id>:breach``, ``<sla_id>:esc``) are durable rows written in the
same transaction; their handlers re-check the SLA's status under a row lock, so a late or
repeated firing changes nothing that already happened; what a firing does is decided purely
(``domain.decide_warning`` / ``decide_breach`` / ``decide_escalation``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from leadflow.events import HandlerMap, TimerHandler, UnitOfWork, metrics, skip_historical
from leadflow.events.batch import Appended, Decision, Stamped, on_batch
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
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.sql import Tx
from leadflow.events.timers import Timer
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import (
    ClockChange,
    LeadClocks,
    SlaInstance,
    SlaPolicy,
    SlaRules,
    decide_breach,
    decide_escalation,
    decide_event,
    decide_warning,
    default_calendar,
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


async def _carry_out(
    uow: UnitOfWork, lead_id: uuid.UUID, sla_id: str, decision: Decision[ClockChange]
) -> None:
    """A timer's decision: its events (each at its own time), the clock's changed columns
    (one statement), the next escalation timer."""
    for item in decision.events:
        if isinstance(item, Stamped):
            await uow.append(lead_id, item.payload, occurred_at=item.occurred_at)
        else:
            await uow.append(lead_id, item, occurred_at=decision.occurred_at)
    change = decision.state
    if change is not None and change.warned_at is not None:
        await store.mark_warned(uow.tx, sla_id, change.warned_at)
    if change is not None and (change.breached_at is not None or change.raised):
        await store.record_escalations(
            uow.tx,
            sla_id,
            change.raised,
            breached_at=change.breached_at,
            late_by_seconds=change.late_by_seconds,
        )
    if decision.schedule:
        await uow.timers.schedule_many(list(decision.schedule))


async def on_warn_timer(timer: Timer, uow: UnitOfWork) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    await _carry_out(uow, lead_id, sla.sla_id, decide_warning(sla, timer.due_at, uow.clock.now()))


async def _policy_and_calendar(
    uow: UnitOfWork, config_cache: store.ConfigCache, sla: SlaInstance
) -> tuple[SlaPolicy | None, BusinessCalendar]:
    """The clock's policy in the set in force (None: removed since) and its calendar; the
    configuration comes from the cache (one revision read per timer sweep)."""
    config = await config_cache.get(uow.tx)
    policy = next((p for p in config.policy_set.policies if p.policy_id == sla.policy_id), None)
    return policy, _calendar_of(sla, config.calendars)


async def on_breach_timer(timer: Timer, uow: UnitOfWork, config: store.ConfigCache) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    policy, calendar = await _policy_and_calendar(uow, config, sla)
    decision = decide_breach(sla, lead_id, policy, calendar, uow.clock.now())
    await _carry_out(uow, lead_id, sla.sla_id, decision)
    if decision.state is not None:
        metrics.SLA_BREACHES.labels("sla-monitor", sla.policy_id).inc()


async def on_escalation_timer(timer: Timer, uow: UnitOfWork, config: store.ConfigCache) -> None:
    found = await store.get_sla(uow.tx, str(timer.payload["sla_id"]))
    if found is None:
        return
    lead_id, sla = found
    policy, calendar = await _policy_and_calendar(uow, config, sla)
    decision = decide_escalation(sla, lead_id, policy, calendar, uow.clock.now())
    await _carry_out(uow, lead_id, sla.sla_id, decision)


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
