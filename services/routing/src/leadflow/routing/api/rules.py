"""Admin routes for where leads go: the published rule set (a kernel versioned document),
reason codes, and the dry-run simulator.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from leadflow.events import KitDep, ServiceKit, UnitOfWork
from leadflow.events.access import Permission, requires
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.document_routes import document_router
from leadflow.events.documents import Document
from leadflow.routing import store
from leadflow.routing.api.common import (
    SLUG,
    Doc,
    config_cache,
    validated,
)
from leadflow.routing.domain import (
    Rule,
    RuleSet,
    lead_for_rules,
)
from leadflow.routing.handlers import simulate_decision

router = APIRouter(dependencies=[requires(Permission.ROUTING_CONFIG)])
# Reading the reason codes is a rep's business too (the console's reject/lost/recycle forms).
reason_codes_router = APIRouter()


class RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]
    default_queue_id: str = Field(default="unassigned", pattern=SLUG)
    account_owner_first: bool = True
    published_by: str | None = None


async def _rules_changed(kit: ServiceKit, uow: UnitOfWork, document: Document[Any]) -> Doc:
    """A new rule set is a configuration change: replicas re-read it at the next revision."""
    await store.bump_revision(uow.tx)
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


@reason_codes_router.get(
    "/v1/routing/reason-codes",
    tags=["admin"],
    summary="Reason codes per action",
    dependencies=[requires(Permission.REASON_CODES_READ)],
)
async def get_reason_codes(kit: KitDep) -> dict[str, list[str]]:
    async with kit.connect() as tx:
        return await store.reason_codes(tx)


@router.put(
    "/v1/routing/reason-codes/{action}",
    tags=["admin"],
)
async def put_reason_codes(kit: KitDep, action: ReasonAction, body: ReasonCodesIn) -> Doc:
    async with kit.unit_of_work() as uow:
        await store.set_reason_codes(uow.tx, action, sorted(set(body.codes)))
    return {"action": action, "codes": sorted(set(body.codes))}


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
    async with kit.snapshot() as tx:  # the configuration and the loads as of one moment
        config = await config_cache(kit).get(tx)
        if body.rules is not None:
            draft = validated(RuleSet, body.rules.model_dump(exclude={"published_by"}))
            config = replace(config, rules=draft)
        decision = await simulate_decision(tx, config, lead, now, exclude=frozenset(body.exclude))
    return {"dry_run": True, "at": now.isoformat(), **decision.explanation()}
