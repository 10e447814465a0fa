"""Sales' hand-off actions as commands: a dataclass per action and one pure ``decide``.

A route parses the request into a command (``Accept``, ``Reject``, ``RecordWin``, ...), a
unit of work locks the lead and reads the configuration, ``decide_handoff`` says what
happens (the events to append, the lead's changed columns, a claimed lead's day count) or
refuses (``CommandRefused``, or the lifecycle's ``TransitionRefused``), and the route maps
the result to HTTP. No I/O and no clock here: ``now`` comes in the context, so every case
is unit-tested with plain values (tests/unit/routing/test_routing_handoff_commands.py).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from leadflow.events.catalogue.routing import (
    CustomerBecame,
    DealLost,
    DealWon,
    LeadAccepted,
    LeadContacted,
    LeadPutOnHold,
    LeadRecycled,
    LeadRejected,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.envelope import EventPayload
from leadflow.events.lifecycle import LeadLifecycle, TransitionRefused, target_stage
from leadflow.routing.domain import CommandRefused, LeadRow, Roster


@dataclass(frozen=True)
class HandOff(ABC):
    """An action on one lead, taken as ``rep_id`` (None: as the lead's owner)."""

    lead_id: uuid.UUID
    rep_id: str | None = None
    note: str | None = None

    event_type: ClassVar[str]
    # The reason-code list the command's code must be on (reject, lost, recycle).
    reason_action: ClassVar[str | None] = None
    # Accepting takes a queued lead: the rep claims it.
    claim: ClassVar[bool] = False

    @abstractmethod
    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        """The event this hand-off appends (each action says what it records)."""


@dataclass(frozen=True)
class Accept(HandOff):
    event_type: ClassVar[str] = LeadAccepted.event_type
    claim: ClassVar[bool] = True

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        assert rep_id is not None  # a claim names the rep; an owned lead has its owner
        return LeadAccepted(rep_id=rep_id)


@dataclass(frozen=True)
class WithReason(HandOff):
    """An action that names why, with a code from the action's reason-code list."""

    reason_code: str = ""


@dataclass(frozen=True)
class Reject(WithReason):
    event_type: ClassVar[str] = LeadRejected.event_type
    reason_action: ClassVar[str | None] = "reject"

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return LeadRejected(rep_id=rep_id, reason_code=self.reason_code, note=self.note)


@dataclass(frozen=True)
class Recycle(WithReason):
    event_type: ClassVar[str] = LeadRecycled.event_type
    reason_action: ClassVar[str | None] = "recycle"

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return LeadRecycled(rep_id=rep_id, reason_code=self.reason_code, note=self.note)


@dataclass(frozen=True)
class RecordLoss(WithReason):
    event_type: ClassVar[str] = DealLost.event_type
    reason_action: ClassVar[str | None] = "lost"

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return DealLost(
            opportunity_id=lead.opportunity_id,
            reason_code=self.reason_code,
            note=self.note,
            rep_id=rep_id,
        )


@dataclass(frozen=True)
class RecordContact(HandOff):
    channel: str | None = None
    event_type: ClassVar[str] = LeadContacted.event_type

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return LeadContacted(rep_id=rep_id, channel=self.channel, note=self.note)


@dataclass(frozen=True)
class Qualify(HandOff):
    need: bool = True
    authority: bool = True
    budget: bool = True
    timeframe: bool = True
    event_type: ClassVar[str] = LeadSalesQualified.event_type

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return LeadSalesQualified(
            rep_id=rep_id,
            need=self.need,
            authority=self.authority,
            budget=self.budget,
            timeframe=self.timeframe,
            note=self.note,
        )


@dataclass(frozen=True)
class OpenOpportunity(HandOff):
    """``opportunity_id`` is given (the route makes one up when the caller did not)."""

    opportunity_id: str = ""
    amount: Decimal = Decimal(0)
    currency: str = "USD"
    expected_close: datetime | None = None
    event_type: ClassVar[str] = OpportunityOpened.event_type

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return OpportunityOpened(
            opportunity_id=self.opportunity_id,
            amount=self.amount,
            currency=self.currency,
            expected_close=self.expected_close,
            rep_id=rep_id,
        )


@dataclass(frozen=True)
class RecordWin(HandOff):
    amount: Decimal = Decimal(0)
    currency: str | None = None  # default: the opportunity's
    opportunity_id: str | None = None
    exchange_rate: Decimal | None = None
    event_type: ClassVar[str] = DealWon.event_type

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        foreign = bool(self.currency and lead.currency and self.currency != lead.currency)
        if self.exchange_rate is not None and not foreign:
            raise CommandRefused.invalid(
                "exchange_rate", "only with a currency other than the opportunity's"
            )
        if foreign and self.exchange_rate is not None:
            assert lead.currency is not None
            return DealWon(
                opportunity_id=self.opportunity_id or lead.opportunity_id,
                amount=(self.amount * self.exchange_rate).quantize(Decimal("0.01")),
                currency=lead.currency,
                rep_id=rep_id,
                original_amount=self.amount,
                original_currency=self.currency,
                exchange_rate=self.exchange_rate,
                cycle=lead.buying_cycle.value,
            )
        if foreign:
            # Adding a USD win to an EUR pipeline makes every revenue figure wrong: the
            # client converts (at the rate its finance team uses) and sends the result.
            raise CommandRefused(
                409,
                "Currency mismatch",
                f"the opportunity is in {lead.currency}; send the won amount in "
                f"{lead.currency}, or give the exchange_rate that converts {self.currency} "
                f"to {lead.currency}",
                errors=[
                    {"field": "currency", "message": f"must be the opportunity's {lead.currency}"}
                ],
                extra={"opportunity_currency": lead.currency},
            )
        return DealWon(
            opportunity_id=self.opportunity_id or lead.opportunity_id,
            amount=self.amount,
            currency=self.currency or lead.currency or "USD",
            rep_id=rep_id,
            cycle=lead.buying_cycle.value,
        )


@dataclass(frozen=True)
class Hold(HandOff):
    reason: str = ""
    until: datetime | None = None
    event_type: ClassVar[str] = LeadPutOnHold.event_type

    def payload(self, lead: LeadRow, rep_id: str | None) -> EventPayload:
        return LeadPutOnHold(reason=self.reason, until=self.until, rep_id=rep_id)


# Actions that move the lead's stage; the others (contacted) need it with sales.
_MOVING = frozenset(
    {
        LeadAccepted.event_type,
        LeadRejected.event_type,
        LeadSalesQualified.event_type,
        OpportunityOpened.event_type,
        DealWon.event_type,
        DealLost.event_type,
        LeadPutOnHold.event_type,
        LeadRecycled.event_type,
    }
)


@dataclass(frozen=True)
class HandOffContext:
    """What a hand-off decision reads besides the lead: who calls (a rep's token binds the
    caller to ``caller_rep_id``; None for the admin token and managers), the roster, the
    reason codes per action, and the time."""

    caller_rep_id: str | None
    roster: Roster
    reason_codes: Mapping[str, Sequence[str]]
    now: datetime


@dataclass(frozen=True)
class HandOffDecision:
    """What the action does: ``events`` to append (none for a repeat), the lead's changed
    columns, and the (rep, rep's local day) whose new-lead count a claim raises."""

    rep_id: str | None
    stage: str | None
    events: tuple[EventPayload, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)
    counts_new: tuple[str, date] | None = None

    @property
    def repeated(self) -> bool:
        return not self.events


def decide_handoff(cmd: HandOff, lead: LeadRow, ctx: HandOffContext) -> HandOffDecision:
    """Check who may act and whether the lifecycle allows it, then say what changes.

    The checks run in the order the API has always answered them: a rep's claim on a lead
    nobody owns (403), the reason code (422), the lifecycle (409), the acting rep (422/409).
    A repeat of the stage the lead is already in (a double click) is recorded once.
    """
    if ctx.caller_rep_id is not None and lead.rep_id is None:
        _may_take(lead, ctx.caller_rep_id, ctx.roster, claim=cmd.claim)
    if isinstance(cmd, WithReason) and cmd.reason_action is not None:
        allowed = list(ctx.reason_codes.get(cmd.reason_action, []))
        if cmd.reason_code not in allowed:
            raise CommandRefused.invalid(
                "reason_code",
                f"must be one of {allowed}",
                detail=f"unknown reason_code {cmd.reason_code!r}",
            )
    moving = cmd.event_type in _MOVING
    after = lead.lifecycle.apply(cmd.event_type) if moving else lead.lifecycle
    if not moving and not lead.in_sales:
        raise TransitionRefused(lead.stage, None, cmd.event_type, "the lead is not with sales")
    rep_id = _actor(lead, cmd.rep_id, ctx.roster, claim=cmd.claim)
    if (
        moving
        and cmd.event_type != LeadPutOnHold.event_type
        and lead.stage is not None
        and lead.stage == target_stage(cmd.event_type, lead.buying_cycle)
    ):
        # A double click (accept twice, recycle an already recycled lead): the lifecycle
        # allows the repeat, and recording it twice would double-count the funnel.
        return HandOffDecision(rep_id=rep_id, stage=lead.stage.value)
    payload = cmd.payload(lead, rep_id)
    events: list[EventPayload] = [payload]
    if isinstance(payload, DealWon):
        after, became = _become_customer(lead, after, rep_id)
        events.append(became)
    changes: dict[str, Any] = {
        "stage": after.stage,
        "held_from": after.held_from,
        "buying_cycle": after.cycle,
    }
    counts_new = None
    if cmd.claim and rep_id is not None and lead.rep_id != rep_id:
        rep = ctx.roster.reps[rep_id]  # _actor made sure the rep exists
        changes |= {
            "assignee_kind": "rep",
            "rep_id": rep_id,
            "team_id": rep.team_id,
            "queue_id": None,
            "assigned_at": ctx.now,
        }
        counts_new = (rep_id, rep.local_day(ctx.now))
    if isinstance(payload, OpportunityOpened):
        changes |= {
            "opportunity_id": payload.opportunity_id,
            "amount": payload.amount,
            "currency": payload.currency,
        }
    if isinstance(payload, DealWon):
        changes |= {"amount": payload.amount, "currency": payload.currency}
    return HandOffDecision(
        rep_id=rep_id,
        stage=after.stage.value if after.stage else None,
        events=tuple(events),
        changes=changes,
        counts_new=counts_new,
    )


def _become_customer(
    lead: LeadRow, won: LeadLifecycle, rep_id: str | None
) -> tuple[LeadLifecycle, CustomerBecame]:
    """A win makes the person (and their account) a customer: ``customer.became`` right
    after ``deal.won``, in the same transaction (the lifecycle's ``won -> customer``)."""
    after = won.apply(CustomerBecame.event_type)
    return after, CustomerBecame(
        cycle=won.cycle.value, account_id=lead.snapshot.account_id, rep_id=rep_id
    )


def _may_take(lead: LeadRow, rep_id: str, roster: Roster, *, claim: bool) -> None:
    """A rep acts on a lead nobody owns only by accepting it, from a queue of their team
    (or of no team): rejecting, recycling, holding or contacting a lead still waiting in a
    queue is its owner's business, and a queue of another team is not theirs to take from."""
    if claim and lead.queue_id is not None:
        queue = roster.queues.get(lead.queue_id)
        rep = roster.reps.get(rep_id)
        if queue is not None and rep is not None and queue.team_id in (None, rep.team_id):
            return
    where = f"queue {lead.queue_id}" if lead.queue_id else "no rep's hands"
    raise CommandRefused(
        403,
        "Forbidden",
        f"lead {lead.lead_id} waits in {where}, which is not {rep_id}'s: "
        + ("accept it first" if not claim else "it belongs to another team"),
    )


def _actor(lead: LeadRow, rep_id: str | None, roster: Roster, *, claim: bool) -> str | None:
    """Who acts: the owner by default; accepting a queued lead needs the rep taking it."""
    if rep_id is None:
        if claim and lead.rep_id is None:
            raise CommandRefused.invalid(
                "rep_id",
                "required for a queued lead",
                detail=f"the lead waits in queue {lead.queue_id}: name the rep who takes it",
            )
        return lead.rep_id
    if rep_id not in roster.reps:
        raise CommandRefused.invalid("rep_id", "unknown rep", detail=f"unknown rep {rep_id!r}")
    if lead.rep_id is not None and rep_id != lead.rep_id:
        raise CommandRefused(
            409,
            "Not the owner",
            f"lead {lead.lead_id} is owned by rep {lead.rep_id}",
            extra={"owner_rep_id": lead.rep_id},
        )
    return rep_id
