"""POST /v1/inquiries: the API capture path, group-committed through the batcher (the hot
path ``bench/bench_intake.py`` measures).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from leadflow.events import kit_of
from leadflow.events.envelope import new_id
from leadflow.intake import domain
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import (
    API_KEY_PARAMETER,
    IDEMPOTENCY_KEY_MAX,
    idempotency_key_of,
    require_scope,
)
from leadflow.intake.api.runtime import _draft_from_model, _hygiene_problem, _region, runtime
from leadflow.intake.batching import Idempotency, Pending
from leadflow.intake.commands import IngestItem
from leadflow.intake.domain import HygieneError
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    InquiryIn,
)
from leadflow.intake.security import (
    ApiKey,
)

router = APIRouter()


# ---------------------------------------------------------------------------------------
# Inquiries


@router.post(
    "/v1/inquiries",
    status_code=202,
    responses=ok(rs.Accepted, 202),
    tags=["capture"],
    summary="Accept an inquiry (API key with scope 'inquiries')",
    openapi_extra={
        "parameters": [
            API_KEY_PARAMETER,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key and body gets the first answer",
                "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
            },
        ]
    },
)
async def post_inquiry(
    body: InquiryIn,
    request: Request,
    key: Annotated[ApiKey, Depends(require_scope("inquiries"))],
) -> Response:
    kit = kit_of(request)
    idempotency_key = idempotency_key_of(request)
    settings = runtime(kit).settings
    try:
        inquiry = domain.clean_inquiry(
            _draft_from_model(body), channel="api", default_region=_region(settings)
        )
    except HygieneError as exc:
        raise _hygiene_problem(exc) from None
    idempotency = None
    if idempotency_key:  # the body's hash is only needed to recognise a replay
        request_hash = hashlib.sha256(
            orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        idempotency = Idempotency(f"inquiries:{key.key_id}", idempotency_key, request_hash)
    item = IngestItem(inquiry, "api", new_id(), body.anonymous_id)
    outcome = await runtime(kit).batcher.submit(Pending(item, idempotency))
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return Response(
        orjson.dumps(outcome.answer),
        status_code=202,
        headers=headers,
        media_type="application/json",
    )
