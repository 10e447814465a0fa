"""Routing's HTTP API: the admin configuration (reps, teams, queues, account owners, rules,
reason codes, rep tokens), the dry-run simulator, sales' hand-off actions and the read views.

Callers (``Authorization: Bearer``) and what they may do are the kernel's permission table
(``leadflow.events.access``): the configuration needs ``routing.config`` (admin, sales
manager); the hand-off actions and views need ``handoff`` / ``handoff.read``, which a
sales manager and the admin token (the CRM integration relaying every rep's actions) hold
for every lead, and a rep for their own leads only: a signed-in rep (their token binds them
to a rep id) or a rep's personal token (issued by an admin, ``lfr_...``, kept working and
resolved here into the same rep principal) reads that rep's queue and leads and acts on
them as that rep, and may take a queued lead only from a queue of their team.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from leadflow.events import KitDep, ServiceKit, UnitOfWork
from leadflow.events.access import Permission, Principal, Role, requires
from leadflow.events.catalogue.common import LeadSnapshot
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
from leadflow.events.document_routes import document_router
from leadflow.events.documents import Document
from leadflow.events.envelope import EventPayload, new_id
from leadflow.events.errors import Problem, UnknownLead
from leadflow.events.lifecycle import LeadLifecycle, TransitionRefused, target_stage
from leadflow.routing import store
from leadflow.routing.domain import (
    Queue,
    ReassignRefused,
    Rep,
    Rule,
    RuleSet,
    Team,
    lead_for_rules,
    looks_like_rep_token,
    new_rep_token,
    rep_token_digest,
    users_of,
)
from leadflow.routing.handlers import reassign_by_manager, simulate_decision
from leadflow.routing.store import ConfigCache, LeadRow

router = APIRouter(dependencies=[requires(Permission.ROUTING_CONFIG)])
sales_router = APIRouter()  # each route declares handoff, handoff.read or reason codes
M = TypeVar("M", bound=BaseModel)
_SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
IdPath = Annotated[str, Path(pattern=_SLUG)]


def _cache(kit: ServiceKit[ConfigCache]) -> ConfigCache:
    return kit.state


def _validated(cls: type[M], data: dict[str, Any]) -> M:
    """Validate a document whose id comes from the path: errors as 422 naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise Problem.invalid_fields(errors) from exc


def _not_found(kind: str, id_: str) -> Problem:
    return Problem(404, f"Unknown {kind}", f"no {kind} {id_!r}")


# -- roster ----------------------------------------------------------------------------

Doc = dict[str, Any]


def _doc_routes(kind: str, plural: str, cls: type[Rep] | type[Team] | type[Queue]) -> None:
    async def put(kit: KitDep, id_: IdPath, body: Annotated[Doc, Body()]) -> Doc:
        model = _validated(cls, {**body, "id": id_})
        async with kit.unit_of_work() as uow:
            await store.put_doc(uow.conn, model)
        return model.model_dump(mode="json")

    async def get(kit: KitDep, id_: IdPath) -> Doc:
        async with kit.connect() as conn:
            model = await store.get_doc(conn, cls, id_)
        if model is None:
            raise _not_found(kind, id_)
        return model.model_dump(mode="json")

    async def list_(kit: KitDep) -> list[Doc]:
        async with kit.connect() as conn:
            return [m.model_dump(mode="json") for m in await store.list_docs(conn, cls)]

    async def delete(kit: KitDep, id_: IdPath) -> None:
        async with kit.unit_of_work() as uow:
            # Under the decision lock: no lead is assigned to it while the check runs.
            await store.decision_lock(uow.conn)
            if await store.get_doc(uow.conn, cls, id_) is None:
                raise _not_found(kind, id_)
            config = await _cache(kit).get(uow.conn)
            uses = users_of(kind, id_, config.rules, config.roster)
            leads = await store.open_leads_of(uow.conn, kind, id_)
            if leads:
                uses.append(
                    {
                        "field": "leads",
                        "message": f"{len(leads)} open lead(s) are with this {kind}, "
                        f"e.g. {', '.join(str(x) for x in leads[:5])}: reassign them first",
                    }
                )
            if uses:
                raise Problem(
                    409,
                    f"{kind.capitalize()} in use",
                    f"{kind} {id_!r} is in use: "
                    + "; ".join(f"{u['field']}: {u['message']}" for u in uses),
                    errors=uses,
                )
            await store.delete_doc(uow.conn, cls, id_)
            if cls is Rep:  # a rep who is gone works no queue: their tokens go with them
                await store.revoke_rep_tokens(uow.conn, id_)

    path = f"/v1/routing/{plural}"
    tags: list[str | Enum] = ["admin"]
    router.add_api_route(
        f"{path}/{{id_}}", put, methods=["PUT"], tags=tags, summary=f"Create or replace a {kind}"
    )
    router.add_api_route(f"{path}/{{id_}}", get, methods=["GET"], tags=tags, summary=f"One {kind}")
    router.add_api_route(path, list_, methods=["GET"], tags=tags, summary=f"All {plural}")
    router.add_api_route(
        f"{path}/{{id_}}",
        delete,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        summary=f"Remove a {kind}",
    )


_doc_routes("rep", "reps", Rep)
_doc_routes("team", "teams", Team)
_doc_routes("queue", "queues", Queue)


class AccountOwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str = Field(pattern=_SLUG)


@router.put("/v1/routing/accounts/{account_key}", tags=["admin"], summary="Set an account's owner")
async def put_account_owner(
    kit: KitDep,
    account_key: Annotated[str, Path(min_length=1, max_length=255)],
    body: AccountOwnerIn,
) -> dict[str, str]:
    async with kit.unit_of_work() as uow:
        if await store.get_doc(uow.conn, Rep, body.rep_id) is None:
            raise Problem(
                422,
                "Invalid request",
                f"unknown rep {body.rep_id!r}",
                errors=[{"field": "rep_id", "message": "unknown rep"}],
            )
        await store.set_account_owner(uow.conn, account_key, body.rep_id)
    return {"account_key": account_key.lower(), "rep_id": body.rep_id}


@router.delete("/v1/routing/accounts/{account_key}", status_code=204, tags=["admin"])
async def delete_account_owner(kit: KitDep, account_key: str) -> None:
    async with kit.unit_of_work() as uow:
        await store.set_account_owner(uow.conn, account_key, None)


@router.get("/v1/routing/accounts", tags=["admin"], summary="Account owners")
async def list_account_owners(kit: KitDep) -> dict[str, str]:
    async with kit.connect() as conn:
        return await store.account_owners(conn)


# -- rules -----------------------------------------------------------------------------


class RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]
    default_queue_id: str = Field(default="unassigned", pattern=_SLUG)
    account_owner_first: bool = True
    published_by: str | None = None


async def _rules_changed(kit: ServiceKit, uow: UnitOfWork, document: Document[Any]) -> Doc:
    """A new rule set is a configuration change: replicas re-read it at the next revision."""
    await store.bump_revision(uow.conn)
    return {}


# GET /v1/routing/rules, /versions, /versions/{n}; POST publishes (checked against the roster).
rules_router = document_router(
    store.RULES,
    path="/v1/routing/rules",
    read=Permission.ROUTING_CONFIG,
    publish=Permission.ROUTING_CONFIG,
    method="POST",
    tags=["admin"],
    after_publish=_rules_changed,
)


ReasonAction = Literal["reject", "lost", "recycle"]


class ReasonCodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]] = Field(min_length=1)


@sales_router.get(
    "/v1/routing/reason-codes",
    tags=["admin"],
    summary="Reason codes per action",
    dependencies=[requires(Permission.REASON_CODES_READ)],
)
async def get_reason_codes(kit: KitDep) -> dict[str, list[str]]:
    async with kit.connect() as conn:
        return await store.reason_codes(conn)


@router.put("/v1/routing/reason-codes/{action}", tags=["admin"])
async def put_reason_codes(kit: KitDep, action: ReasonAction, body: ReasonCodesIn) -> Doc:
    async with kit.unit_of_work() as uow:
        await store.set_reason_codes(uow.conn, action, sorted(set(body.codes)))
    return {"action": action, "codes": sorted(set(body.codes))}


# -- simulate --------------------------------------------------------------------------


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead: LeadSnapshot
    grade: str | None = None
    at: AwareDatetime | None = Field(default=None, description="decide as of (default: now)")
    rules: RuleSetIn | None = Field(default=None, description="a draft to try instead")
    exclude: list[str] = []


@router.post(
    "/v1/routing/simulate",
    tags=["routing"],
    summary="Where a sample lead would go and why (dry run, assigns nothing)",
)
async def simulate(kit: KitDep, body: SimulateIn) -> Doc:
    now = body.at or kit.clock.now()
    lead = lead_for_rules(body.lead, body.grade)
    async with kit.connect() as conn:
        config = await _cache(kit).get(conn)
        if body.rules is not None:
            draft = _validated(RuleSet, body.rules.model_dump(exclude={"published_by"}))
            config = store.Config(config.revision, config.roster, draft)
        decision = await simulate_decision(conn, config, lead, now, exclude=frozenset(body.exclude))
        await conn.rollback()
    return {"dry_run": True, "at": now.isoformat(), **decision.explanation()}


# -- callers and rep tokens --------------------------------------------------------------


class Caller(BaseModel):
    """Who calls a sales route: the admin token (``rep_id`` None) or one rep's token."""

    rep_id: str | None = None

    def acting_as(self, requested: str | None) -> str | None:
        """The rep an action is taken as: a rep's token acts as that rep only."""
        if self.rep_id is None or requested in (None, self.rep_id):
            return self.rep_id if self.rep_id is not None else requested
        raise Problem(
            403,
            "Forbidden",
            f"a rep's token acts as {self.rep_id} only",
            errors=[{"field": "rep_id", "message": f"must be {self.rep_id} or omitted"}],
        )

    def may_see(self, rep_id: str | None) -> None:
        if self.rep_id is not None and rep_id != self.rep_id:
            raise Problem(403, "Forbidden", f"a rep's token sees {self.rep_id}'s leads only")


def _caller(who: Principal, permission: Permission) -> Caller:
    rep_id = who.own_leads(permission)
    if rep_id == "":
        raise Problem(403, "Forbidden", "a rep without a rep id owns no leads")
    return Caller(rep_id=rep_id)


async def acting(who: Annotated[Principal, requires(Permission.HANDOFF)]) -> Caller:
    return _caller(who, Permission.HANDOFF)


async def reading(who: Annotated[Principal, requires(Permission.HANDOFF_READ)]) -> Caller:
    return _caller(who, Permission.HANDOFF_READ)


CallerDep = Annotated[Caller, Depends(acting)]
ReaderDep = Annotated[Caller, Depends(reading)]


async def rep_token_principal(kit: ServiceKit, token: str) -> Principal | None:
    """A rep's personal token (``lfr_...``) is that rep's credential on every route of
    routing, the same as a signed-in rep's token (the kernel asks this for bearer tokens
    that are neither the admin token nor a JWT)."""
    if not looks_like_rep_token(token):
        return None
    async with kit.connect() as conn:
        rep_id = await store.rep_of_token(conn, rep_token_digest(token))
    if rep_id is None:
        return None
    return Principal(f"rep-token:{rep_id}", "rep_token", frozenset({Role.REP}), rep_id=rep_id)


class RepTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200, description="e.g. the device or CRM seat")


@router.post(
    "/v1/routing/reps/{rep_id}/tokens",
    status_code=201,
    tags=["admin"],
    summary="Issue a rep's personal token (shown once)",
)
async def issue_rep_token(kit: KitDep, rep_id: IdPath, body: RepTokenIn) -> Doc:
    token_id, token = new_rep_token()
    async with kit.unit_of_work() as uow:
        if await store.get_doc(uow.conn, Rep, rep_id) is None:
            raise _not_found("rep", rep_id)
        row = await store.insert_rep_token(
            uow.conn, token_id, rep_token_digest(token), rep_id, body.name
        )
    return {**row, "token": token}


@router.get("/v1/routing/reps/{rep_id}/tokens", tags=["admin"], summary="A rep's tokens")
async def list_rep_tokens(kit: KitDep, rep_id: IdPath) -> Doc:
    async with kit.connect() as conn:
        return {"rep_id": rep_id, "tokens": await store.rep_tokens(conn, rep_id)}


@router.delete(
    "/v1/routing/reps/{rep_id}/tokens/{token_id}",
    status_code=204,
    tags=["admin"],
    summary="Revoke a rep's token",
)
async def revoke_rep_token(kit: KitDep, rep_id: IdPath, token_id: IdPath) -> None:
    async with kit.unit_of_work() as uow:
        if not await store.revoke_rep_token(uow.conn, rep_id, token_id):
            raise _not_found("token", token_id)


# -- hand-off actions ------------------------------------------------------------------


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str | None = Field(default=None, pattern=_SLUG, description="default: the owner")


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


LeadId = Annotated[uuid.UUID, Path()]


@sales_router.post("/v1/leads/{lead_id}/accept", tags=["hand-off"], summary="Rep accepts (SAL)")
async def accept(kit: KitDep, who: CallerDep, lead_id: LeadId, body: AcceptIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        assert rep is not None
        return LeadAccepted(rep_id=rep)

    return await _act(kit, who, lead_id, body, LeadAccepted.event_type, build, claim=True)


@sales_router.post(
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


@sales_router.post("/v1/leads/{lead_id}/contacted", tags=["hand-off"], summary="Rep made contact")
async def contacted(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ContactedIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadContacted(rep_id=rep, channel=body.channel, note=body.note)

    return await _act(kit, who, lead_id, body, LeadContacted.event_type, build)


@sales_router.post(
    "/v1/leads/{lead_id}/qualify", tags=["hand-off"], summary="Sales-qualified (SQL)"
)
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


@sales_router.post(
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


@sales_router.post("/v1/leads/{lead_id}/won", tags=["hand-off"], summary="Deal won (amount)")
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


@sales_router.post("/v1/leads/{lead_id}/lost", tags=["hand-off"], summary="Deal lost (reason code)")
async def lost(kit: KitDep, who: CallerDep, lead_id: LeadId, body: ReasonIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return DealLost(
            opportunity_id=row.opportunity_id,
            reason_code=body.reason_code,
            note=body.note,
            rep_id=rep,
        )

    return await _act(kit, who, lead_id, body, DealLost.event_type, build, reason_action="lost")


@sales_router.post("/v1/leads/{lead_id}/hold", tags=["hand-off"], summary="Park the lead")
async def hold(kit: KitDep, who: CallerDep, lead_id: LeadId, body: HoldIn) -> ActionOut:
    async def build(row: LeadRow, rep: str | None, uow: UnitOfWork) -> EventPayload:
        return LeadPutOnHold(reason=body.reason, until=body.until, rep_id=rep)

    return await _act(kit, who, lead_id, body, LeadPutOnHold.event_type, build)


@sales_router.post(
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


# -- read views ------------------------------------------------------------------------


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str = Field(pattern=_SLUG, description="the rep who takes the lead over")
    reason: str = Field(min_length=1, max_length=500, description="why, for the decision log")


@router.post(
    "/v1/leads/{lead_id}/reassign",
    tags=["hand-off"],
    summary="A sales manager hands an open lead to another rep (lead.reassigned)",
    responses={409: {"description": "lead not open, same rep, or rep unavailable"}},
)
async def reassign(kit: KitDep, lead_id: LeadId, body: ReassignIn) -> ActionOut:
    """Under the routing decision lock (so loads and caps stay exact against concurrent
    assignments) and the lead's row lock; the decision is ``manual_reassignment``'s."""
    async with kit.unit_of_work() as uow:
        await store.decision_lock(uow.conn)
        row = await store.lock_lead(uow.conn, lead_id)
        if row is None:
            raise UnknownLead(lead_id)
        try:
            event, decision = await reassign_by_manager(
                uow, _cache(kit), row, body.rep_id, body.reason.strip() or body.reason
            )
        except ReassignRefused as refused:
            raise Problem(
                refused.status,
                "Invalid request" if refused.status == 422 else "Cannot reassign",
                refused.message,
                errors=[{"field": refused.field, "message": refused.message}],
            ) from None
    return ActionOut(
        lead_id=lead_id,
        event_type=event.event_type,
        event_id=event.event_id,
        stage=row.stage.value if row.stage else None,
        rep_id=decision.rep_id,
    )


@sales_router.get(
    "/v1/reps/{rep_id}/queue",
    tags=["views"],
    summary="A rep's open leads with SLA due times, soonest first",
)
async def rep_queue(kit: KitDep, who: ReaderDep, rep_id: IdPath) -> Doc:
    who.may_see(rep_id)
    async with kit.snapshot() as conn:
        if await store.get_doc(conn, Rep, rep_id) is None:
            raise _not_found("rep", rep_id)
        leads = await store.rep_queue(conn, rep_id)
    return {"rep_id": rep_id, "count": len(leads), "leads": leads}


@sales_router.get(
    "/v1/leads/{lead_id}/assignment",
    tags=["views"],
    summary="Who owns the lead, whom to call, and the explanation of each decision "
    "(assignments and reassignments)",
)
async def assignment(kit: KitDep, who: ReaderDep, lead_id: LeadId) -> Doc:
    async with kit.snapshot() as conn:  # the lead and its decisions as of one moment
        row = await store.get_lead(conn, lead_id)
        if row is None:
            raise UnknownLead(lead_id)
        who.may_see(row.rep_id)
        history = await store.assignment_history(conn, lead_id)
        contact = await store.lead_contact(conn, lead_id)
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


__all__ = ["router", "sales_router"]
