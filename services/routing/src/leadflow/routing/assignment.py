"""Who gets a qualified lead, as the kernel's batch handler (``leadflow.events.batch``).

``LeadQualified`` assigns; ``LeadDisqualified``, ``NurtureEnrolled``, ``LeadReinstated`` and
``ExpansionOpened`` move the lead out of sales (its owner's load drops). A consumer batch of
them is decided together:

- ``context`` (once per batch): when the batch assigns anyone, the routing decision lock
  (replicas take turns), the configuration and the live loads — open and daily counts and
  round-robin credits — read once;
- ``load``: the batch's lead rows, inserted or locked in one statement, with the cycles each
  was already assigned in;
- ``decide`` (per event, in arrival order): one lead at a time against the context's loads,
  which each decision moves on (a batch of 500 leads spreads as 500 sequential decisions
  would, and a lead leaving sales frees its rep for the next);
- ``save``: the arbiter rows, the changed lead rows, the day counts and the credits in one
  statement.

``decide`` does no I/O and reads no clock (``ctx.now``): tests/unit/routing decide batches
with plain values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from leadflow.events.batch import Appended, Decision
from leadflow.events.catalogue.routing import LeadAssigned, RepSkip, RuleMiss
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.clock import Clock, SystemClock
from leadflow.events.envelope import Envelope
from leadflow.events.lifecycle import LeadLifecycle, Stage, TransitionRefused
from leadflow.events.sql import Tx
from leadflow.routing import store
from leadflow.routing.domain import (
    LeadRow,
    LiveState,
    Placement,
    Roster,
    RoutingState,
    choose_assignee,
    lead_for_rules,
)
from leadflow.routing.store import AssignmentRow, Config, ConfigCache

log = logging.getLogger("leadflow.routing")


def released(row: LeadRow) -> str | None:
    """The rep whose open load drops when this lead gets a new owner."""
    return row.rep_id if row.in_sales else None


# The explanation repeats itself across leads (same rules, same reasons): the payload items
# are frozen, so one instance per (id, reason) is shared instead of validated per lead.
@lru_cache(maxsize=8192)
def _rep_skip(rep_id: str, reason: str) -> RepSkip:
    return RepSkip(rep_id=rep_id, reason=reason)


@lru_cache(maxsize=8192)
def _rule_miss(rule_id: str, reason: str) -> RuleMiss:
    return RuleMiss(rule_id=rule_id, reason=reason)


def rep_skips(decision: Placement) -> list[RepSkip]:
    return [_rep_skip(s.rep_id, s.reason) for s in decision.skipped_reps]


def rule_misses(decision: Placement) -> list[RuleMiss]:
    return [_rule_miss(m.rule_id, m.reason) for m in decision.missed]


def who_to_tell(decision: Placement, roster: Roster) -> dict[str, str | None]:
    """Who notify tells of this decision: the rep's name and address, the team manager's."""
    rep = roster.reps.get(decision.rep_id) if decision.rep_id else None
    team = roster.teams.get(decision.team_id) if decision.team_id else None
    return {
        "rep_name": (rep.name or None) if rep else None,
        "rep_email": rep.email if rep else None,
        "manager_email": team.manager_email if team else None,
    }


def moved(row: LeadRow, event_type: str) -> LeadLifecycle | None:
    """The lifecycle after ``event_type``; None (logged) when the move is refused. A refused
    move arriving from another service is data, not a poison record: events of different
    producers can arrive in either order."""
    try:
        return row.lifecycle.apply(event_type)
    except TransitionRefused as exc:
        log.warning("ignoring %s for lead %s: %s", event_type, row.lead_id, exc)
        return None


def owned(row: LeadRow, decision: Placement, now: datetime, **fields: Any) -> LeadRow:
    """The lead row after ``decision`` gave it its owner (plus any other changed fields)."""
    return replace(
        row,
        assignee_kind=decision.assignee_kind,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        queue_id=decision.queue_id,
        assigned_at=now,
        **fields,
    )


@dataclass
class AssignContext:
    """What a batch decides with: the time, and — when it assigns anyone — the configuration
    and the live loads (moved on by every decision of the batch). ``pending`` holds each
    assignment's arbiter row until its ``lead.assigned`` has an id; ``arbiter`` the rows
    ``save`` writes."""

    now: datetime
    config: Config | None = None
    loads: LiveState | None = None
    pending: dict[UUID, list[tuple[int, Mapping[str, Any]]]] = field(default_factory=dict)
    arbiter: list[AssignmentRow] = field(default_factory=list)

    @property
    def view(self) -> RoutingState:
        assert self.loads is not None
        return self.loads.view()


def decide_assignment(row: LeadRow, event: Envelope, ctx: AssignContext) -> Decision[LeadRow]:
    """One event of the batch on the lead's current row (what the batch's earlier events
    left). A lead leaving sales frees its owner; a qualification assigns it (once per
    qualification cycle) against the context's loads, which the decision then moves on."""
    after = moved(row, event.event_type)
    if after is None:
        return Decision()
    payload = event.payload
    if not isinstance(payload, LeadQualified):  # left sales: its rep's load drops
        if ctx.loads is not None and row.in_sales and row.rep_id is not None:
            ctx.loads.release(row.rep_id)
        return Decision(
            state=replace(
                row, stage=after.stage, held_from=after.held_from, buying_cycle=after.cycle
            )
        )
    assert ctx.config is not None and ctx.loads is not None
    # A new qualification cycle starts when the lead comes (back) from outside sales; a
    # repeated LeadQualified within the same cycle must not assign twice.
    cycle = row.cycle if row.stage is Stage.MQL else row.cycle + 1
    if cycle in row.assigned_cycles:
        log.info("lead %s already assigned in cycle %s", row.lead_id, cycle)
        return Decision()
    config = ctx.config
    lead = lead_for_rules(payload.lead, payload.grade)
    decision = choose_assignee(lead, config.rules, config.roster, ctx.view, ctx.now)
    ctx.loads.record(decision, config.roster, ctx.now, released=released(row))
    ctx.pending.setdefault(row.lead_id, []).append((cycle, decision.explanation()))
    assigned = LeadAssigned(
        assignee_kind=decision.assignee_kind,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        queue_id=decision.queue_id,
        rule_id=decision.rule_id,
        rules_version=decision.rules_version,
        method=decision.method,
        reason=decision.reason,
        cycle=after.cycle.value,
        skipped=rule_misses(decision),
        skipped_reps=rep_skips(decision),
        lead=lead,
        **who_to_tell(decision, config.roster),
    )
    state = owned(
        row,
        decision,
        ctx.now,
        stage=after.stage,
        held_from=after.held_from,
        buying_cycle=after.cycle,
        cycle=cycle,
        snapshot=lead,
        excluded_reps=[] if cycle != row.cycle else row.excluded_reps,
        assigned_cycles=row.assigned_cycles | {cycle},
    )
    return Decision(state=state, events=[assigned])


class Assignment:
    """The batch handler: register ``on_batch(Assignment(cache, clock))`` for the events
    ``decide_assignment`` decides (see the module docstring)."""

    def __init__(self, cache: ConfigCache, clock: Clock | None = None) -> None:
        self.cache = cache
        self.clock = clock or SystemClock()

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> AssignContext:
        ctx = AssignContext(now=self.clock.now())
        if any(isinstance(e.payload, LeadQualified) for e in events):
            # The lock before the lead rows: every decider locks in this order. A batch that
            # only moves leads out of sales changes no counts a decision reads: no lock.
            ctx.config = await self.cache.get(tx, await store.decision_lock(tx))
            ctx.loads = await store.load_state(tx, ctx.now, fold=True)
        return ctx

    async def load(
        self, tx: Tx, lead_ids: Sequence[UUID], ctx: AssignContext
    ) -> dict[UUID, LeadRow]:
        return await store.lock_leads(tx, lead_ids)

    def decide(
        self, state: LeadRow | None, event: Envelope, ctx: AssignContext
    ) -> Decision[LeadRow]:
        assert state is not None  # load inserts the rows it does not find
        return decide_assignment(state, event, ctx)

    def appended(self, lead_id: UUID, envelopes: Sequence[Envelope], ctx: AssignContext) -> None:
        """Each ``lead.assigned`` now has its id: its arbiter row names it."""
        for envelope in envelopes:
            if isinstance(envelope.payload, LeadAssigned):
                cycle, explanation = ctx.pending[lead_id].pop(0)
                ctx.arbiter.append(
                    AssignmentRow(lead_id, cycle, ctx.now, envelope.event_id, explanation)
                )

    async def save(
        self, tx: Tx, changed: Mapping[UUID, LeadRow], ctx: AssignContext
    ) -> Sequence[Appended]:
        if changed:
            await store.write_decisions(tx, ctx.arbiter, list(changed.values()), ctx.loads)
        return ()
