"""HTTP: reports (JSON or CSV), campaign costs (admin), projection rebuilds, the dashboard."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from leadflow.analytics import attribution, process_reports, segments, store
from leadflow.analytics.fold_group import LeadProjection, log_head
from leadflow.analytics.projections import PROJECTION_NAMES
from leadflow.analytics.rebuild import CHUNK_EVENTS, rebuild_group
from leadflow.analytics.store import Filters
from leadflow.events import KitDep, ServiceKit
from leadflow.events.access import Permission, Principal, requires
from leadflow.events.csvexport import to_csv
from leadflow.events.errors import Problem
from leadflow.events.guards import Int64
from leadflow.events.projection import ProjectionRunner

router = APIRouter()
router.include_router(process_reports.router)


async def filters(
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=200)] = None,
    campaign: Annotated[str | None, Query(max_length=200)] = None,
) -> Filters:
    if from_ and to and to < from_:
        raise Problem(
            422,
            "Invalid date range",
            "'to' is before 'from'",
            errors=[{"field": "to", "message": "must not be before 'from'"}],
        )
    return Filters(from_, to, channel or None, campaign or None)


FiltersDep = Annotated[Filters, Depends(filters)]
Format = Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")]
# Every report answers JSON, or CSV with ?format=csv or Accept: text/csv (``respond``).
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV lines: a row with per-currency ``money`` becomes one line per currency (its
    counts repeated, filter on ``currency``); money never adds up across currencies."""
    out: list[dict[str, Any]] = []
    for row in rows:
        money = row.get("money")
        if not isinstance(money, list):
            out.append(row)
            continue
        base = {k: v for k, v in row.items() if k != "money"}
        out += [{**base, **m} for m in money] or [{**base, "currency": None}]
    return out


def respond(request: Request, fmt: str | None, report: dict[str, Any], name: str) -> Response:
    """JSON, or CSV of the report's rows with ?format=csv or Accept: text/csv."""
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        return Response(
            to_csv(flat_rows(report.get("rows", []))),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return JSONResponse(report)


@router.get(
    "/v1/funnel",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Waterfall by inquiry cohort and by period",
)
async def get_funnel(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    fmt: Format = None,
    grain: Annotated[str, Query(pattern="^(week|month)$")] = "month",
) -> Response:
    async with kit.connect() as tx:
        report = await store.funnel(tx, f, grain)
    return respond(request, fmt, report, "funnel")


@router.get(
    "/v1/velocity",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Time in stage (median, p90), lead age",
)
async def get_velocity(
    request: Request, kit: KitDep, f: FiltersDep, fmt: Format = None
) -> Response:
    async with kit.connect() as tx:
        report = await store.velocity(tx, f, kit.clock.now())
    return respond(request, fmt, report, "velocity")


@router.get(
    "/v1/sources",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Per source: rates, revenue, CPL, ROI",
)
async def get_sources(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    fmt: Format = None,
    group_by: Annotated[str, Query(pattern="^(channel|campaign|form|event)$")] = "channel",
) -> Response:
    async with kit.connect() as tx:
        report = await store.sources(tx, f, group_by)
    return respond(request, fmt, report, "sources")


@router.get(
    "/v1/attribution",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Won revenue by attribution model",
)
async def get_attribution(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    fmt: Format = None,
    model: str = "linear",
    group_by: Annotated[str, Query(pattern="^(channel|campaign)$")] = "campaign",
) -> Response:
    if model not in attribution.ATTRIBUTION_MODELS:
        raise Problem(
            422,
            "Unknown attribution model",
            f"{model!r} is not a model",
            errors=[
                {"field": "model", "message": f"one of {', '.join(attribution.ATTRIBUTION_MODELS)}"}
            ],
        )
    async with kit.connect() as tx:
        report = await store.attribution(tx, f, model, group_by)
    return respond(request, fmt, report, f"attribution-{model}")


@router.get(
    "/v1/reps",
    dependencies=[requires(Permission.TEAM_REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Reps and teams: acceptance, reasons, SLA",
)
async def get_reps(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    fmt: Format = None,
    team: str | None = None,
    rep: str | None = None,
    policy: str | None = None,
) -> Response:
    async with kit.connect() as tx:
        report = await store.reps(tx, f, team, rep, policy)
    return respond(request, fmt, report, "reps")


@router.get(
    "/v1/stuck",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Open leads past their stage's expected time",
)
async def get_stuck(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    fmt: Format = None,
    stage: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> Response:
    async with kit.connect() as tx:
        # The thresholds are the published process's expected durations (GET /v1/process).
        days = await process_reports.expected_days(tx)
        if stage is not None and stage not in days:
            raise Problem(
                422,
                "Unknown stage",
                f"{stage!r} has no expected duration in the process definition",
                errors=[{"field": "stage", "message": f"one of {', '.join(days)}"}],
            )
        report = await store.stuck(tx, f, kit.clock.now(), days, stage, limit)
    return respond(request, fmt, report, "stuck")


@router.get(
    "/v1/leads/{lead_id}/timeline",
    tags=["reports"],
    responses=CSV,
    summary="A lead's whole history (personal fields for roles that may see them)",
)
async def get_timeline(
    request: Request,
    kit: KitDep,
    lead_id: uuid.UUID,
    who: Annotated[Principal, requires(Permission.TIMELINE)],
    fmt: Format = None,
) -> Response:
    async with kit.connect() as tx:
        report = await store.timeline(tx, lead_id, personal=who.sees_personal_fields)
    if report is None:
        raise Problem(
            404,
            "Unknown lead",
            f"no events for lead {lead_id}",
            errors=[{"field": "lead_id", "message": "no events recorded"}],
        )
    return respond(request, fmt, report, f"timeline-{lead_id}")


def _mix(raw: str | None) -> dict[str, float] | None:
    if not raw:
        return None
    out: dict[str, float] = {}
    for part in raw.split(","):
        name, _, share = part.partition(":")
        try:
            value = float(share)
        except ValueError:
            value = -1
        if not name or value < 0:
            raise Problem(
                422,
                "Invalid mix",
                "use mix=channel:share,channel:share",
                errors=[{"field": "mix", "message": f"bad entry {part!r}"}],
            )
        out[name] = value
    if not sum(out.values()):
        raise Problem(
            422,
            "Invalid mix",
            "shares sum to zero",
            errors=[{"field": "mix", "message": "shares must not all be zero"}],
        )
    return out


@router.get(
    "/v1/plan",
    dependencies=[requires(Permission.REPORTS)],
    tags=["reports"],
    responses=CSV,
    summary="Leads needed for a revenue goal",
)
async def get_plan(
    request: Request,
    kit: KitDep,
    f: FiltersDep,
    revenue: Annotated[float, Query(gt=0, le=1e13)],
    period: Annotated[str, Query(pattern="^(week|month|quarter|year)$")] = "quarter",
    mix: str | None = None,
    currency: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
    fmt: Format = None,
) -> Response:
    """The goal is in ``currency`` (default: the one currency revenue was won in)."""
    async with kit.connect() as tx:
        try:
            report = await store.plan(tx, f, revenue, period, _mix(mix), currency)
        except store.PlanCurrencyError as exc:
            raise Problem(
                422,
                "Currency needed",
                str(exc),
                errors=[{"field": "currency", "message": f"one of {', '.join(exc.currencies)}"}],
            ) from exc
    return respond(request, fmt, report, "plan")


# -- campaign costs (admin) ------------------------------------------------------------------


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


@router.get(
    "/v1/campaign-costs",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    responses=CSV,
    summary="Entered campaign costs",
)
async def list_costs(request: Request, kit: KitDep, fmt: Format = None) -> Response:
    async with kit.connect() as tx:
        rows = await store.costs(tx)
    return respond(request, fmt, {"rows": rows}, "campaign-costs")


@router.post(
    "/v1/campaign-costs",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    status_code=201,
    summary="Enter a campaign's cost",
)
async def add_cost(body: CampaignCost, kit: KitDep) -> dict[str, Any]:
    """One cost per campaign, channel, currency and day: a cost overlapping one already
    entered (the same invoice posted twice) is refused, not added to it (409)."""
    async with kit.transaction() as tx:
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext('campaign_costs'))")
        clash = await tx.fetchrow(
            "SELECT id, period_start, period_end FROM campaign_costs "
            "WHERE campaign = :campaign AND channel = :channel AND currency = :currency "
            "AND period_start <= :period_end AND period_end >= :period_start "
            "ORDER BY id LIMIT 1",
            **body.model_dump(),
        )
        if clash is not None:
            raise Problem(
                409,
                "Cost already entered",
                f"cost {clash[0]} of campaign {body.campaign!r} ({body.channel}, "
                f"{body.currency}) covers {clash[1]}..{clash[2]}, which overlaps this period: "
                "delete it first to replace it",
                errors=[{"field": "period_start", "message": f"overlaps cost {clash[0]}"}],
                extra={"existing_id": clash[0]},
            )
        new_id = await tx.fetchval(
            "INSERT INTO campaign_costs (campaign, channel, period_start, period_end, "
            "amount, currency) VALUES (:campaign, :channel, :period_start, :period_end, "
            ":amount, :currency) RETURNING id",
            **body.model_dump(),
        )
    return {"id": new_id, **body.model_dump(mode="json")}


@router.delete(
    "/v1/campaign-costs/{cost_id}",
    dependencies=[requires(Permission.CAMPAIGN_COSTS)],
    tags=["admin"],
    status_code=204,
    summary="Remove a campaign cost",
)
async def delete_cost(cost_id: Int64, kit: KitDep) -> Response:
    async with kit.transaction() as tx:
        deleted = await tx.fetchval(
            "DELETE FROM campaign_costs WHERE id = :i RETURNING id", i=cost_id
        )
    if deleted is None:
        raise Problem(
            404,
            "Unknown cost",
            f"no campaign cost {cost_id}",
            errors=[{"field": "cost_id", "message": "not found"}],
        )
    return Response(status_code=204)


# -- projections ---------------------------------------------------------------------------


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
            kit.engine,
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


@router.get(
    "/v1/projections",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    summary="Checkpoints and rebuild progress",
)
async def list_projections(kit: KitDep) -> dict[str, Any]:
    runner = runner_of(kit)
    progress = _progress_before_reading(runner)
    async with kit.connect() as tx:
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


@router.post(
    "/v1/projections/{name}/rebuild",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    status_code=202,
    summary="Clear and replay a projection (with its group)",
)
async def rebuild(name: str, kit: KitDep) -> dict[str, Any]:
    _known(name)
    runner = runner_of(kit)
    if any(runner.progress[n].state == "running" for n in PROJECTION_NAMES):
        raise Problem(409, "Rebuild running", "the projections are already being rebuilt")

    async def run() -> None:
        # A failure is recorded in the progress (state=failed, error) the client polls.
        members = [cast(LeadProjection, runner.projections[n]) for n in PROJECTION_NAMES]
        with contextlib.suppress(Exception):
            await rebuild_group(
                kit.engine,
                members,
                chunk_events=getattr(kit.settings, "projection_batch", CHUNK_EVENTS),
                progress=runner.progress,
            )

    # The six projections share one fold of the log: rebuilding one replays it for all.
    for n in PROJECTION_NAMES:
        runner.progress[n].state = "running"
    kit.spawn(run(), name=f"rebuild-{name}")  # cancelled if the service stops meanwhile
    return {"name": name, "state": "running", "progress": f"/v1/projections/{name}"}


@router.get(
    "/v1/projections/{name}",
    dependencies=[requires(Permission.OPERATIONS)],
    tags=["projections"],
    summary="One projection's progress",
)
async def projection_status(name: str, kit: KitDep) -> dict[str, Any]:
    _known(name)
    runner = runner_of(kit)
    progress = _progress_before_reading(runner)[name]
    async with kit.connect() as tx:
        points = await store.checkpoints(tx)
        head = await log_head(tx)
    return {"name": name, "position": points.get(name, 0), "head": head, "rebuild": progress}


def _progress_before_reading(runner: ProjectionRunner) -> dict[str, dict[str, Any]]:
    """The rebuild progress, taken BEFORE the checkpoints are read: a rebuild that says
    "done" here committed before the read's snapshot, so the positions shown include it
    (taken after, a client could see "done" beside the positions of before its last chunk)."""
    return {n: asdict(runner.progress[n]) for n in PROJECTION_NAMES}


# -- dashboard -----------------------------------------------------------------------------


@router.get(
    "/",
    dependencies=[requires(Permission.REPORTS)],
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def dashboard(request: Request, kit: KitDep, f: FiltersDep) -> HTMLResponse:
    from leadflow.analytics.dashboard import render

    async with kit.connect() as tx:
        html = await render(tx, f, kit.clock.now())
    return HTMLResponse(html)


def parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)
