"""A sales manager's reassignment and the read views: a rep's queue, a lead's owner and
the explanation of each decision on it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.errors import UnknownLead
from leadflow.routing import store
from leadflow.routing.api.common import (
    SLUG,
    Doc,
    IdPath,
    LeadId,
    ReaderDep,
    config_cache,
    not_found,
    refused,
)
from leadflow.routing.api.handoff import ActionOut
from leadflow.routing.commands import CommandRefused, Reassign
from leadflow.routing.domain import (
    Rep,
)
from leadflow.routing.handlers import reassign_by_manager

reassign_router = APIRouter(dependencies=[requires(Permission.ROUTING_CONFIG)])
router = APIRouter()  # each view declares handoff.read through ReaderDep


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str = Field(pattern=SLUG, description="the rep who takes the lead over")
    reason: str = Field(min_length=1, max_length=500, description="why, for the decision log")


@reassign_router.post(
    "/v1/leads/{lead_id}/reassign",
    tags=["hand-off"],
    summary="A sales manager hands an open lead to another rep (lead.reassigned)",
    responses={409: {"description": "lead not open, same rep, or rep unavailable"}},
)
async def reassign(kit: KitDep, lead_id: LeadId, body: ReassignIn) -> ActionOut:
    """Under the routing decision lock (so loads and caps stay exact against concurrent
    assignments) and the lead's row lock; the decision is ``manual_reassignment``'s."""
    cmd = Reassign(lead_id, body.rep_id, body.reason.strip() or body.reason)
    async with kit.unit_of_work() as uow:
        try:
            event, done = await reassign_by_manager(uow, config_cache(kit), cmd)
        except CommandRefused as refusal:
            raise refused(refusal) from None
    return ActionOut(
        lead_id=lead_id,
        event_type=event.event_type,
        event_id=event.event_id,
        stage=done.lead.stage.value if done.lead.stage else None,
        rep_id=done.decision.rep_id,
    )


@router.get(
    "/v1/reps/{rep_id}/queue",
    tags=["views"],
    summary="A rep's open leads with SLA due times, soonest first",
)
async def rep_queue(kit: KitDep, who: ReaderDep, rep_id: IdPath) -> Doc:
    who.may_see(rep_id)
    async with kit.snapshot() as tx:
        if await store.get_doc(tx, Rep, rep_id) is None:
            raise not_found("rep", rep_id)
        leads = await store.rep_queue(tx, rep_id)
    return {"rep_id": rep_id, "count": len(leads), "leads": leads}


@router.get(
    "/v1/leads/{lead_id}/assignment",
    tags=["views"],
    summary="Who owns the lead, whom to call, and the explanation of each decision "
    "(assignments and reassignments)",
)
async def assignment(kit: KitDep, who: ReaderDep, lead_id: LeadId) -> Doc:
    async with kit.snapshot() as tx:  # the lead and its decisions as of one moment
        row = await store.get_lead(tx, lead_id)
        if row is None:
            raise UnknownLead(lead_id)
        who.may_see(row.rep_id)
        history = await store.assignment_history(tx, lead_id)
        contact = await store.lead_contact(tx, lead_id)
    return {
        "lead_id": lead_id,
        "stage": row.stage.value if row.stage else None,
        "cycle": row.buying_cycle.value,  # new_business, or a customer's expansion
        "contact": contact,
        "assignee_kind": row.assignee_kind,
        "rep_id": row.rep_id,
        "team_id": row.team_id,
        "queue_id": row.queue_id,
        "assigned_at": row.assigned_at,
        "excluded_reps": row.excluded_reps,
        "opportunity_id": row.opportunity_id,
        "amount": row.amount,
        "currency": row.currency,
        "decisions": history,
    }
