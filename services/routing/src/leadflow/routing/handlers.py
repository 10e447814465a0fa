"""Consumed events -> routing decisions: assign on LeadQualified, follow the lead's stage,
reassign or return it on SLA escalations, remember SLA due times for the rep queue, and keep
the contact card a rep calls (learnt from intake, blanked on erasure).

The runner owns the transaction (one per batch), the inbox and the offsets; handlers read and
lock rows through ``uow.tx`` and append their facts with ``uow.append``. Assignments are
decided per batch by the kernel's batch handler (``assignment.Assignment``): a few
statements for the whole batch instead of a dozen round trips per lead.
"""

from __future__ import annotations

import logging
from datetime import datetime

from leadflow.events import Handler, UnitOfWork, flush_batches, on_batch, skip_historical
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import (
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.routing import (
    AccountRouted,
    LeadRecycled,
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
from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.errors import UnknownLead
from leadflow.events.sql import Tx
from leadflow.routing import store
from leadflow.routing.assignment import (
    Assignment,
    moved,
)
from leadflow.routing.commands.reassign import (
    Reassign,
    Reassignment,
    decide_escalation,
    decide_reassign,
)
from leadflow.routing.domain import (
    Placement,
    choose_assignee,
)
from leadflow.routing.learnt import ContactFacts, SlaClocks
from leadflow.routing.store import Config, ConfigCache, LeadRow

log = logging.getLogger("leadflow.routing")


async def simulate_decision(
    tx: Tx,
    config: Config,
    lead: LeadSnapshot,
    now: datetime,
    *,
    exclude: frozenset[str] = frozenset(),
) -> Placement:
    """The dry run: decide on the committed state without locking or writing anything."""
    state = await store.load_state(tx, now, fold=False)
    return choose_assignee(lead, config.rules, config.roster, state.view(), now, exclude=exclude)


async def record_reassignment(
    uow: UnitOfWork, before: LeadRow, done: Reassignment, now: datetime
) -> Envelope:
    """Record a decided reassignment whose lead row and loads the caller has written
    (``write_decisions``): the ``lead.reassigned`` fact (sla-monitor restarts the clock for
    the new owner, notify tells them, analytics counts it) and its explanation, which the
    assignment API lists. The caller holds the routing decision lock and the lead's lock."""
    [reassigned] = await uow.append(before.lead_id, done.event)
    row = store.AssignmentRow(
        before.lead_id, before.cycle, now, reassigned.event_id, done.explanation
    )
    await store.insert_reassignment(uow.tx, row)
    return reassigned


async def reassign_by_manager(
    uow: UnitOfWork, cache: ConfigCache, cmd: Reassign
) -> tuple[Envelope, Reassignment]:
    """A sales manager's reassignment (``Reassign``), run in ``uow``: under the routing
    decision lock (loads and caps stay exact against concurrent assignments) and the lead's
    row lock. Raises ``UnknownLead``, or ``ReassignRefused`` (nothing written)."""
    tx = uow.tx
    await store.decision_lock(tx)
    row = await store.lock_lead(tx, cmd.lead_id)
    if row is None:
        raise UnknownLead(cmd.lead_id)
    now = uow.clock.now()
    config = await cache.get(tx)
    loads = await store.load_state(tx, now, fold=True)
    done = decide_reassign(cmd, row, config, loads, now)
    await store.write_decisions(tx, [], [done.lead], loads)
    return await record_reassignment(uow, row, done, now), done


class RoutingHandlers:
    """Handlers sharing the configuration cache of one app instance.

    ``LeadQualified`` and the events that move a lead out of sales (``LeadDisqualified``,
    ``NurtureEnrolled``, ``LeadReinstated``, ``ExpansionOpened``) are decided per consumer
    batch by the kernel's batch handler (``assignment.Assignment``). The other handlers go
    one event at a time; those that touch lead rows (escalations, account routing) decide
    the collected batch first (``flush_batches``), so per-lead order is kept.
    """

    def __init__(self, cache: ConfigCache, clock: Clock | None = None) -> None:
        self.cache = cache
        self.assignment = Assignment(cache, clock)
        batched = on_batch(self.assignment)
        self.on_lead_qualified: Handler = batched
        # Disqualified or (re-)enrolled in nurture: the stage moves, the owner's load drops.
        # Reinstated (a do-not-contact lifted): the stage moves back to inquiry, and the
        # qualification that follows is a new cycle, routed afresh. An expansion opened (a
        # customer's new buying cycle): the same, in the expansion cycle; its qualification
        # is routed like any MQL, so to the account owner first.
        self.on_left_sales: Handler = batched
        # Facts learnt from intake and sla-monitor (learnt.py): a statement per table a batch.
        self.on_contact: Handler = on_batch(ContactFacts())
        self.on_sla_clock: Handler = on_batch(SlaClocks())

    async def on_escalation(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, EscalationRaised)
        if p.action not in ("reassign", "return_to_marketing"):
            return
        await flush_batches(uow)
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
            after = moved(row, LeadRecycled.event_type)
            if after is None:
                return
            await uow.append(
                row.lead_id,
                LeadRecycled(rep_id=row.rep_id, reason_code="sla_return", note=f"SLA {p.sla_id}"),
            )
            await store.set_lifecycle(tx, row.lead_id, after)
            return
        now = uow.clock.now()
        config = await self.cache.get(tx)
        loads = await store.load_state(tx, now, fold=True)
        done = decide_escalation(p, row, config, loads, now)
        if done is None:
            log.info(
                "escalation for rep %s but lead %s is owned by %s: ignored",
                p.rep_id,
                row.lead_id,
                row.rep_id,
            )
            return
        await store.write_decisions(tx, [], [done.lead], loads)
        await record_reassignment(uow, row, done, now)

    async def on_account_qualified(self, event: Envelope, uow: UnitOfWork) -> None:
        """A marketing-qualified account goes to its owner (routing owns account owners,
        ``PUT /v1/routing/accounts/{key}``, by account id or company domain). Its people's
        MQLs are routed one by one as ever (the account owner first); this tells the owner
        the account as a whole is ready."""
        p = event.payload
        assert isinstance(p, AccountQualified)
        await flush_batches(uow)
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
            LeadErased: self.on_contact,
            InquiryReceived: self.on_contact,
            SlaStarted: self.on_sla_clock,
            SlaMet: self.on_sla_clock,
            SlaBreached: self.on_sla_clock,
        }


def build_handlers(
    cache: ConfigCache | None = None, clock: Clock | None = None
) -> dict[type[EventPayload] | str, Handler]:
    """Routing's handlers; imported history (``historical`` events) is never routed."""
    return skip_historical(RoutingHandlers(cache or ConfigCache(), clock).handlers())
