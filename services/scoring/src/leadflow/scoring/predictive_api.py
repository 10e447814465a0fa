"""Scoring's predictive API: train a model on the outcomes (promoted only if it beats the one
in service), its report, and rule suggestions from sales' rejections. Every route needs the
admin token."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.errors import Problem
from leadflow.scoring import store
from leadflow.scoring.api import run_backtest
from leadflow.scoring.commands import (
    Incumbent,
    TrainPredictive,
    decide_promotion,
)
from leadflow.scoring.domain import (
    validate_model,
)
from leadflow.scoring.predictive import (
    Example,
    LinearModel,
    NotEnoughData,
    OutcomeRow,
    apply_suggestion,
    evaluate_on,
    label_of,
    rule_suggestions,
    train,
)

router = APIRouter()  # every route declares its permission (leadflow.events.access)


# -- predictive scoring -----------------------------------------------------------------------


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holdout_fraction: float = Field(default=0.2, gt=0.05, lt=0.5)
    regularisation: float = Field(default=0.1, gt=0)


def _examples(rows: list[dict[str, Any]]) -> list[Example]:
    out = []
    for r in rows:
        snap = r["snapshot"] or {}
        out.append(
            Example(
                lead_id=str(r["lead_id"]),
                at=r["snapshot_at"],
                features=snap.get("features", {}),
                label=label_of(r["outcome"]),
                rule_score=float(snap.get("fit", 0.0)) + float(snap.get("engagement", 0.0)),
            )
        )
    return out


@router.post(
    "/v1/scoring/predictive/train",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["predictive"],
    status_code=201,
    summary="Train a predictive model on outcomes; promoted only if it beats the current one",
)
async def train_predictive(
    kit: KitDep,
    response: Response,
    request: Annotated[TrainRequest | None, Body()] = None,
    x_trained_by: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    request = request or TrainRequest()
    command = TrainPredictive(request.holdout_fraction, request.regularisation, x_trained_by)
    async with kit.connect() as tx:
        rows = await store.latest_outcomes(tx)
    examples = _examples(rows)
    async with kit.unit_of_work() as uow:
        version = await store.next_predictive_version(uow.tx)
        try:
            # CPU-bound: off the event loop so consumers and probes keep running.
            trained = await asyncio.to_thread(
                train,
                examples,
                version=version,
                holdout_fraction=command.holdout_fraction,
                regularisation=command.regularisation,
            )
        except NotEnoughData as exc:
            raise Problem(
                422, "Not enough outcomes to train", str(exc),
                errors=[{"field": "outcomes", "message": str(exc)}],
            ) from exc  # fmt: skip
        current = await store.promoted_model(uow.tx)
        incumbent: Incumbent | None = None
        if current is not None:
            serving = LinearModel.from_json(current["weights"], current["version"])
            incumbent = Incumbent(current["version"], evaluate_on(serving, trained.holdout)["auc"])
        promotion = decide_promotion(trained.metrics, incumbent)
        await store.insert_predictive_model(
            uow.tx,
            version=version,
            weights=trained.model.to_json(),
            artifact=trained.artifact,
            metrics=promotion.metrics,
            promoted=promotion.promoted,
            trained_by=command.trained_by,
            at=uow.clock.now(),
        )
    response.headers["Location"] = "/v1/scoring/predictive/report"
    return {"version": version, "promoted": promotion.promoted, "metrics": promotion.metrics}


@router.get(
    "/v1/scoring/predictive/report",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["predictive"],
    responses={404: {"description": "No predictive model trained yet"}},
    summary="Metrics and calibration of the model in service, beside the rule model's AUC",
)
async def predictive_report(kit: KitDep) -> dict[str, Any]:
    async with kit.snapshot() as tx:  # the models and the one serving, as of one moment
        models = await store.predictive_models(tx)
        current = await store.promoted_model(tx)
    if not models:
        raise Problem(
            404, "No predictive model", "train one with POST /v1/scoring/predictive/train"
        )
    serving = current["version"] if current else None
    chosen = current["metrics"] if current else models[-1]["metrics"]
    return {
        "serving_version": serving,
        "auc": chosen["auc"],
        "rule_model_auc": chosen["rule_model"]["auc"],
        "top_decile_lift": chosen["top_decile_lift"],
        "rule_model_top_decile_lift": chosen["rule_model"]["top_decile_lift"],
        "calibration": chosen["calibration"],
        "holdout": chosen.get("holdout", {"method": "time", "why": "the newest outcomes"}),
        "holdout_examples": chosen["holdout_examples"],
        "metrics": chosen,
        "versions": [
            {
                "version": m["version"],
                "promoted": m["promoted"],
                "auc": m["metrics"]["auc"],
                "rule_model_auc": m["metrics"]["rule_model"]["auc"],
                "top_decile_lift": m["metrics"]["top_decile_lift"],
                "holdout_examples": m["metrics"]["holdout_examples"],
                "incumbent": m["metrics"].get("incumbent"),
                "trained_by": m["trained_by"],
                "trained_at": m["trained_at"].isoformat(),
                "artifact_bytes": m["artifact_bytes"],
            }
            for m in models
        ],
    }


# -- calibration from rejections --------------------------------------------------------------


@router.get(
    "/v1/scoring/suggestions",
    dependencies=[requires(Permission.SCORING_MODEL)],
    tags=["predictive"],
    summary="Rules that over-score leads sales rejects, with suggested weights and backtests",
)
async def suggestions(
    kit: KitDep,
    min_support: Annotated[int, Query(ge=1, le=1_000_000)] = 20,
    min_lift: Annotated[float, Query(gt=0)] = 1.2,
) -> dict[str, Any]:
    # The model, the outcomes and every backtest's leads as of one moment.
    async with kit.snapshot() as tx:
        model = await store.current_model(tx)
        rows = await store.all_outcomes(tx)
        now = kit.clock.now()
        outcome_rows = [
            OutcomeRow(
                outcome=r["outcome"],
                reason_code=r["reason_code"],
                rules=(r["snapshot"] or {}).get("rules", {}),
                fit=float((r["snapshot"] or {}).get("fit", 0.0)),
                engagement=float((r["snapshot"] or {}).get("engagement", 0.0)),
            )
            for r in rows
        ]
        report = rule_suggestions(outcome_rows, model, min_support=min_support, min_lift=min_lift)
        for suggestion in report["suggestions"]:
            draft = validate_model(
                apply_suggestion(model, suggestion["rule_id"], suggestion["change"]["points"]["to"])
            )
            result = await run_backtest(tx, now, model, draft, examples=0)
            suggestion["open_leads_backtest"] = {
                k: result[k]
                for k in ("leads", "mql_status_changed", "would_become_mql", "would_stop_being_mql")
            }
            suggestion["draft_model"] = draft.model_dump(mode="json")
    return {"model_version": model.version, **report}
