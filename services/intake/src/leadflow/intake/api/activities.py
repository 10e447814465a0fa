"""POST /v1/activities: web and product activity, by lead or by anonymous id until the
person identifies themselves.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from leadflow.events import KitDep, UnitOfWork
from leadflow.events.envelope import new_id
from leadflow.intake import commands, domain
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import API_KEY_PARAMETER, require_scope
from leadflow.intake.api.runtime import (
    _validation_problem,
    in_transaction,
    refuse_oversized_batch,
    runtime,
)
from leadflow.intake.commands import ActivityItem
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    ActivityBatchIn,
    ActivityIn,
)
from leadflow.intake.security import (
    ApiKey,
)

router = APIRouter()


# ---------------------------------------------------------------------------------------
# Activities


@router.post(
    "/v1/activities",
    responses=ok(rs.ActivityBatchResult),
    tags=["capture"],
    summary="A batch of engagement activity (API key with scope 'activities')",
    openapi_extra={"parameters": [API_KEY_PARAMETER]},
)
async def post_activities(
    batch: ActivityBatchIn,
    kit: KitDep,
    key: Annotated[ApiKey, Depends(require_scope("activities"))],
) -> JSONResponse:
    settings = runtime(kit).settings
    refuse_oversized_batch(settings, len(batch.items), "activities")
    results: list[dict[str, Any] | None] = []
    valid: list[tuple[int, ActivityItem]] = []
    for index, raw in enumerate(batch.items):
        try:
            item = ActivityIn.model_validate(raw)
            email = domain.normalize_email(item.email) if item.email else None
            lead_id = uuid.UUID(item.lead_id) if item.lead_id else None
        except ValidationError as exc:
            results.append(
                {
                    "activity_id": raw.get("activity_id"),
                    "status": "rejected",
                    "errors": _validation_problem(exc, f"items[{index}]."),
                }
            )
            continue
        except ValueError as exc:
            which = "lead_id" if "UUID" in str(exc) or "hexadecimal" in str(exc) else "email"
            results.append(
                {
                    "activity_id": raw.get("activity_id"),
                    "status": "rejected",
                    "errors": [{"field": f"items[{index}].{which}", "message": str(exc)}],
                }
            )
            continue
        if not (email or lead_id or item.anonymous_id):
            results.append(
                {
                    "activity_id": item.activity_id,
                    "status": "rejected",
                    "errors": [
                        {
                            "field": f"items[{index}]",
                            "message": "give email, lead_id or anonymous_id",
                        }
                    ],
                }
            )
            continue
        results.append(None)
        valid.append(
            (
                index,
                ActivityItem(
                    activity_id=item.activity_id or str(new_id()),
                    activity_type=item.type,
                    occurred_at=item.occurred_at,
                    email=email,
                    lead_id=lead_id,
                    anonymous_id=item.anonymous_id,
                    url=item.url,
                    content_id=item.content_id,
                    campaign=item.campaign,
                    properties=item.properties,
                ),
            )
        )

    async def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        return await commands.record_activities(uow, [v[1] for v in valid])

    recorded = await in_transaction(kit, work) if valid else []
    by_index = {index: r for (index, _), r in zip(valid, recorded, strict=True)}
    final = [r if r is not None else by_index[i] for i, r in enumerate(results)]
    counts = {
        s: sum(1 for r in final if r["status"] == s)
        for s in ("accepted", "anonymous", "duplicate", "rejected")
    }
    return JSONResponse({**counts, "items": final})
