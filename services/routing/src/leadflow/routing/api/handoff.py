"""Sales' hand-off actions on a lead: accept, reject, contacted, qualify, opportunity,
won, lost, hold, recycle. Each checks the lifecycle, appends the event and moves the
stage in one transaction with the lead's row locked.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from leadflow.events import KitDep, ServiceKit, UnitOfWork
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
from leadflow.events.envelope import EventPayload, new_id
from leadflow.events.errors import Problem, UnknownLead
from leadflow.events.lifecycle import LeadLifecycle, TransitionRefused, target_stage
from leadflow.routing import store
from leadflow.routing.api.common import (
    SLUG,
    Caller,
    CallerDep,
    LeadId,
)
from leadflow.routing.domain import (
    Queue,
    Rep,
)
from leadflow.routing.store import LeadRow

router = APIRouter()  # each route declares handoff through CallerDep


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str | None = Field(default=None, pattern=SLUG, description="default: the owner")


class AcceptIn(_Action):
    note: str | None = Field(default=None, max_length=2000)


class ReasonIn(_Action):
    reason_code: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class ContactedIn(_Action):
    channel: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class QualifyIn(_Action):
    need: bool = True
    authority: bool = True
    budget: bool = True
    timeframe: bool = True
    note: str | None = Field(default=None, max_length=2000)


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")]


class OpportunityIn(_Action):
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    currency: Currency
    opportunity_id: str | None = Field(default=None, max_length=128)
    expected_close: AwareDatetime | None = None


class WonIn(_Action):
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)
    currency: Currency | None = Field(default=None, description="default: the opportunity's")
    opportunity_id: str | None = Field(default=None, max_length=128)
    exchange_rate: Decimal | None = Field(
        default=None,
        gt=0,
        max_digits=18,
        decimal_places=8,
        description="converts an amount in another currency to the opportunity's "
        "(amount x exchange_rate); without it, another currency is refused (409)",
    )


class HoldIn(_Action):
    reason: str = Field(min_length=1, max_length=500)
    until: AwareDatetime | None = None


class ActionOut(BaseModel):
    lead_id: uuid.UUID
    event_type: str
    event_id: uuid.UUID | None = Field(description="None when the action was a repeat")
    stage: str | None
    rep_id: str | None
    repeated: bool = False


Build = Callable[[LeadRow, str | None, UnitOfWork], Awaitable[EventPayload]]


async def _act(
    kit: ServiceKit,
    who: Caller,
    lead_id: uuid.UUID,
    body: _Action,
    event_type: str,
    build: Build,
    *,
    reason_action: str | None = None,
    claim: bool = False,
) -> ActionOut:
    """Check the lifecycle, append the event, move the stage: one transaction, lead row
    locked, so two clicks on two screens cannot both move the lead."""
    requested_rep = who.acting_as(body.rep_id)
    async with kit.unit_of_work() as uow:
        row = await store.lock_lead(uow.conn, lead_id)
        if row is None:
            raise UnknownLead(lead_id)
        if who.rep_id is not None and row.rep_id is None:
            await _may_take(uow, row, who.rep_id, claim=claim)
        if reason_action is not None:
            code = getattr(body, "reason_code", None)
            allowed = (await store.reason_codes(uow.conn)).get(reason_action, [])
            if code not in allowed:
                raise Problem(
                    422,
                    "Invalid request",
                    f"unknown reason_code {code!r}",
                    errors=[{"field": "reason_code", "message": f"must be one of {allowed}"}],
                )
        after = row.lifecycle.apply(event_type) if event_type in _MOVING else row.lifecycle
        if event_type not in _MOVING and not row.in_sales:
            raise TransitionRefused(row.stage, None, event_type, "the lead is not with sales")
        rep_id = await _actor(uow, row, requested_rep, claim=claim)
        if (
            event_type in _MOVING
            and event_type != LeadPutOnHold.event_type
            and row.stage is not None
            and row.stage == target_stage(event_type, row.buying_cycle)
        ):
            # A double click (accept twice, recycle an already recycled lead): the lifecycle
            # allows the repeat, and recording it twice would double-count the funnel.
            return ActionOut(
                lead_id=lead_id,
                event_type=event_type,
                event_id=None,
                stage=row.stage.value,
                rep_id=rep_id,
                repeated=True,
            )
        payload = await build(row, rep_id, uow)
        [event] = await uow.append(lead_id, payload)
        if isinstance(payload, DealWon):
            after = await become_customer(uow, row, after, rep_id)
        updates: dict[str, Any] = {
            "stage": after.stage,
            "held_from": after.held_from,
            "buying_cycle": after.cycle,
        }
        if claim and rep_id is not None and row.rep_id != rep_id:
            rep = await store.get_doc(uow.conn, Rep, rep_id)
            assert rep is not None
            updates |= {
                "assignee_kind": "rep",
                "rep_id": rep_id,
                "team_id": rep.team_id,
                "queue_id": None,
                "assigned_at": uow.clock.now(),
            }
            await store.count_new(uow.conn, rep_id, rep.local_day(uow.clock.now()))
        if isinstance(payload, OpportunityOpened):
            updates |= {
                "opportunity_id": payload.opportunity_id,
                "amount": payload.amount,
                "currency": payload.currency,
            }
        if isinstance(payload, DealWon):
            updates |= {"amount": payload.amount, "currency": payload.currency}
        await store.update_lead(uow.conn, lead_id, **updates)
    return ActionOut(
        lead_id=lead_id,
        event_type=event_type,
        event_id=event.event_id,
        stage=after.stage.value if after.stage else None,
        rep_id=rep_id,
    )


async def become_customer(
    uow: UnitOfWork, row: LeadRow, won: LeadLifecycle, rep_id: str | None
) -> LeadLifecycle:
    """A win makes the person (and their account) a customer: ``customer.became`` right
    after ``deal.won``, in the same transaction (the lifecycle's ``won -> customer``)."""
    after = won.apply(CustomerBecame.event_type)
    await uow.append(
        row.lead_id,
        CustomerBecame(cycle=won.cycle.value, account_id=row.snapshot.account_id, rep_id=rep_id),
    )
    return after


_MOVING = {
    LeadAccepted.event_type,
    LeadRejected.event_type,
    LeadSalesQualified.event_type,
    OpportunityOpened.event_type,
    DealWon.event_type,
    DealLost.event_type,
    LeadPutOnHold.event_type,
    LeadRecycled.event_type,
}


async def _may_take(uow: UnitOfWork, row: LeadRow, rep_id: str, *, claim: bool) -> None:
    """A rep acts on a lead nobody owns only by accepting it, from a queue of their team
    (or of no team): rejecting, recycling, holding or contacting a lead still waiting in a
    queue is its owner's business, and a queue of another team is not theirs to take from."""
    if claim and row.queue_id is not None:
        queue = await store.get_doc(uow.conn, Queue, row.queue_id)
        rep = await store.get_doc(uow.conn, Rep, rep_id)
        if queue is not None and rep is not None and queue.team_id in (None, rep.team_id):
            return
    where = f"queue {row.queue_id}" if row.queue_id else "no rep's hands"
    raise Problem(
        403,
        "Forbidden",
        f"lead {row.lead_id} waits in {where}, which is not {rep_id}'s: "
        + ("accept it first" if not claim else "it belongs to another team"),
    )


async def _actor(uow: UnitOfWork, row: LeadRow, rep_id: str | None, *, claim: bool) -> str | None:
    """Who acts: the owner by default; accepting a queued lead needs the rep taking it."""
    if rep_id is None:
        if claim and row.rep_id is None:
            raise Problem(
                422,
                "Invalid request",
                f"the lead waits in queue {row.queue_id}: name the rep who takes it",
                errors=[{"field": "rep_id", "message": "required for a queued lead"}],
            )
        return row.rep_id
    if await store.get_doc(uow.conn, Rep, rep_id) is None:
        raise Problem(
            422,
            "Invalid request",
            f"unknown rep {rep_id!r}",
            errors=[{"field": "rep_id", "message": "unknown rep"}],
        )
    if row.rep_id is not None and rep_id != row.rep_id:
        raise Problem(
            409,
            "Not the owner",
            f"lead {row.lead_id} is owned by rep {row.rep_id}",
            extra={"owner_rep_id": row.rep_id},
        )
    return rep_id


@router.post("/v1/leads/{lead_id}/accept", tags=["hand-off"], summary="Rep accepts (SAL)")
async def accept(kit: KitDep, who: CallerDep, lead_id: LeadId, body: AcceptIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        assert rep is not None
        return LeadAccepted(rep_id=rep)

    return await _act(kit, who, lead_id, body, LeadAccepted.event_type, build, claim=True)


@router.post(
    "/v1/leads/{lead_id}/reject",
    tags=["hand-off"],
    summary="Rep rejects back to marketing (reason code)",
)
async def reject(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadRejected(rep_id=rep, reason_code=body.reason_code, note=body.note)

    return await _act(
        kit, who, lead_id, body, LeadRejected.event_type, build, reason_action="reject"
    )


@router.post("/v1/leads/{lead_id}/contacted", tags=["hand-off"], summary="Rep made contact")
async def contacted(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ContactedIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadContacted(rep_id=rep, channel=body.channel, note=body.note)

    return await _act(kit, who, lead_id, body, LeadContacted.event_type, build)


@router.post("/v1/leads/{lead_id}/qualify", tags=["hand-off"], summary="Sales-qualified (SQL)")
async def qualify(kit: KitDep, who: CallerDep, lead_id: LeadId, body: QualifyIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadSalesQualified(
            rep_id=rep,
            need=body.need,
            authority=body.authority,
            budget=body.budget,
            timeframe=body.timeframe,
            note=body.note,
        )

    return await _act(kit, who, lead_id, body, LeadSalesQualified.event_type, build)


@router.post(
    "/v1/leads/{lead_id}/opportunity",
    tags=["hand-off"],
    summary="Open an opportunity (amount + currency)",
)
async def opportunity(
    kit: KitDep, who: CallerDep, lead_id: LeadId, body: OpportunityIn
) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return OpportunityOpened(
            opportunity_id=body.opportunity_id or str(new_id()),
            amount=body.amount,
            currency=body.currency,
            expected_close=body.expected_close,
            rep_id=rep,
        )

    return await _act(kit, who, lead_id, body, OpportunityOpened.event_type, build)


@router.post("/v1/leads/{lead_id}/won", tags=["hand-off"], summary="Deal won (amount)")
async def won(kit: KitDep, who: CallerDep, lead_id: LeadId, body: WonIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        foreign = bool(body.currency and row.currency and body.currency != row.currency)
        if body.exchange_rate is not None and not foreign:
            raise Problem.invalid_fields(
                [
                    {
                        "field": "exchange_rate",
                        "message": "only with a currency other than the opportunity's",
                    }
                ]
            )
        if foreign and body.exchange_rate is not None:
            assert row.currency is not None
            return DealWon(
                opportunity_id=body.opportunity_id or row.opportunity_id,
                amount=(body.amount * body.exchange_rate).quantize(Decimal("0.01")),
                currency=row.currency,
                rep_id=rep,
                original_amount=body.amount,
                original_currency=body.currency,
                exchange_rate=body.exchange_rate,
                cycle=row.buying_cycle.value,
            )
        if foreign:
            # Adding a USD win to an EUR pipeline makes every revenue figure wrong: the
            # client converts (at the rate its finance team uses) and sends the result.
            raise Problem(
                409,
                "Currency mismatch",
                f"the opportunity is in {row.currency}; send the won amount in "
                f"{row.currency}, or give the exchange_rate that converts {body.currency} "
                f"to {row.currency}",
                errors=[
                    {"field": "currency", "message": f"must be the opportunity's {row.currency}"}
                ],
                extra={"opportunity_currency": row.currency},
            )
        return DealWon(
            opportunity_id=body.opportunity_id or row.opportunity_id,
            amount=body.amount,
            currency=body.currency or row.currency or "USD",
            rep_id=rep,
            cycle=row.buying_cycle.value,
        )

    return await _act(kit, who, lead_id, body, DealWon.event_type, build)


@router.post("/v1/leads/{lead_id}/lost", tags=["hand-off"], summary="Deal lost (reason code)")
async def lost(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return DealLost(
            opportunity_id=row.opportunity_id,
            reason_code=body.reason_code,
            note=body.note,
            rep_id=rep,
        )

    return await _act(kit, who, lead_id, body, DealLost.event_type, build, reason_action="lost")


@router.post("/v1/leads/{lead_id}/hold", tags=["hand-off"], summary="Park the lead")
async def hold(kit: KitDep, who: CallerDep, lead_id: LeadId, body: HoldIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadPutOnHold(reason=body.reason, until=body.until, rep_id=rep)

    return await _act(kit, who, lead_id, body, LeadPutOnHold.event_type, build)


@router.post(
    "/v1/leads/{lead_id}/recycle",
    tags=["hand-off"],
    summary="Hand the lead back to nurture (reason code)",
)
async def recycle(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadRecycled(rep_id=rep, reason_code=body.reason_code, note=body.note)

    return await _act(
        kit, who, lead_id, body, LeadRecycled.event_type, build, reason_action="recycle"
    )
