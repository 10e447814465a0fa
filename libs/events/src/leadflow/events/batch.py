"""The batch handler: a consuming service loads a batch's state, decides each event purely,
and saves what changed; the kernel owns everything in between.

Every consuming service used to rebuild the same machinery around its decisions: collect
the consumer batch's events in the unit of work, lock and read the leads once, decide each
event in arrival order while threading each lead's state, name the deciding event as the
cause of what it appends, collect timers and write them with one statement, wake the timer
runner. This module is that machinery, written once (issue #25 item 1):

- ``BatchHandler``: what a service writes — ``context`` (once per batch: configuration,
  the clock's now), ``load`` (all the batch's leads at once), a pure ``decide`` per event,
  ``save`` (the changed states, set-based).
- ``on_batch(handler)``: the per-event ``Handler`` registered with the kit for every event
  type the handler decides; it only collects the event in the unit of work, and the batch is
  decided when the unit of work flushes (the runner flushes before it commits).
- ``flush_batches(uow)``: decide what was collected so far, now — a per-event handler that
  must not overtake the batch's earlier events calls it first.
- ``run_decision(uow, handler, lead_id, decide)``: one decision through the same path, for
  API commands and timer handlers.

A batch that fails is rolled back whole; the consumer then handles its events one per
transaction, so each is a batch of one and a bad event goes to the dead letters alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.sql import Tx
from leadflow.events.timers import Timer
from leadflow.events.uow import Handler, UnitOfWork

S = TypeVar("S")
C = TypeVar("C")
C_in = TypeVar("C_in", contravariant=True)

# Decisions are CPU only: the event loop gets a turn (Kafka heartbeats, the relay) this often.
YIELD_EVERY = 25


@dataclass(frozen=True)
class Stamped:
    """An event of a decision with its own time, for a decision whose events did not all
    happen at once (sla-monitor starts a clock at its event's time and, when the event that
    ends it was already seen, meets it at that later time in the same decision)."""

    payload: EventPayload
    occurred_at: datetime


@dataclass(frozen=True)
class Decision(Generic[S]):
    """What deciding one event (or one command) comes to; the kernel carries it out.

    ``state``: the lead's new state (None: unchanged). ``events``: appended to the lead's
    stream in this order, caused by the event decided (a ``Stamped`` one at its own time). ``schedule`` / ``cancel``: durable timers to
    (re)schedule and timer keys to cancel (a decision's cancels apply before its schedules,
    and across a batch the last word on a key wins). ``occurred_at``: when the appended
    events happened (None: the clock's now), e.g. a clock met at the time of the event.
    """

    state: S | None = None
    events: Sequence[EventPayload | Stamped] = ()
    schedule: Sequence[Timer] = ()
    cancel: Sequence[str] = ()
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Appended:
    """Events a handler's ``save`` appends for a batch-level effect (scoring's account
    qualification): ``payloads`` on ``lead_id``'s stream. ``causation``: None names the
    batch's last event of that lead (else the batch's last event) as their cause."""

    lead_id: UUID
    payloads: Sequence[EventPayload]
    causation: Envelope | None = None
    occurred_at: datetime | None = None


class BatchHandler(Protocol[S, C]):
    """What a consuming service writes: load a batch's state, decide each event purely,
    save what changed. The kernel owns order, causation, timers and wake-ups."""

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> C:
        """Once per batch, before ``load``: what every decision of the batch reads
        (configuration, the time it is decided at); ``events`` are the batch's."""
        ...

    async def load(self, tx: Tx, lead_ids: Sequence[UUID], ctx: C) -> dict[UUID, S]:
        """The state of the batch's leads (each once, in first-arrival order), locked if
        the handler needs that; a lead without state is simply absent."""
        ...

    def decide(self, state: S | None, event: Envelope, ctx: C) -> Decision[S]:
        """Pure: no I/O, no clock (``ctx`` or the event's time). ``state`` is what the
        batch's earlier events of the lead left (or ``load``'s, or None)."""
        ...

    async def save(self, tx: Tx, changed: Mapping[UUID, S], ctx: C) -> Sequence[Appended]:
        """Write the changed states (set-based SQL); called once per batch, also when
        nothing changed. May return further events (``Appended``)."""
        ...


@dataclass
class Outcome(Generic[S]):
    """A batch's decisions folded together (pure; what the kernel then writes).

    ``states``: every lead's state after the batch, ``changed``: those a decision set, in
    the order they first changed; ``appends``: (lead, payloads, cause, occurred_at) in
    decision order; ``schedule`` / ``cancel``: the timers' last word per key.
    """

    states: dict[UUID, S] = field(default_factory=dict)
    changed: dict[UUID, S] = field(default_factory=dict)
    appends: list[tuple[UUID, Sequence[EventPayload], Envelope | None, datetime | None]] = field(
        default_factory=list
    )
    schedule: dict[str, Timer] = field(default_factory=dict)
    cancel: dict[str, None] = field(default_factory=dict)
    last_event: dict[UUID, Envelope] = field(default_factory=dict)

    def record(self, lead_id: UUID, cause: Envelope | None, decision: Decision[S]) -> None:
        """Fold one decision in: the next decision of the lead sees its state."""
        if decision.state is not None:
            self.states[lead_id] = self.changed[lead_id] = decision.state
        for payloads, occurred_at in _runs(decision):
            self.appends.append((lead_id, payloads, cause, occurred_at))
        for key in decision.cancel:
            self.schedule.pop(key, None)
            self.cancel[key] = None
        for timer in decision.schedule:
            self.cancel.pop(timer.key, None)
            self.schedule.pop(timer.key, None)  # re-inserted: the last word comes last
            self.schedule[timer.key] = timer
        if cause is not None:
            self.last_event[lead_id] = cause


def _runs(
    decision: Decision[Any],
) -> list[tuple[list[EventPayload], datetime | None]]:
    """The decision's events in order, as runs that share a time (one run unless some are
    ``Stamped`` with another time): each run is appended with one call."""
    runs: list[tuple[list[EventPayload], datetime | None]] = []
    for item in decision.events:
        payload, at = (
            (item.payload, item.occurred_at)
            if isinstance(item, Stamped)
            else (item, decision.occurred_at)
        )
        if runs and runs[-1][1] == at:
            runs[-1][0].append(payload)
        else:
            runs.append(([payload], at))
    return runs


def decide_each(
    handler: BatchHandler[S, C],
    states: Mapping[UUID, S],
    events: Sequence[Envelope],
    ctx: C,
    outcome: Outcome[S] | None = None,
) -> Outcome[S]:
    """Decide ``events`` in order, each seeing the state its lead's earlier ones left: pure,
    the batch's decisions exactly as if each event had been handled in its own transaction."""
    if outcome is None:
        outcome = Outcome(states=dict(states))
    for event in events:
        lead_id = event.lead_id
        outcome.record(lead_id, event, handler.decide(outcome.states.get(lead_id), event, ctx))
    return outcome


def lead_ids_of(events: Sequence[Envelope]) -> list[UUID]:
    """The batch's leads, each once, in the order they first arrive."""
    return list(dict.fromkeys(e.lead_id for e in events))


# -- carrying decisions out ------------------------------------------------------------------


async def _decide_batch(
    uow: UnitOfWork, handler: BatchHandler[S, C], events: Sequence[Envelope]
) -> None:
    tx = uow.tx
    ctx = await handler.context(tx, events)
    states = await handler.load(tx, lead_ids_of(events), ctx)
    outcome: Outcome[S] = Outcome(states=dict(states))
    for start in range(0, len(events), YIELD_EVERY):
        if start:
            await asyncio.sleep(0)
        decide_each(handler, states, events[start : start + YIELD_EVERY], ctx, outcome)
    await _carry_out(uow, handler, ctx, outcome, events[-1] if events else None)


async def _carry_out(
    uow: UnitOfWork,
    handler: BatchHandler[S, C],
    ctx: C,
    outcome: Outcome[S],
    fallback_cause: Envelope | None,
) -> None:
    """Append the decisions' events (buffered: the unit of work writes them with one
    multi-row insert), cancel and schedule the timers (one statement each; the unit of work
    remembers the soonest, which wakes the runner after commit), save the changed states."""
    noted = _appended_hook(handler)
    for lead_id, payloads, cause, occurred_at in outcome.appends:
        envelopes = await uow.append(lead_id, payloads, occurred_at=occurred_at, causation=cause)
        if noted is not None:
            noted(lead_id, envelopes, ctx)
    if outcome.cancel:
        await uow.timers.cancel_many(list(outcome.cancel))
    if outcome.schedule:
        await uow.timers.schedule_many(list(outcome.schedule.values()))
    for extra in await handler.save(uow.tx, outcome.changed, ctx):
        cause = extra.causation or outcome.last_event.get(extra.lead_id) or fallback_cause
        await uow.append(
            extra.lead_id, extra.payloads, occurred_at=extra.occurred_at, causation=cause
        )


class NotesAppended(Protocol[C_in]):
    """A batch handler that also needs the envelopes its decisions appended (their ids,
    e.g. routing's assignment rows name the ``lead.assigned`` that made them) defines
    ``appended``: called for each decision's events, in decision order, before ``save``;
    it may only note them in the batch's context."""

    def appended(self, lead_id: UUID, envelopes: Sequence[Envelope], ctx: C_in) -> None: ...


def _appended_hook(
    handler: BatchHandler[Any, C],
) -> Callable[[UUID, Sequence[Envelope], C], None] | None:
    hook = getattr(handler, "appended", None)
    return hook if callable(hook) else None


class _Collected:
    """The events each batch handler was given in this unit of work, in arrival order."""

    def __init__(self) -> None:
        self.by_handler: dict[int, tuple[BatchHandler[Any, Any], list[Envelope]]] = {}

    def add(self, handler: BatchHandler[Any, Any], event: Envelope) -> None:
        entry = self.by_handler.get(id(handler))
        if entry is None:
            entry = self.by_handler[id(handler)] = (handler, [])
        entry[1].append(event)


async def _decide_collected(uow: UnitOfWork, collected: _Collected) -> None:
    for handler, events in collected.by_handler.values():
        await _decide_batch(uow, handler, events)


def _collected(uow: UnitOfWork) -> _Collected:
    return uow.batch(_Collected, _Collected, lambda c: _decide_collected(uow, c))


def on_batch(handler: BatchHandler[Any, Any]) -> Handler:
    """The consumer ``Handler`` for ``handler``: register it for every event type the
    handler decides (``handlers={LeadQualified: h, LeadDisqualified: h}``). It collects the
    event; the unit of work's flush decides the collected batch."""

    async def collect(event: Envelope, uow: UnitOfWork) -> None:
        _collected(uow).add(handler, event)

    collect.__qualname__ = f"on_batch({type(handler).__name__})"
    return collect


async def flush_batches(uow: UnitOfWork) -> None:
    """Decide and write every batch collected in ``uow`` so far, now: a per-event handler
    (an erasure, a merge) calls this first so it never overtakes an earlier event."""
    await uow.flush_batch(_Collected)


async def run_decision(
    uow: UnitOfWork,
    handler: BatchHandler[S, C],
    lead_id: UUID,
    decide: Callable[[S | None, C], Decision[S]] | None = None,
    *,
    event: Envelope | None = None,
) -> Decision[S]:
    """One decision through the batch path, for API commands and timer handlers: the
    batches collected so far first, then ``context`` → ``load`` (this lead) → ``decide`` →
    events, timers, ``save``. ``decide(state, ctx)`` is the command's pure decision; without
    it ``event`` is decided by the handler's own ``decide``. The events appended name
    ``event`` (else the unit of work's causation) as their cause."""
    await flush_batches(uow)
    cause = event or uow.causation
    tx = uow.tx
    ctx = await handler.context(tx, [event] if event is not None else [])
    states = await handler.load(tx, [lead_id], ctx)
    state = states.get(lead_id)
    if decide is not None:
        decision = decide(state, ctx)
    elif event is not None:
        decision = handler.decide(state, event, ctx)
    else:
        raise TypeError("run_decision needs a decide function or an event to decide")
    outcome: Outcome[S] = Outcome(states=dict(states))
    outcome.record(lead_id, cause, decision)
    await _carry_out(uow, handler, ctx, outcome, cause)
    return decision
