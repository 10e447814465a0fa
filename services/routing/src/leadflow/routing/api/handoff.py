"""Sales' hand-off actions on a lead: accept, reject, contacted, qualify, opportunity,
won, lost, hold, recycle. Each route parses the request into a command
(``leadflow.routing.commands``), runs ``decide_handoff`` on the locked lead in one unit of
work, and answers with the result or the refusal as problem+json.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from leadflow.events import KitDep, ServiceKit
from leadflow.events.envelope import new_id
from leadflow.events.errors import UnknownLead
from leadflow.routing import store
from leadflow.routing.api.common import SLUG, Caller, CallerDep, LeadId, config_cache, refused
from leadflow.routing.commands import (
    Accept,
    CommandRefused,
    HandOff,
    HandOffContext,
    Hold,
    OpenOpportunity,
    Qualify,
    RecordContact,
    RecordLoss,
    RecordWin,
    Recycle,
    Reject,
    decide_handoff,
)

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


async def run_handoff(kit: ServiceKit, who: Caller, cmd: HandOff) -> ActionOut:
    """Decide ``cmd`` on the locked lead and record it: one transaction with the lead's row
    locked, so two clicks on two screens cannot both move the lead."""
    async with kit.unit_of_work() as uow:
        row = await store.lock_lead(uow.tx, cmd.lead_id)
        if row is None:
            raise UnknownLead(cmd.lead_id)
        config = await config_cache(kit).get(uow.tx)
        ctx = HandOffContext(who.rep_id, config.roster, config.reason_codes, uow.clock.now())
        try:
            decision = decide_handoff(cmd, row, ctx)
        except CommandRefused as refusal:
            raise refused(refusal) from None
        if decision.repeated:
            return ActionOut(
                lead_id=cmd.lead_id,
                event_type=cmd.event_type,
                event_id=None,
                stage=decision.stage,
                rep_id=decision.rep_id,
                repeated=True,
            )
        [event, *_] = await uow.append(cmd.lead_id, list(decision.events))
        await store.update_lead(uow.tx, cmd.lead_id, **decision.changes)
        if decision.counts_new is not None:
            await store.count_new(uow.tx, *decision.counts_new)
    return ActionOut(
        lead_id=cmd.lead_id,
        event_type=cmd.event_type,
        event_id=event.event_id,
        stage=decision.stage,
        rep_id=decision.rep_id,
    )


@router.post("/v1/leads/{lead_id}/accept", tags=["hand-off"], summary="Rep accepts (SAL)")
async def accept(kit: KitDep, who: CallerDep, lead_id: LeadId, body: AcceptIn) -> ActionOut:
    cmd = Accept(lead_id, who.acting_as(body.rep_id), body.note)
    return await run_handoff(kit, who, cmd)


@router.post(
    "/v1/leads/{lead_id}/reject",
    tags=["hand-off"],
    summary="Rep rejects back to marketing (reason code)",
)
async def reject(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    cmd = Reject(lead_id, who.acting_as(body.rep_id), body.note, reason_code=body.reason_code)
    return await run_handoff(kit, who, cmd)


@router.post("/v1/leads/{lead_id}/contacted", tags=["hand-off"], summary="Rep made contact")
async def contacted(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ContactedIn) -> ActionOut:
    cmd = RecordContact(lead_id, who.acting_as(body.rep_id), body.note, channel=body.channel)
    return await run_handoff(kit, who, cmd)


@router.post("/v1/leads/{lead_id}/qualify", tags=["hand-off"], summary="Sales-qualified (SQL)")
async def qualify(kit: KitDep, who: CallerDep, lead_id: LeadId, body: QualifyIn) -> ActionOut:
    cmd = Qualify(
        lead_id,
        who.acting_as(body.rep_id),
        body.note,
        need=body.need,
        authority=body.authority,
        budget=body.budget,
        timeframe=body.timeframe,
    )
    return await run_handoff(kit, who, cmd)


@router.post(
    "/v1/leads/{lead_id}/opportunity",
    tags=["hand-off"],
    summary="Open an opportunity (amount + currency)",
)
async def opportunity(
    kit: KitDep, who: CallerDep, lead_id: LeadId, body: OpportunityIn
) -> ActionOut:
    cmd = OpenOpportunity(
        lead_id,
        who.acting_as(body.rep_id),
        opportunity_id=body.opportunity_id or str(new_id()),
        amount=body.amount,
        currency=body.currency,
        expected_close=body.expected_close,
    )
    return await run_handoff(kit, who, cmd)


@router.post("/v1/leads/{lead_id}/won", tags=["hand-off"], summary="Deal won (amount)")
async def won(kit: KitDep, who: CallerDep, lead_id: LeadId, body: WonIn) -> ActionOut:
    cmd = RecordWin(
        lead_id,
        who.acting_as(body.rep_id),
        amount=body.amount,
        currency=body.currency,
        opportunity_id=body.opportunity_id,
        exchange_rate=body.exchange_rate,
    )
    return await run_handoff(kit, who, cmd)


@router.post("/v1/leads/{lead_id}/lost", tags=["hand-off"], summary="Deal lost (reason code)")
async def lost(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    cmd = RecordLoss(lead_id, who.acting_as(body.rep_id), body.note, reason_code=body.reason_code)
    return await run_handoff(kit, who, cmd)


@router.post("/v1/leads/{lead_id}/hold", tags=["hand-off"], summary="Park the lead")
async def hold(kit: KitDep, who: CallerDep, lead_id: LeadId, body: HoldIn) -> ActionOut:
    cmd = Hold(lead_id, who.acting_as(body.rep_id), reason=body.reason, until=body.until)
    return await run_handoff(kit, who, cmd)


@router.post(
    "/v1/leads/{lead_id}/recycle",
    tags=["hand-off"],
    summary="Hand the lead back to nurture (reason code)",
)
async def recycle(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    cmd = Recycle(lead_id, who.acting_as(body.rep_id), body.note, reason_code=body.reason_code)
    return await run_handoff(kit, who, cmd)
