"""HTTP: analytics' own actions — campaign costs (admin) and projection rebuilds (operations).

Each action is a command (``commands``): the route parses the request into it, reads what
the decision needs in one transaction, lets ``decide_*`` refuse or allow it, carries it out
and maps a refusal to problem+json.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from leadflow.analytics import segments, store
from leadflow.analytics.api import CSV, Format, respond
from leadflow.analytics.commands import (
    CommandRefused,
    EnterCampaignCost,
    RebuildProjections,
    RemoveCampaignCost,
    decide_enter_cost,
    decide_rebuild,
    decide_remove_cost,
)
from leadflow.analytics.fold_group import LeadProjection, log_head
from leadflow.analytics.projections import PROJECTION_NAMES
from leadflow.analytics.rebuild import CHUNK_EVENTS, rebuild_group
from leadflow.events import KitDep, ServiceKit
from leadflow.events.access import Permission, requires
from leadflow.events.errors import Problem
from leadflow.events.guards import Int64
from leadflow.events.projection import ProjectionRunner

admin_router = APIRouter()


def refused(refusal: CommandRefused) -> Problem:
    """A command's refusal as the problem+json the API answers."""
    return refusal.problem()


class CampaignCost(BaseModel):
    campaign: str = Field(min_length=1, max_length=200)
    channel: str = Field(default=segments.UNKNOWN, min_length=1, max_length=200)
    period_start: date
    period_end: date
    amount: float = Field(ge=0, le=1e12)
    currency: str = Field(default="USD", pattern="^[A-Z]{3}$")

    @model_validator(mode="after")
    def _ordered(self) -> CampaignCost:
        if self.period_end < self.period_start:
            raise ValueError("period_end must not be before period_start")
        return self


@admin_router.get(
    "/v1/campaign-costs",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    responses=CSV,
    summary="Entered campaign costs",
)
async def list_costs(request: Request, kit: KitDep, fmt: Format = None) -> Response:
    async with kit.snapshot() as tx:
        rows = await store.costs(tx)
    return respond(request, fmt, {"rows": rows}, "campaign-costs")


@admin_router.post(
    "/v1/campaign-costs",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    status_code=201,
    summary="Enter a campaign's cost",
)
async def add_cost(body: CampaignCost, kit: KitDep) -> dict[str, Any]:
    """One cost per campaign, channel, currency and day: a cost overlapping one already
    entered (the same invoice posted twice) is refused, not added to it (409)."""
    cmd = EnterCampaignCost(**body.model_dump())
    async with kit.transaction() as tx:
        await store.lock_costs(tx)
        try:
            decide_enter_cost(
                cmd, await store.costs_of(tx, cmd.campaign, cmd.channel, cmd.currency)
            )
        except CommandRefused as refusal:
            raise refused(refusal) from None
        new_id = await store.insert_cost(tx, cmd)
    return {"id": new_id, **body.model_dump(mode="json")}


@admin_router.delete(
    "/v1/campaign-costs/{cost_id}",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    status_code=204,
    summary="Remove a campaign cost",
)
async def delete_cost(cost_id: Int64, kit: KitDep) -> Response:
    cmd = RemoveCampaignCost(cost_id)
    async with kit.transaction() as tx:
        try:
            decide_remove_cost(cmd, await store.cost(tx, cmd.cost_id))
        except CommandRefused as refusal:
            raise refused(refusal) from None
        await store.delete_cost(tx, cmd.cost_id)
    return Response(status_code=204)


@dataclass
class AnalyticsState:
    """What analytics' kit keeps (``ServiceKit[AnalyticsState]``): with consumers disabled,
    the projection runner made for rebuilds only (its progress is what clients poll)."""

    rebuild_runner: ProjectionRunner | None = None


def runner_of(kit: ServiceKit[AnalyticsState]) -> ProjectionRunner:
    """The kit's runner, or (consumers disabled) one kept on the kit for rebuilds only."""
    if kit.projection_runner is not None:
        return kit.projection_runner
    runner = kit.state.rebuild_runner
    if runner is None:
        from leadflow.analytics.fold_group import read_log
        from leadflow.analytics.projections import all_projections

        runner = kit.state.rebuild_runner = ProjectionRunner(
            kit.db,
            all_projections(),
            read_log,
            log_head,
            service=kit.service,
            rebuild_batch=getattr(kit.settings, "projection_batch", 20000),
        )
    return runner


def _known(name: str) -> str:
    if name not in PROJECTION_NAMES:
        raise Problem(
            404,
            "Unknown projection",
            f"{name!r} is not a projection",
            errors=[{"field": "name", "message": f"one of {', '.join(PROJECTION_NAMES)}"}],
        )
    return name


@admin_router.get(
    "/v1/projections",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    summary="Checkpoints and rebuild progress",
)
async def list_projections(kit: KitDep) -> dict[str, Any]:
    runner = runner_of(kit)
    progress = _progress_before_reading(runner)
    async with kit.snapshot() as tx:
        points = await store.checkpoints(tx)
        head = await log_head(tx)
    return {
        "head": head,
        "projections": [
            {
                "name": n,
                "position": points.get(n, 0),
                "lag": head - points.get(n, 0),
                "rebuild": progress[n],
            }
            for n in PROJECTION_NAMES
        ],
    }


@admin_router.post(
    "/v1/projections/{name}/rebuild",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    status_code=202,
    summary="Clear and replay a projection (with its group)",
)
async def rebuild(name: str, kit: KitDep) -> dict[str, Any]:
    runner = runner_of(kit)
    running = [n for n in PROJECTION_NAMES if runner.progress[n].state == "running"]
    try:
        # The six projections share one fold of the log: rebuilding one replays it for all.
        names = decide_rebuild(RebuildProjections(name), PROJECTION_NAMES, running)
    except CommandRefused as refusal:
        raise refused(refusal) from None

    async def run() -> None:
        # A failure is recorded in the progress (state=failed, error) the client polls.
        members = [cast(LeadProjection, runner.projections[n]) for n in names]
        with contextlib.suppress(Exception):
            await rebuild_group(
                kit,
                members,
                chunk_events=getattr(kit.settings, "projection_batch", CHUNK_EVENTS),
                progress=runner.progress,
            )

    for n in names:
        runner.progress[n].state = "running"
    kit.spawn(run(), name=f"rebuild-{name}")  # cancelled if the service stops meanwhile
    return {"name": name, "state": "running", "progress": f"/v1/projections/{name}"}


@admin_router.get(
    "/v1/projections/{name}",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    summary="One projection's progress",
)
async def projection_status(name: str, kit: KitDep) -> dict[str, Any]:
    _known(name)
    runner = runner_of(kit)
    progress = _progress_before_reading(runner)[name]
    async with kit.snapshot() as tx:
        points = await store.checkpoints(tx)
        head = await log_head(tx)
    return {"name": name, "position": points.get(name, 0), "head": head, "rebuild": progress}


def _progress_before_reading(runner: ProjectionRunner) -> dict[str, dict[str, Any]]:
    """The rebuild progress, taken BEFORE the checkpoints are read: a rebuild that says
    "done" here committed before the read's snapshot, so the positions shown include it
    (taken after, a client could see "done" beside the positions of before its last chunk)."""
    return {n: asdict(runner.progress[n]) for n in PROJECTION_NAMES}
