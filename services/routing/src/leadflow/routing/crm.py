"""Outcomes back from a CRM: its opportunity and deal events, mapped onto the hand-off.

``POST /v1/routing/crm/events`` (admin token: a CRM integration is keyed like any admin
client) takes the CRM's own JSON and a field mapping: a built-in one (``?mapping=salesforce``
for an Opportunity record as a Flow or outbound message sends it, ``?mapping=hubspot`` for a
deal-stage change enriched with the deal's amount and contact) or the caller's own
(``{"mapping": {...}, "event": {...}}``). The lead is found, in this order, by its Leadflow
id stored in the CRM, by the id the lead has in its source system (``external_id`` plus the
``source_system`` it belongs to: what an import identified the lead by, kept by routing from
intake's ``lead.captured`` / ``inquiry.received``), or by the contact's e-mail; the outcome
is recorded by the same actions a rep takes (accepted and sales-qualified first when the CRM
is ahead of Leadflow, then opportunity, won or lost). A won deal makes the person a customer
(``customer.became``, as when a rep records the win); outcome ``churned`` (map the CRM's
churn stage to it) records ``customer.churned``: customer status ends (issue 30).

Idempotent twice over: the CRM's own event id (the mapping's ``event_id`` path, or an
``Idempotency-Key`` header) is remembered with the answer, so a redelivery is answered the
same and recorded once even when the lead has moved on since; and an outcome the lead
already has is a repeat, recorded once, when the CRM sends no id.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import AdminDep, KitDep
from leadflow.events.catalogue.routing import CustomerChurned
from leadflow.events.errors import Problem, UnknownLead
from leadflow.events.lifecycle import Stage
from leadflow.routing import store
from leadflow.routing.api import handoff as api
from leadflow.routing.api.common import Caller, validated
from leadflow.routing.commands.crm import Outcome, RecordChurn, already_has, decide_churn

crm_router = APIRouter(dependencies=[AdminDep])
_EVENT = {
    "opportunity": "opportunity.opened",
    "won": "deal.won",
    "lost": "deal.lost",
    "churned": "customer.churned",
}


class CrmMapping(BaseModel):
    """Where each fact is in the CRM's JSON (dotted paths) and what its stages mean."""

    model_config = ConfigDict(extra="forbid")
    lead_id: str | None = None
    email: str | None = None
    external_id: str | None = None
    source_system: str | None = None
    default_source_system: str | None = None
    event_id: str | None = None
    opportunity_id: str
    stage: str
    amount: str | None = None
    currency: str | None = None
    reason: str | None = None
    stages: dict[str, Outcome] = Field(description="CRM stage -> outcome; others are ignored")
    default_currency: str = "USD"


PRESETS: dict[str, CrmMapping] = {
    # An Opportunity record (Flow HTTP callout / outbound message as JSON).
    "salesforce": CrmMapping(
        lead_id="Leadflow_Lead_Id__c",
        email="Contact_Email__c",
        external_id="Lead_External_Id__c",
        default_source_system="salesforce",
        opportunity_id="Id",
        stage="StageName",
        amount="Amount",
        currency="CurrencyIsoCode",
        reason="Loss_Reason__c",
        stages={
            "Prospecting": "opportunity",
            "Qualification": "opportunity",
            "Proposal/Price Quote": "opportunity",
            "Negotiation/Review": "opportunity",
            "Closed Won": "won",
            "Closed Lost": "lost",
        },
    ),
    # A deal.propertyChange (dealstage) webhook, enriched with the deal's properties.
    "hubspot": CrmMapping(
        lead_id="properties.leadflow_lead_id",
        email="properties.contact_email",
        external_id="properties.contact_id",
        default_source_system="hubspot",
        event_id="eventId",
        opportunity_id="objectId",
        stage="propertyValue",
        amount="properties.amount",
        currency="properties.deal_currency_code",
        reason="properties.closed_lost_reason",
        stages={
            "appointmentscheduled": "opportunity",
            "qualifiedtobuy": "opportunity",
            "presentationscheduled": "opportunity",
            "decisionmakerboughtin": "opportunity",
            "contractsent": "opportunity",
            "closedwon": "won",
            "closedlost": "lost",
        },
    ),
}


def pick(doc: Any, path: str | None) -> Any:
    """The value at a dotted path, or None."""
    if not path:
        return None
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


class CrmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mapping: CrmMapping
    event: dict[str, Any]


def _amount(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise Problem.invalid_fields([{"field": "amount", "message": "not a number"}]) from None
    return amount if amount > 0 else None


async def _find_lead(
    kit: Any, lead_ref: Any, email: Any, external: tuple[str, str | None] | None
) -> uuid.UUID:
    if lead_ref:
        try:
            return uuid.UUID(str(lead_ref))
        except ValueError:
            pass
    if external is not None:
        async with kit.connect() as tx:
            found = await store.lead_by_external_id(tx, *external)
        if found is not None:
            return found
    if email:
        async with kit.connect() as tx:
            by_email = await store.lead_by_email(tx, str(email))
        if by_email is not None:
            return by_email
    raise Problem(
        404,
        "Unknown lead",
        "no lead matches the CRM record's Leadflow id, external id or e-mail",
        errors=[{"field": "email", "message": "no lead with this id, external id or e-mail"}],
    )


@crm_router.post("/v1/routing/crm/events", tags=["crm"], summary="An outcome from a CRM")
async def crm_event(
    kit: KitDep,
    body: dict[str, Any],
    mapping: Literal["salesforce", "hubspot"] | None = Query(default=None),
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> dict[str, Any]:
    if mapping is not None:
        chosen, event = PRESETS[mapping], body
    else:
        parsed = validated(CrmIn, body)
        chosen, event = parsed.mapping, parsed.event
    system = str(pick(event, chosen.source_system) or chosen.default_source_system or "") or None
    crm_event_id = pick(event, chosen.event_id) or idempotency_key
    key = f"{mapping or 'custom'}:{crm_event_id}" if crm_event_id else None
    if key is not None:
        async with kit.connect() as tx:
            seen = await store.crm_receipt(tx, key)
        if seen is not None:  # the CRM's redelivery: the same answer, nothing recorded again
            return {**seen, "repeat_of": str(crm_event_id)}
    stage = pick(event, chosen.stage)
    outcome = chosen.stages.get(str(stage)) if stage is not None else None
    if outcome is None:
        return {"recorded": [], "ignored": f"stage {stage!r} is not an outcome"}
    external_id = pick(event, chosen.external_id)
    lead_id = await _find_lead(
        kit,
        pick(event, chosen.lead_id),
        pick(event, chosen.email),
        (str(external_id), system) if external_id not in (None, "") else None,
    )
    answer = await _record(kit, chosen, event, lead_id, outcome)
    if key is not None:
        async with kit.transaction() as tx:
            await store.record_crm_receipt(tx, key, lead_id, answer)
    return answer


async def _record(
    kit: Any, chosen: CrmMapping, event: dict[str, Any], lead_id: uuid.UUID, outcome: Outcome
) -> dict[str, Any]:
    """The outcome recorded by the steps a rep would take."""
    opportunity_id = str(pick(event, chosen.opportunity_id) or "") or None
    amount = _amount(pick(event, chosen.amount))
    currency = str(pick(event, chosen.currency) or chosen.default_currency).upper()
    async with kit.connect() as tx:
        row = await store.get_lead(tx, lead_id)
    if row is None:
        raise Problem(404, "Unknown lead", f"lead {lead_id} is not routing's")
    if already_has(row, outcome):  # the CRM sent it again (or a rep was first): recorded once
        stage = row.stage.value if row.stage else None
        repeat = {"event_type": _EVENT[outcome], "repeated": True, "stage": stage}
        return {"lead_id": str(lead_id), "outcome": outcome, "recorded": [repeat]}
    if outcome == "churned":
        reason = str(pick(event, chosen.reason) or "") or None
        churned = await _churn(kit, RecordChurn(lead_id, reason, chosen.default_source_system))
        return {"lead_id": str(lead_id), "outcome": outcome, "recorded": [churned]}
    who = Caller()
    recorded: list[dict[str, Any]] = []

    async def step(result: api.ActionOut) -> None:
        recorded.append(
            {"event_type": result.event_type, "repeated": result.repeated, "stage": result.stage}
        )

    # The CRM may be ahead of Leadflow: take the steps a rep would have taken first.
    if row.stage is Stage.MQL:
        await step(await api.accept(kit, who, lead_id, api.AcceptIn()))
        row = await _reload(kit, lead_id)
    if row.stage is Stage.SAL:
        await step(await api.qualify(kit, who, lead_id, api.QualifyIn()))
        row = await _reload(kit, lead_id)
    if row.stage is Stage.SQL:
        if amount is None:
            raise Problem.invalid_fields(
                [{"field": "amount", "message": "an opportunity needs an amount"}]
            )
        body_in = api.OpportunityIn(amount=amount, currency=currency, opportunity_id=opportunity_id)
        await step(await api.opportunity(kit, who, lead_id, body_in))
    if outcome == "won":
        won_amount = amount or row.amount
        if won_amount is None:
            raise Problem.invalid_fields([{"field": "amount", "message": "a win needs an amount"}])
        await step(
            await api.won(kit, who, lead_id, api.WonIn(amount=won_amount, currency=currency))
        )
    elif outcome == "lost":
        reason = str(pick(event, chosen.reason) or "other")[:64]
        try:
            result = await api.lost(kit, who, lead_id, api.ReasonIn(reason_code=reason))
        except Problem as exc:
            if exc.status != 422:
                raise
            # A reason the loss-reason list does not have: "other", the CRM's words as note.
            note = f"CRM loss reason: {reason}"
            result = await api.lost(kit, who, lead_id, api.ReasonIn(reason_code="other", note=note))
        await step(result)
    return {"lead_id": str(lead_id), "outcome": outcome, "recorded": recorded}


async def _churn(kit: Any, cmd: RecordChurn) -> dict[str, Any]:
    """``RecordChurn`` on the locked lead (``decide_churn``), in one unit of work."""
    async with kit.unit_of_work() as uow:
        row = await store.lock_lead(uow.tx, cmd.lead_id)
        if row is None:
            raise UnknownLead(cmd.lead_id)
        after, churned = decide_churn(cmd, row)
        await uow.append(cmd.lead_id, churned)
        await store.set_lifecycle(uow.tx, cmd.lead_id, after)
    stage = after.stage.value if after.stage else None
    return {"event_type": CustomerChurned.event_type, "repeated": False, "stage": stage}


async def _reload(kit: Any, lead_id: uuid.UUID) -> Any:
    async with kit.connect() as tx:
        return await store.get_lead(tx, lead_id)
