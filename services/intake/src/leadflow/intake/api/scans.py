"""POST /v1/scans: badge scans from events and booths, each an inquiry of its own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from leadflow.events import KitDep, UnitOfWork
from leadflow.events.envelope import new_id
from leadflow.intake import commands, domain, store
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import API_KEY_PARAMETER, require_scope
from leadflow.intake.api.runtime import (
    _region,
    _validation_problem,
    in_transaction,
    refuse_oversized_batch,
    runtime,
)
from leadflow.intake.commands import IngestItem
from leadflow.intake.domain import HygieneError, InquiryDraft
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    ScanBatchIn,
    ScanIn,
)
from leadflow.intake.security import (
    ApiKey,
)
from leadflow.intake.settings import IntakeSettings

router = APIRouter()


# ---------------------------------------------------------------------------------------
# Badge scans


def _scan_item(
    raw: dict[str, Any], batch: ScanBatchIn, device: str, index: int, settings: IntakeSettings
) -> tuple[str, IngestItem] | dict[str, Any]:
    scan_id = str(raw.get("scan_id", "")) or f"#{index}"
    try:
        scan = ScanIn.model_validate(raw)
    except ValidationError as exc:
        return {
            "scan_id": scan_id,
            "status": "rejected",
            "errors": _validation_problem(exc, f"items[{index}]."),
        }
    try:
        if isinstance(scan.badge, str):
            fields = domain.parse_badge(scan.badge)
            notes_in_card = fields.pop("notes", None)
        else:
            fields, notes_in_card = scan.badge.model_dump(), None
        notes = "\n".join(n for n in (scan.notes, notes_in_card) if n) or None
        draft = InquiryDraft(
            contact=fields,
            source={"event_id": batch.event_id, "campaign": batch.campaign, "device_id": device},
            answers=scan.answers.model_dump(exclude_none=True),
            notes=notes,
            rating=scan.rating,
            occurred_at=scan.scanned_at,
        )
        inquiry = domain.clean_inquiry(
            draft, channel="badge_scan", default_region=_region(settings)
        )
    except domain.BadgeFormatError as exc:
        return {
            "scan_id": scan.scan_id,
            "status": "rejected",
            "errors": [{"field": f"items[{index}].badge", "message": str(exc)}],
        }
    except HygieneError as exc:
        return {
            "scan_id": scan.scan_id,
            "status": "rejected",
            "errors": [
                {
                    "field": f"items[{index}].badge.{e.field.split('.', 1)[-1]}"
                    if e.field.startswith("contact.")
                    else f"items[{index}].{e.field}",
                    "message": e.message,
                }
                for e in exc.errors
            ],
        }
    return scan.scan_id, IngestItem(inquiry, "badge_scan", new_id())


@router.post(
    "/v1/scans",
    responses=ok(rs.ScanBatchResult),
    tags=["capture"],
    summary="A badge scanner's batch (device API key with scope 'scans')",
    openapi_extra={"parameters": [API_KEY_PARAMETER]},
)
async def post_scans(
    batch: ScanBatchIn,
    kit: KitDep,
    key: Annotated[ApiKey, Depends(require_scope("scans"))],
) -> JSONResponse:
    settings = runtime(kit).settings
    refuse_oversized_batch(settings, len(batch.items), "scans")
    device = key.device
    results: list[dict[str, Any] | None] = []
    candidates: list[tuple[int, str, IngestItem]] = []
    for index, raw in enumerate(batch.items):
        parsed = _scan_item(raw, batch, device, index, settings)
        if isinstance(parsed, dict):
            results.append(parsed)
        else:
            results.append(None)
            candidates.append((index, parsed[0], parsed[1]))

    async def work(uow: UnitOfWork) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        seen = await store.seen_scans(uow.tx, device, [c[1] for c in candidates])
        fresh: list[tuple[int, str, IngestItem]] = []
        in_batch: set[str] = set()
        for index, scan_id, item in candidates:
            if scan_id in seen:
                lead_id, inquiry_id = seen[scan_id]
                out[index] = {
                    "scan_id": scan_id,
                    "status": "duplicate",
                    "lead_id": str(lead_id),
                    "inquiry_id": str(inquiry_id),
                }
            elif scan_id in in_batch:
                out[index] = {"scan_id": scan_id, "status": "duplicate"}
            else:
                in_batch.add(scan_id)
                fresh.append((index, scan_id, item))
        ingested = await commands.ingest(uow, [f[2] for f in fresh])
        await store.record_scans(
            uow.tx,
            device,
            [
                (scan_id, r.lead_id, r.inquiry_id)
                for (_, scan_id, _), r in zip(fresh, ingested, strict=True)
            ],
        )
        for (index, scan_id, _), r in zip(fresh, ingested, strict=True):
            out[index] = {
                "scan_id": scan_id,
                "status": "accepted",
                "lead_id": str(r.lead_id),
                "inquiry_id": str(r.inquiry_id),
                "matched": r.matched,
            }
        return out

    decided = await in_transaction(kit, work) if candidates else {}
    final = [r if r is not None else decided[i] for i, r in enumerate(results)]
    counts = {
        s: sum(1 for r in final if r["status"] == s) for s in ("accepted", "duplicate", "rejected")
    }
    return JSONResponse({"device_id": device, "event_id": batch.event_id, **counts, "items": final})
