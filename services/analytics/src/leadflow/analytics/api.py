"""HTTP: reports (JSON or CSV), campaign costs (admin), projection rebuilds, the dashboard."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from leadflow.analytics import attribution, process_reports, store
from leadflow.analytics.store import Filters
from leadflow.events import KitDep
from leadflow.events.access import Permission, Principal, requires
from leadflow.events.csvexport import to_csv
from leadflow.events.errors import Problem

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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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
    async with kit.snapshot() as tx:
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


@router.get(
    "/",
    dependencies=[requires(Permission.REPORTS)],
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def dashboard(request: Request, kit: KitDep, f: FiltersDep) -> HTMLResponse:
    from leadflow.analytics.dashboard import render

    async with kit.snapshot() as tx:
        html = await render(tx, f, kit.clock.now())
    return HTMLResponse(html)


def parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)
