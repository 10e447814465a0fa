"""Consumed events -> routing decisions: assign on LeadQualified, follow the lead's stage,
reassign or return it on SLA escalations, remember SLA due times for the rep queue, and keep
the contact card a rep calls (learnt from intake, blanked on erasure).

The runner owns the transaction (one per batch), the inbox and the offsets; handlers read and
lock rows through ``uow.tx`` and append their facts with ``uow.append``. Assignments are
decided per batch (see ``RoutingHandlers``): a few statements for the whole batch instead of
a dozen round trips per lead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from functools import lru_cache, partial
from typing import Any
from uuid import UUID

from leadflow.events import Handler, UnitOfWork, skip_historical
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import (
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.routing import (
    AccountRouted,
    LeadAssigned,
    LeadReassigned,
    LeadRecycled,
    RepSkip,
    RuleMiss,
)
from leadflow.events.catalogue.scoring import (
    AccountQualified,
    ExpansionOpened,
    LeadDisqualified,
    LeadQualified,
    LeadReinstated,
    NurtureEnrolled,
)
from leadflow.events.catalogue.sla import EscalationRaised, SlaBreached, SlaMet, SlaStarted
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.lifecycle import LeadLifecycle, Stage, TransitionRefused
from leadflow.events.shredding import shred
from leadflow.events.sql import Tx
from leadflow.routing import store
from leadflow.routing.contacts import contact_card
from leadflow.routing.domain import (
    Decision,
    Roster,
    choose_assignee,
    lead_for_rules,
    manual_reassignment,
)
from leadflow.routing.store import AssignmentRow, Config, ConfigCache, LeadRow

log = logging.getLogger("leadflow.routing")


async def simulate_decision(
    tx: Tx,
    config: Config,
    lead: LeadSnapshot,
    now: datetime,
    *,
    exclude: frozenset[str] = frozenset(),
) -> Decision:
    """The dry run: decide on the committed state without locking or writing anything."""
    state = await store.load_state(tx, now, fold=False)
    return choose_assignee(lead, config.rules, config.roster, state.view(), now, exclude=exclude)


def _released(row: LeadRow) -> str | None:
    """The rep whose open load drops when this lead gets a new owner."""
    return row.rep_id if row.in_sales else None


@lru_cache(maxsize=8192)
def _rep_skip(rep_id: str, reason: str) -> RepSkip:
    return RepSkip(rep_id=rep_id, reason=reason)


@lru_cache(maxsize=8192)
def _rule_miss(rule_id: str, reason: str) -> RuleMiss:
    return RuleMiss(rule_id=rule_id, reason=reason)


# The explanation repeats itself across leads (same rules, same reasons): the payload items
# are frozen, so one instance per (id, reason) is shared instead of validated per lead.


def _rep_skips(decision: Decision) -> list[RepSkip]:
    return [_rep_skip(s.rep_id, s.reason) for s in decision.skipped_reps]


def _who_to_tell(decision: Decision, roster: Roster) -> dict[str, str | None]:
    """Who notify tells of this decision: the rep's name and address, the team manager's."""
    rep = roster.reps.get(decision.rep_id) if decision.rep_id else None
    team = roster.teams.get(decision.team_id) if decision.team_id else None
    return {
        "rep_name": (rep.name or None) if rep else None,
        "rep_email": rep.email if rep else None,
        "manager_email": team.manager_email if team else None,
    }


def _rule_misses(decision: Decision) -> list[RuleMiss]:
    return [_rule_miss(m.rule_id, m.reason) for m in decision.missed]


def _apply(row: LeadRow, event_type: str) -> LeadLifecycle | None:
    """The lifecycle after ``event_type``; None (logged) when the move is refused. A refused
    move arriving from another service is data, not a poison record: events of different
    producers can arrive in either order."""
    try:
        return row.lifecycle.apply(event_type)
    except TransitionRefused as exc:
        log.warning("ignoring %s for lead %s: %s", event_type, row.lead_id, exc)
        return None


def _owned(row: LeadRow, decision: Decision, now: datetime, **fields: Any) -> LeadRow:
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


async def reassign_by_manager(
    uow: UnitOfWork, cache: ConfigCache, row: LeadRow, rep_id: str, reason: str
) -> tuple[Envelope, Decision]:
    """A sales manager's reassignment of the locked lead ``row``, written like the SLA's:
    the same ``lead.reassigned`` fact (so sla-monitor restarts the clock for the new owner,
    notify tells them and analytics counts it), the same load and decision bookkeeping.
    The caller holds the routing decision lock and the lead's row lock.
    Raises ``ReassignRefused`` (nothing written) when the move is not possible."""
    tx = uow.tx
    now = uow.clock.now()
    config = await cache.get(tx)
    state = await store.load_state(tx, now, fold=True)
    decision = manual_reassignment(
        in_sales=row.in_sales,
        stage=row.stage.value if row.stage else None,
        current_rep_id=row.rep_id,
        rep_id=rep_id,
        reason=reason,
        roster=config.roster,
        rules=config.rules,
        state=state.view(),
        now=now,
    )
    state.record(decision, config.roster, now, released=_released(row))
    # The manager's choice lifts an SLA exclusion of the chosen rep on this lead.
    excluded = [r for r in row.excluded_reps if r != rep_id]
    await store.write_decisions(tx, [], [_owned(row, decision, now, excluded_reps=excluded)], state)
    [reassigned] = await uow.append(
        row.lead_id,
        LeadReassigned(
            from_rep_id=row.rep_id,
            assignee_kind=decision.assignee_kind,
            rep_id=decision.rep_id,
            team_id=decision.team_id,
            queue_id=decision.queue_id,
            reason=decision.reason,
            lead=row.snapshot,
            method=decision.method,
            **_who_to_tell(decision, config.roster),
        ),
    )
    explanation = {**decision.explanation(), "from_rep_id": row.rep_id, "by": "sales manager"}
    await store.insert_reassignment(
        tx, store.AssignmentRow(row.lead_id, row.cycle, now, reassigned.event_id, explanation)
    )
    return reassigned, decision


class RoutingHandlers:
    """Handlers sharing the configuration cache of one app instance.

    ``LeadQualified``, ``LeadDisqualified`` and ``NurtureEnrolled`` are not handled one by
    one: the handler collects them per unit of work (one consumer batch = one transaction)
    and decides them together, in delivery order, when the unit of work flushes, before
    the kernel writes the events and commits. Under the routing decision lock (taken when
    the batch assigns anyone) the batch locks its lead rows, reads counts and credits once,
    makes the decisions in memory (each sees the previous ones — a lead leaving sales frees
    its rep for the next — exactly as sequential handling would) and writes everything back
    in one statement. Handlers that touch lead rows otherwise (escalations) decide the
    collected events first, so per-lead order is kept.
    """

    def __init__(self, cache: ConfigCache) -> None:
        self.cache = cache

    async def on_lead_qualified(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, LeadQualified)
        self._collect(uow, event)

    async def on_left_sales(self, event: Envelope, uow: UnitOfWork) -> None:
        """Disqualified or (re-)enrolled in nurture: the stage moves, the owner's load drops.
        Reinstated (a do-not-contact lifted): the stage moves back to inquiry, and the
        qualification that follows is a new cycle, routed afresh. An expansion opened (a
        customer's new buying cycle): the same, in the expansion cycle; its qualification is
        routed like any MQL, so to the account owner first."""
        self._collect(uow, event)

    def _collect(self, uow: UnitOfWork, event: Envelope) -> None:
        uow.batch(self, list, partial(self._decide, uow)).append(event)

    async def _decide_pending(self, uow: UnitOfWork) -> None:
        await uow.flush_batch(self)

    async def _decide(self, uow: UnitOfWork, events: list[Envelope]) -> None:
        tx = uow.tx
        now = uow.clock.now()
        assigns = any(isinstance(e.payload, LeadQualified) for e in events)
        # The lock before the lead rows: every decider locks in this order. A batch that
        # only moves leads out of sales changes no counts a decision reads: no lock.
        config = await self.cache.get(tx, await store.decision_lock(tx)) if assigns else None
        rows, cycles = await store.lock_leads(tx, (e.lead_id for e in events))
        state = await store.load_state(tx, now, fold=True) if assigns else None
        view = state.view() if state is not None else None
        assignments: list[AssignmentRow] = []
        changed: dict[UUID, LeadRow] = {}
        causation = uow.causation
        try:
            for event in events:
                p = event.payload
                row = rows[event.lead_id]
                after = _apply(row, event.event_type)
                if after is None:
                    continue
                if not isinstance(p, LeadQualified):  # left sales: its rep's load drops
                    if state is not None and row.in_sales and row.rep_id is not None:
                        state.release(row.rep_id)
                    rows[row.lead_id] = changed[row.lead_id] = replace(
                        row, stage=after.stage, held_from=after.held_from, buying_cycle=after.cycle
                    )
                    continue
                assert config is not None and state is not None and view is not None
                # A new qualification cycle starts when the lead comes (back) from outside
                # sales; a repeated LeadQualified within the same cycle must not assign twice.
                cycle = row.cycle if row.stage is Stage.MQL else row.cycle + 1
                if cycle in cycles[row.lead_id]:
                    log.info("lead %s already assigned in cycle %s", row.lead_id, cycle)
                    continue
                lead = lead_for_rules(p.lead, p.grade)
                decision = choose_assignee(lead, config.rules, config.roster, view, now)
                state.record(decision, config.roster, now, released=_released(row))
                uow.causation = event  # the assignment is caused by this qualification
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
                        cycle=after.cycle.value,
                        skipped=_rule_misses(decision),
                        skipped_reps=_rep_skips(decision),
                        lead=lead,
                        **_who_to_tell(decision, config.roster),
                    ),
                )
                cycles[row.lead_id].add(cycle)
                assignments.append(
                    AssignmentRow(
                        row.lead_id, cycle, now, appended.event_id, decision.explanation()
                    )
                )
                rows[row.lead_id] = changed[row.lead_id] = _owned(
                    row,
                    decision,
                    now,
                    stage=after.stage,
                    held_from=after.held_from,
                    buying_cycle=after.cycle,
                    cycle=cycle,
                    snapshot=lead,
                    excluded_reps=[] if cycle != row.cycle else row.excluded_reps,
                )
        finally:
            uow.causation = causation
        if changed:
            await store.write_decisions(tx, assignments, list(changed.values()), state)

    async def on_escalation(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, EscalationRaised)
        if p.action not in ("reassign", "return_to_marketing"):
            return
        await self._decide_pending(uow)
        tx = uow.tx
        if p.action == "reassign":
            await store.decision_lock(tx)
        row = await store.lock_lead(tx, event.lead_id)
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
            await store.set_lifecycle(tx, row.lead_id, after)
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
        config = await self.cache.get(tx)
        state = await store.load_state(tx, now, fold=True)
        decision = choose_assignee(
            row.snapshot, config.rules, config.roster, state.view(), now, exclude=excluded
        )
        state.record(decision, config.roster, now, released=_released(row))
        owned = _owned(row, decision, now, excluded_reps=sorted(excluded))
        await store.write_decisions(tx, [], [owned], state)
        [reassigned] = await uow.append(
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
                **_who_to_tell(decision, config.roster),
            ),
        )
        # The assignment API lists it among the lead's decisions, with why it happened.
        explanation = {
            **decision.explanation(),
            "from_rep_id": row.rep_id,
            "sla_id": p.sla_id,
            "escalation_step": p.step,
        }
        await store.insert_reassignment(
            tx, store.AssignmentRow(row.lead_id, row.cycle, now, reassigned.event_id, explanation)
        )

    def _contacts(self, uow: UnitOfWork) -> store.ContactWrites:
        """The batch's contact cards and erasures: one statement for the batch."""
        return uow.batch(
            (self, "contact"), store.ContactWrites, partial(store.write_contacts, uow.tx)
        )

    async def on_contact(self, event: Envelope, uow: UnitOfWork) -> None:
        """Captured or profile updated: the rep's card of whom to call follows intake."""
        p = event.payload
        assert isinstance(p, LeadCaptured | LeadProfileUpdated)
        self._contacts(uow).card(event.lead_id, contact_card(p.contact))
        if isinstance(p, LeadCaptured):
            await self._external_id(event, uow)

    async def on_inquiry(self, event: Envelope, uow: UnitOfWork) -> None:
        """Another inquiry may carry the lead's id in another system (a second import)."""
        await self._external_id(event, uow)

    async def _external_id(self, event: Envelope, uow: UnitOfWork) -> None:
        """The source system's id of the lead, kept so a CRM outcome can name the lead by it."""
        p = event.payload
        assert isinstance(p, LeadCaptured | InquiryReceived)
        if p.external_id:
            await store.add_external_id(uow.tx, event.lead_id, p.external_system, p.external_id)

    async def on_erased(self, event: Envelope, uow: UnitOfWork) -> None:
        """Erasure: the card goes, and no later event of this lead brings it back."""
        assert isinstance(event.payload, LeadErased)
        self._contacts(uow).erase(event.lead_id, event.occurred_at)
        await store.forget_external_ids(uow.tx, event.lead_id)
        # Reps' notes in the log become unreadable: their key goes (crypto-shredding).
        await shred(uow.conn, [event.lead_id], event.occurred_at)

    def _sla_clocks(self, uow: UnitOfWork) -> store.SlaClockWrites:
        """The batch's clock changes: a batch of SLA events costs a statement, not one each."""
        return uow.batch(
            (self, "sla"), store.SlaClockWrites, partial(store.write_sla_clocks, uow.tx)
        )

    async def on_sla_started(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, SlaStarted)
        self._sla_clocks(uow).start(
            sla_id=p.sla_id,
            lead_id=event.lead_id,
            policy_id=p.policy_id,
            rep_id=p.rep_id,
            due_at=p.due_at,
            warn_at=p.warn_at,
        )

    async def on_sla_met(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, SlaMet)
        self._sla_clocks(uow).status(event.payload.sla_id, "met")

    async def on_sla_breached(self, event: Envelope, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, SlaBreached)
        self._sla_clocks(uow).status(event.payload.sla_id, "breached")

    async def on_account_qualified(self, event: Envelope, uow: UnitOfWork) -> None:
        """A marketing-qualified account goes to its owner (routing owns account owners,
        ``PUT /v1/routing/accounts/{key}``, by account id or company domain). Its people's
        MQLs are routed one by one as ever (the account owner first); this tells the owner
        the account as a whole is ready."""
        p = event.payload
        assert isinstance(p, AccountQualified)
        await self._decide_pending(uow)
        owners = await store.account_owners(uow.tx)
        rep_id, reason = None, "nobody owns the account: set one with PUT /v1/routing/accounts"
        for key in (p.account_id, p.account_domain):
            if key and owners.get(key.lower()):
                rep_id, reason = owners[key.lower()], f"owner of account {key}"
                break
        await uow.append(
            event.lead_id,
            AccountRouted(
                account_id=p.account_id,
                account_domain=p.account_domain,
                rep_id=rep_id,
                reason=reason,
            ),
        )

    def handlers(self) -> dict[type[EventPayload] | str, Handler]:
        return {
            AccountQualified: self.on_account_qualified,
            LeadQualified: self.on_lead_qualified,
            LeadDisqualified: self.on_left_sales,
            LeadReinstated: self.on_left_sales,
            ExpansionOpened: self.on_left_sales,
            NurtureEnrolled: self.on_left_sales,
            EscalationRaised: self.on_escalation,
            LeadCaptured: self.on_contact,
            LeadProfileUpdated: self.on_contact,
            LeadErased: self.on_erased,
            InquiryReceived: self.on_inquiry,
            SlaStarted: self.on_sla_started,
            SlaMet: self.on_sla_met,
            SlaBreached: self.on_sla_breached,
        }


def build_handlers(cache: ConfigCache | None = None) -> dict[type[EventPayload] | str, Handler]:
    """Routing's handlers; imported history (``historical`` events) is never routed."""
    return skip_historical(RoutingHandlers(cache or ConfigCache()).handlers())
