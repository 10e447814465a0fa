"""Scoring's HTTP API: the versioned model, simulate and backtest, lead score explanations,
re-score job progress and nurture track admin. Every route needs the admin token."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import KitDep, ServiceKit, UnitOfWork
from leadflow.events.access import Permission, requires
from leadflow.events.document_routes import document_router
from leadflow.events.documents import VERSION_FIELDS, Document
from leadflow.events.errors import Problem, UnknownLead
from leadflow.events.sql import Tx
from leadflow.scoring import store
from leadflow.scoring.batch import score_lead
from leadflow.scoring.commands import (
    CommandRefused,
    PutTrack,
    RetireTrack,
    decide_put_track,
    decide_retire_track,
)
from leadflow.scoring.decisions.draft import RESCORE_BATCH, job_key
from leadflow.scoring.domain import (
    FORGET_AFTER_HALF_LIVES,
    ModelInvalid,
    ScoreResult,
    ScoringModel,
    score,
    validate_model,
)
from leadflow.scoring.facts import SampleInvalid, SampleLead, simulate_lead
from leadflow.scoring.model_document import MODEL, invalid
from leadflow.scoring.settings import ScoringSettings

# What a model read from GET carries besides the model (a draft may be one sent back).
_NOT_THE_MODEL = VERSION_FIELDS - {"version"}
router = APIRouter()  # every route declares its permission (leadflow.events.access)


async def start_rescore(
    kit: ServiceKit, uow: UnitOfWork, document: Document[ScoringModel]
) -> dict[str, Any]:
    """A publish's own work, in its transaction: a job that re-scores every open lead with
    the new version, in batches run by the timer (``RESCORE_BATCH``); the answer names it."""
    settings = kit.settings
    batch_size = settings.rescore_batch_size if isinstance(settings, ScoringSettings) else 500
    job_id = uuid.uuid4()
    total = await store.count_open_leads(uow.tx)
    await store.create_job(uow.tx, job_id, document.version, total)
    await uow.timers.schedule(
        job_key(job_id),
        uow.clock.now(),
        RESCORE_BATCH,
        {"job_id": str(job_id), "batch_size": batch_size},
    )
    return {
        "rescore_job": {"id": str(job_id), "total": total, "href": f"/v1/scoring/jobs/{job_id}"}
    }


# GET /v1/scoring/model, /versions, /versions/{n}; PUT publishes (re-scoring every open lead).
model_router = document_router(
    MODEL,
    path="/v1/scoring/model",
    read=Permission.SCORING_MODEL,
    publish=Permission.SCORING_MODEL,
    method="PUT",
    tags=["model"],
    after_publish=start_rescore,
)


@router.get(
    "/v1/scoring/jobs/{job_id}",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["model"],
    summary="Progress of a re-score job",
)
async def get_job(kit: KitDep, job_id: uuid.UUID) -> dict[str, Any]:
    async with kit.connect() as tx:
        job = await store.get_job(tx, job_id)
    if job is None:
        raise Problem(404, "Unknown job", f"no re-score job {job_id}")
    total = job["total"] or 0
    return {
        "id": str(job["job_id"]),
        "model_version": job["model_version"],
        "status": job["status"],
        "total": total,
        "processed": job["processed"],
        "changed": job["changed"],
        "qualified": job["qualified"],
        "disqualified": job["disqualified"],
        "progress": 1.0
        if job["status"] == "done"
        else round(job["processed"] / total, 4)
        if total
        else 0.0,
        "started_at": job["started_at"].isoformat(),
        "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
    }


# -- simulate and backtest ------------------------------------------------------------------


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] | None = None
    now: datetime | None = None
    leads: list[SampleLead] = Field(min_length=1, max_length=1000)


def _explain(result: ScoreResult) -> dict[str, Any]:
    return {
        "fit": result.fit,
        "engagement": result.engagement,
        "engagement_before_decay": result.engagement_raw,
        "grade": result.grade,
        "engagement_level": result.engagement_level,
        "matrix_cell": result.matrix_cell,
        "mql_ready": result.mql_ready,
        "mql_reason": result.mql_reason,
        "disqualified_by": result.disqualified_by,
        "disqualify_reason": result.disqualify_reason,
        "model_version": result.model_version,
        "contributions": [
            c.model_dump()
            for c in sorted(result.contributions, key=lambda c: (-abs(c.points), c.rule_id))
        ],
        "engagement_rules": [c.model_dump() for c in result.engagement_rules],
    }


async def _draft_or_current(kit: KitDep, draft: dict[str, Any] | None) -> ScoringModel:
    if draft is None:
        async with kit.connect() as tx:
            return await store.current_model(tx)
    try:
        return validate_model({k: v for k, v in draft.items() if k not in _NOT_THE_MODEL})
    except ModelInvalid as exc:
        raise invalid(exc, "model.") from exc


@router.post(
    "/v1/scoring/simulate",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["model"],
    summary="Score sample leads; stores nothing",
)
async def simulate(kit: KitDep, request: SimulateRequest) -> dict[str, Any]:
    model = await _draft_or_current(kit, request.model)
    now = request.now or kit.clock.now()
    if now.tzinfo is None:
        raise Problem(
            422, "Invalid request", errors=[{"field": "now", "message": "needs a timezone"}]
        )
    results = []
    for i, sample in enumerate(request.leads):
        try:
            result = simulate_lead(sample, model, now)
        except SampleInvalid as exc:
            raise Problem.invalid_fields(
                [{"field": f"leads[{i}].{exc.field}", "message": exc.message}]
            ) from exc
        results.append({"id": sample.id if sample.id is not None else str(i), **_explain(result)})
    return {"model_version": model.version, "scored_at": now.isoformat(), "results": results}


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any]
    examples: int = Field(default=20, ge=0, le=500)


@router.post(
    "/v1/scoring/backtest",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["model"],
    summary="Replay stored leads against a draft model: how many would change MQL status",
)
async def backtest(kit: KitDep, request: BacktestRequest) -> dict[str, Any]:
    # The model and the leads as of one moment: a consumer committing between two pages
    # would move leads between the counts (or count one twice).
    draft = await _draft_or_current(kit, request.model)
    async with kit.snapshot() as tx:
        current = await store.current_model(tx)
        return await run_backtest(tx, kit.clock.now(), current, draft, examples=request.examples)


async def run_backtest(
    tx: Tx, now: datetime, current: ScoringModel, draft: ScoringModel, *, examples: int
) -> dict[str, Any]:
    """Score every open lead's stored history with the current and the draft model (``tx``:
    a snapshot, so that the pages all show the same moment)."""
    leads = became = stopped = grade_changed = cell_changed = 0
    vs_recorded = 0
    shown: list[dict[str, Any]] = []
    cursor: uuid.UUID | None = None
    window = timedelta(
        days=max(current.decay.half_life_days, draft.decay.half_life_days) * FORGET_AFTER_HALF_LIVES
    )
    while True:
        page = await store.open_leads_page(tx, cursor, 500)
        if not page:
            break
        cursor = page[-1].lead_id
        acts = await store.activities_of(tx, [lead.lead_id for lead in page], now - window)
        for lead in page:
            leads += 1
            history = acts[lead.lead_id]
            before = score(lead.profile, history, current, now,
                           engagement_since=lead.engagement_since)  # fmt: skip
            after = score(lead.profile, history, draft, now,
                          engagement_since=lead.engagement_since)  # fmt: skip
            grade_changed += before.grade != after.grade
            cell_changed += before.matrix_cell != after.matrix_cell
            vs_recorded += lead.qualified != after.mql_ready
            if before.mql_ready != after.mql_ready:
                became += after.mql_ready
                stopped += before.mql_ready
                if len(shown) < examples:
                    shown.append(
                        {
                            "lead_id": str(lead.lead_id),
                            "before": {"matrix_cell": before.matrix_cell,
                                       "mql_ready": before.mql_ready},
                            "after": {"matrix_cell": after.matrix_cell,
                                      "mql_ready": after.mql_ready,
                                      "reason": after.mql_reason},
                        }
                    )  # fmt: skip
    return {
        "leads": leads,
        "current_version": current.version,
        "mql_status_changed": became + stopped,
        "would_become_mql": became,
        "would_stop_being_mql": stopped,
        "differs_from_recorded_mql": vs_recorded,
        "grade_changed": grade_changed,
        "matrix_cell_changed": cell_changed,
        "examples": shown,
        "evaluated_at": now.isoformat(),
    }


# -- leads --------------------------------------------------------------------------------------


@router.get(
    "/v1/leads/{lead_id}/score",
    dependencies=[requires(Permission.SCORES_READ)],
    tags=["leads"],
    summary="A lead's score, with reasons",
)
async def lead_score(kit: KitDep, lead_id: uuid.UUID) -> dict[str, Any]:
    # The lead, the model and the activities as of one moment: a batch committing between
    # them would score activities the lead's published score and status do not know of.
    async with kit.snapshot() as tx:
        lead = await store.get_lead(tx, lead_id)
        if lead is None:
            raise UnknownLead(lead_id)
        model = await store.current_model(tx)
        result = await score_lead(tx, lead, model, kit.clock.now())
    return {
        "lead_id": str(lead_id),
        "status": lead.status,  # open, won (a customer), lost, churned, history, ...
        "cycle": lead.cycle,  # new_business, or a customer's expansion (issue 30)
        "expansions": lead.expansions,
        "scored_at": result.scored_at.isoformat(),
        **_explain(result),
        "qualified": lead.qualified,
        "qualified_at": lead.qualified_at.isoformat() if lead.qualified_at else None,
        "disqualified": lead.disqualified,
        "with_sales": lead.with_sales,
        "engagement_since": lead.engagement_since.isoformat() if lead.engagement_since else None,
        # The prediction the last ``lead.scored`` event carried (what analytics and
        # subscribers saw); null while no predictive model is promoted.
        "predicted_conversion": (lead.score or {}).get("predicted_conversion"),
        "predictive_model_version": (lead.score or {}).get("predictive_model_version"),
        "last_published": lead.score,
        "nurture": {
            "status": lead.nurture_status,
            "track_id": lead.track_id,
            "step": lead.nurture_step,
            "reason": lead.nurture_reason,
            "next_touch_due_at": lead.nurture_next_due_at.isoformat()
            if lead.nurture_next_due_at
            else None,
        },
    }


# -- nurture tracks -------------------------------------------------------------------------


@router.get(
    "/v1/scoring/tracks",
    dependencies=[requires(Permission.NURTURE)],
    tags=["nurture"],
    summary="Nurture tracks",
)
async def list_tracks(kit: KitDep, include_inactive: bool = False) -> dict[str, Any]:
    async with kit.connect() as tx:
        found = await store.tracks(tx, active_only=not include_inactive)
    return {"tracks": [t.model_dump(mode="json") for t in found]}


@router.get(
    "/v1/scoring/tracks/{track_id}",
    dependencies=[requires(Permission.NURTURE)],
    tags=["nurture"],
    summary="One nurture track",
)
async def get_track(kit: KitDep, track_id: str) -> dict[str, Any]:
    async with kit.connect() as tx:
        found = await store.track(tx, track_id)
    if found is None:
        raise Problem(404, "Unknown track", f"no nurture track {track_id!r}")
    return found.model_dump(mode="json")


@router.put(
    "/v1/scoring/tracks/{track_id}",
    dependencies=[requires(Permission.NURTURE)],
    tags=["nurture"],
    summary="Create or replace a track",
)
async def put_track(
    kit: KitDep, track_id: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    try:
        track = decide_put_track(PutTrack(track_id, body))
    except CommandRefused as refused:
        raise refused.problem() from refused
    async with kit.unit_of_work() as uow:
        version = await store.put_track(uow.tx, track.model_dump(mode="json"))
    return track.model_copy(update={"version": version}).model_dump(mode="json")


@router.delete(
    "/v1/scoring/tracks/{track_id}",
    dependencies=[requires(Permission.NURTURE)],
    tags=["nurture"],
    status_code=204,
    summary="Retire a track: no new enrolments; enrolled leads finish at their next touch",
)
async def delete_track(kit: KitDep, track_id: str) -> Response:
    command = RetireTrack(track_id)
    async with kit.unit_of_work() as uow:
        try:
            decide_retire_track(command, active=await store.deactivate_track(uow.tx, track_id))
        except CommandRefused as refused:
            raise refused.problem() from refused  # nothing was changed: rolled back
    return Response(status_code=204)
