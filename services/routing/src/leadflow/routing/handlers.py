"""Consumed events -> routing decisions: assign on LeadQualified, follow the lead's stage,
reassign or return it on SLA escalations, and remember SLA due times for the rep queue.

The runner owns the transaction (one per batch), the inbox and the offsets; handlers read and
lock rows through ``uow.conn`` and append their facts with ``uow.append``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import (
    LeadAssigned,
    LeadReassigned,
    LeadRecycled,
    RepSkip,
    RuleMiss,
)
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadQualified, NurtureEnrolled
from leadflow.events.catalogue.sla import EscalationRaised, SlaBreached, SlaMet, SlaStarted
from leadflow.events.consumer import Handler, UnitOfWork
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.lifecycle import LeadLifecycle, Stage, TransitionRefused
from leadflow.routing import store
from leadflow.routing.domain import Decision, choose_assignee, lead_for_rules
from leadflow.routing.store import Config, ConfigCache, LeadRow

log = logging.getLogger("leadflow.routing")


async def decide(
    conn: AsyncConnection,
    config: Config,
    lead: LeadSnapshot,
    now: datetime,
    *,
    exclude: frozenset[str] = frozenset(),
    lock: bool = True,
) -> Decision:
    """Decide, then take the chosen pool's pointer row FOR UPDATE and decide again on the
    locked credits and fresh counts: replicas deciding for one pool take turns, so
    round-robin stays fair and caps hold across them. ``lock=False`` is the dry run."""
    # The first pass only finds the pool; its credits are read under the lock below.
    state = await store.load_state(conn, now, pointers={} if lock else None)
    decision = choose_assignee(lead, config.rules, config.roster, state, now, exclude=exclude)
    if not lock:
        return decision
    locked: set[str] = set()
    for _ in range(3):
        key = decision.pool or (f"rep:{decision.rep_id}" if decision.rep_id else None)
        if key is None or key in locked:
            break
        credits = await store.lock_pointer(conn, key)
        locked.add(key)
        if decision.pool is not None and decision.team_id is not None:
            reps = [r.id for r in config.roster.team_members(decision.team_id)]
        else:
            reps = [decision.rep_id] if decision.rep_id else []
        state = await store.load_state(
            conn, now, {**state.pointers, key: credits}, only_reps=reps, base=state
        )
        decision = choose_assignee(lead, config.rules, config.roster, state, now, exclude=exclude)
    return decision


async def _record_owner(
    conn: AsyncConnection,
    config: Config,
    row: LeadRow,
    decision: Decision,
    now: datetime,
    **extra: object,
) -> None:
    if decision.pool is not None and decision.pointer is not None:
        await store.save_pointer(conn, decision.pool, decision.pointer)
    if decision.rep_id is not None:
        rep = config.roster.reps[decision.rep_id]
        await store.count_new(conn, rep.id, rep.local_day(now))
    await store.update_lead(
        conn,
        row.lead_id,
        assignee_kind=decision.assignee_kind,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        queue_id=decision.queue_id,
        assigned_at=now,
        **extra,
    )


def _rep_skips(decision: Decision) -> list[RepSkip]:
    return [RepSkip(rep_id=s.rep_id, reason=s.reason) for s in decision.skipped_reps]


def _apply(row: LeadRow, event_type: str) -> LeadLifecycle | None:
    """The lifecycle after ``event_type``; None (logged) when the move is refused. A refused
    move arriving from another service is data, not a poison record: events of different
    producers can arrive in either order."""
    try:
        return row.lifecycle.apply(event_type)
    except TransitionRefused as exc:
        log.warning("ignoring %s for lead %s: %s", event_type, row.lead_id, exc)
        return None


class RoutingHandlers:
    """Handlers sharing the configuration cache of one app instance."""

    def __init__(self, cache: ConfigCache) -> None:
        self.cache = cache

    async def on_lead_qualified(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, LeadQualified)
        conn = uow.conn
        row = await store.lock_lead(conn, event.lead_id, create=True)
        assert row is not None
        after = _apply(row, LeadQualified.event_type)
        if after is None:
            return
        # A new qualification cycle starts when the lead comes (back) from outside sales;
        # a repeated LeadQualified within the same cycle must not assign twice.
        cycle = row.cycle if row.stage is Stage.MQL else row.cycle + 1
        lead = lead_for_rules(p.lead, p.grade)
        now = uow.clock.now()
        config = await self.cache.get(conn)
        decision = await decide(conn, config, lead, now)
        if not await store.claim_assignment(conn, row.lead_id, cycle, now, decision.explanation()):
            log.info("lead %s already assigned in cycle %s", row.lead_id, cycle)
            return
        await _record_owner(
            conn,
            config,
            row,
            decision,
            now,
            stage=after.stage,
            held_from=after.held_from,
            cycle=cycle,
            snapshot=lead,
            excluded_reps=[] if cycle != row.cycle else row.excluded_reps,
        )
        [appended] = await uow.append(
            row.lead_id,
            LeadAssigned(
                assignee_kind=decision.assignee_kind,
                rep_id=decision.rep_id,
                team_id=decision.team_id,
                queue_id=decision.queue_id,
                rule_id=decision.rule_id,
                rules_version=decision.rules_version,
                method=decision.method,
                reason=decision.reason,
                skipped=[RuleMiss(rule_id=m.rule_id, reason=m.reason) for m in decision.missed],
                skipped_reps=_rep_skips(decision),
                lead=lead,
            ),
        )
        await store.set_assignment_event(conn, row.lead_id, cycle, appended.event_id)

    async def on_left_sales(self, event: Envelope, uow: UnitOfWork) -> None:
        """Disqualified or (re-)enrolled in nurture: the stage moves, the owner's load drops."""
        row = await store.lock_lead(uow.conn, event.lead_id, create=True)
        assert row is not None
        after = _apply(row, event.event_type)
        if after is not None:
            await store.set_lifecycle(uow.conn, row.lead_id, after)

    async def on_escalation(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, EscalationRaised)
        if p.action not in ("reassign", "return_to_marketing"):
            return
        conn = uow.conn
        row = await store.lock_lead(conn, event.lead_id)
        if row is None or not row.in_sales:
            log.info(
                "escalation %s for lead %s not in sales: nothing to do", p.action, event.lead_id
            )
            return
        if p.action == "return_to_marketing":
            after = _apply(row, LeadRecycled.event_type)
            if after is None:
                return
            await uow.append(
                row.lead_id,
                LeadRecycled(rep_id=row.rep_id, reason_code="sla_return", note=f"SLA {p.sla_id}"),
            )
            await store.set_lifecycle(conn, row.lead_id, after)
            return
        if p.rep_id is not None and row.rep_id is not None and p.rep_id != row.rep_id:
            # A late step of an SLA whose rep no longer owns the lead: the new owner did not
            # breach anything, so it keeps the lead.
            log.info(
                "escalation for rep %s but lead %s is owned by %s: ignored",
                p.rep_id,
                row.lead_id,
                row.rep_id,
            )
            return
        breacher = p.rep_id or row.rep_id
        excluded = frozenset(row.excluded_reps) | ({breacher} if breacher else set())
        now = uow.clock.now()
        config = await self.cache.get(conn)
        decision = await decide(conn, config, row.snapshot, now, exclude=excluded)
        await _record_owner(conn, config, row, decision, now, excluded_reps=sorted(excluded))
        await uow.append(
            row.lead_id,
            LeadReassigned(
                from_rep_id=row.rep_id,
                assignee_kind=decision.assignee_kind,
                rep_id=decision.rep_id,
                team_id=decision.team_id,
                queue_id=decision.queue_id,
                reason=f"SLA escalation step {p.step}: {decision.reason}",
                sla_id=p.sla_id,
                lead=row.snapshot,
                rule_id=decision.rule_id,
                method=decision.method,
                skipped_reps=_rep_skips(decision),
            ),
        )

    async def on_sla_started(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, SlaStarted)
        await store.sla_started(
            uow.conn,
            sla_id=p.sla_id,
            lead_id=event.lead_id,
            policy_id=p.policy_id,
            rep_id=p.rep_id,
            due_at=p.due_at,
            warn_at=p.warn_at,
        )

    async def on_sla_met(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, SlaMet)
        await store.sla_status(uow.conn, event.payload.sla_id, "met")

    async def on_sla_breached(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, SlaBreached)
        await store.sla_status(uow.conn, event.payload.sla_id, "breached")

    def handlers(self) -> dict[type[EventPayload] | str, Handler]:
        return {
            LeadQualified: self.on_lead_qualified,
            LeadDisqualified: self.on_left_sales,
            NurtureEnrolled: self.on_left_sales,
            EscalationRaised: self.on_escalation,
            SlaStarted: self.on_sla_started,
            SlaMet: self.on_sla_met,
            SlaBreached: self.on_sla_breached,
        }


def build_handlers(cache: ConfigCache | None = None) -> dict[type[EventPayload] | str, Handler]:
    return RoutingHandlers(cache or ConfigCache()).handlers()
