"""What routing learns from other services' events, as two of the kernel's batch handlers:

- ``ContactFacts`` (intake): the contact card a rep calls (``lead.captured``,
  ``lead.profile_updated``), the lead's ids in its source systems (``lead.captured``,
  ``inquiry.received``), and erasure (``lead.erased``: the card goes for good, the ids are
  forgotten, reps' notes are shredded);
- ``SlaClocks`` (sla-monitor): each SLA clock's due time and status, for the rep's queue.

Each event is decided purely onto a per-lead record of what the batch changed (a later
event of the lead sees the earlier ones, exactly as one-by-one handling would), and ``save``
writes the whole batch with a statement per table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from leadflow.events.batch import Appended, Decision
from leadflow.events.catalogue.intake import (
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.sla import SlaBreached, SlaMet, SlaStarted
from leadflow.events.envelope import Envelope
from leadflow.events.shredding import shred
from leadflow.events.sql import Tx
from leadflow.routing import store
from leadflow.routing.contacts import contact_card


@dataclass(frozen=True)
class ContactChange:
    """A lead's contact facts changed by the batch so far.

    ``card``: the newest card (None: unchanged); ``erased_at``: erased in this batch (the card
    is blanked and no later event brings it back); ``forget_ids``: the lead's known external
    ids go; ``new_ids``: (system, id) pairs learnt since, in arrival order."""

    card: Mapping[str, Any] | None = None
    erased_at: datetime | None = None
    forget_ids: bool = False
    new_ids: tuple[tuple[str | None, str], ...] = ()


def decide_contact(state: ContactChange | None, event: Envelope) -> Decision[ContactChange]:
    now = state or ContactChange()
    p = event.payload
    if isinstance(p, LeadErased):
        # Reps' notes in the log become unreadable too: save shreds the lead's key.
        return Decision(state=ContactChange(erased_at=event.occurred_at, forget_ids=True))
    if isinstance(p, LeadCaptured | LeadProfileUpdated) and now.erased_at is None:
        now = replace(now, card=contact_card(p.contact))
    if isinstance(p, LeadCaptured | InquiryReceived) and p.external_id:
        # The source system's id of the lead, so a CRM outcome can name the lead by it.
        now = replace(now, new_ids=(*now.new_ids, (p.external_system, p.external_id)))
    return Decision(state=now) if now != state else Decision()


class ContactFacts:
    """The batch handler for intake's contact facts (see the module docstring)."""

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> None:
        return None

    async def load(self, tx: Tx, lead_ids: Sequence[UUID], ctx: None) -> dict[UUID, ContactChange]:
        return {}  # blind writes: the database keeps an erased card erased

    def decide(
        self, state: ContactChange | None, event: Envelope, ctx: None
    ) -> Decision[ContactChange]:
        return decide_contact(state, event)

    async def save(
        self, tx: Tx, changed: Mapping[UUID, ContactChange], ctx: None
    ) -> Sequence[Appended]:
        writes = store.ContactWrites()
        erased: dict[datetime, list[UUID]] = {}
        for lead_id, change in changed.items():
            if change.erased_at is not None:
                writes.erase(lead_id, change.erased_at)
                erased.setdefault(change.erased_at, []).append(lead_id)
            elif change.card is not None:
                writes.card(lead_id, dict(change.card))
        await store.write_contacts(tx, writes)
        await store.forget_external_ids_of(tx, [i for i, c in changed.items() if c.forget_ids])
        await store.add_external_ids(
            tx, [(i, system, x) for i, c in changed.items() for system, x in c.new_ids]
        )
        for at, lead_ids in erased.items():
            await shred(tx, lead_ids, at)
        return ()


@dataclass(frozen=True)
class ClockChange:
    """A lead's SLA clocks changed by the batch so far: clocks started (by sla id), and
    statuses seen before (``early``: for a clock that already existed) or after its start in
    this batch (``late``)."""

    starts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    early: Mapping[str, str] = field(default_factory=dict)
    late: Mapping[str, str] = field(default_factory=dict)


def decide_clock(state: ClockChange | None, event: Envelope) -> Decision[ClockChange]:
    now = state or ClockChange()
    p = event.payload
    if isinstance(p, SlaStarted):
        start = {
            "lead_id": event.lead_id,
            "policy_id": p.policy_id,
            "rep_id": p.rep_id,
            "due_at": p.due_at,
            "warn_at": p.warn_at,
        }
        return Decision(state=replace(now, starts={**now.starts, p.sla_id: start}))
    assert isinstance(p, SlaMet | SlaBreached)
    status = "met" if isinstance(p, SlaMet) else "breached"
    if p.sla_id in now.starts:
        return Decision(state=replace(now, late={**now.late, p.sla_id: status}))
    return Decision(state=replace(now, early={**now.early, p.sla_id: status}))


class SlaClocks:
    """The batch handler for sla-monitor's clock events: at most three statements a batch."""

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> None:
        return None

    async def load(self, tx: Tx, lead_ids: Sequence[UUID], ctx: None) -> dict[UUID, ClockChange]:
        return {}

    def decide(
        self, state: ClockChange | None, event: Envelope, ctx: None
    ) -> Decision[ClockChange]:
        return decide_clock(state, event)

    async def save(
        self, tx: Tx, changed: Mapping[UUID, ClockChange], ctx: None
    ) -> Sequence[Appended]:
        writes = store.SlaClockWrites()
        for change in changed.values():  # a clock belongs to one lead: no two leads collide
            writes.starts.update({k: dict(v) for k, v in change.starts.items()})
            writes.early_status.update(change.early)
            writes.late_status.update(change.late)
        await store.write_sla_clocks(tx, writes)
        return ()
