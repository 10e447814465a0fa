"""Lead-level reports: stuck leads, a lead's timeline, the projections' checkpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflow.analytics import report_math
from leadflow.analytics.cohort import stuck_condition
from leadflow.analytics.store.query import Filters
from leadflow.events.sql import Tx


async def stuck(
    tx: Tx,
    f: Filters,
    now: datetime,
    expected_days: dict[str, float],
    stage: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    where, fparams = f.where("inquiry_at::date")
    found = stuck_condition(where, fparams, now, expected_days, stage)
    if found is None:
        return {"filters": f.as_dict(), "total": 0, "by_stage": {}, "rows": []}
    cond, params = found
    by_stage = {
        s: int(n)
        for s, n in await tx.fetch(
            f"SELECT stage, count(*) FROM lead_current WHERE {cond} GROUP BY stage", **params
        )
    }
    rows = []
    for r in await tx.fetch(
        "SELECT lead_id, stage, stage_entered_at, inquiry_at, channel, campaign, rep_id, "
        f"team_id FROM lead_current WHERE {cond} ORDER BY stage_entered_at, lead_id "
        "LIMIT :limit",
        **params,
        limit=limit,
    ):
        rows.append(
            {
                "lead_id": str(r[0]),
                "stage": r[1],
                "entered_at": r[2].isoformat(),
                "days_in_stage": round((now - r[2]).total_seconds() / 86400, 2),
                "expected_days": expected_days[r[1]],
                "inquiry_at": r[3].isoformat() if r[3] else None,
                "channel": r[4],
                "campaign": r[5],
                "rep_id": r[6],
                "team_id": r[7],
            }
        )
    return {
        "filters": f.as_dict(),
        "total": sum(by_stage.values()),
        "by_stage": by_stage,
        "rows": rows,
    }


async def timeline(tx: Tx, lead_id: uuid.UUID, *, personal: bool = True) -> dict[str, Any] | None:
    """A lead's events in order; ``personal=False`` leaves out the personal fields (name,
    e-mail, phone, free text), which are kept apart in ``lead_personal``."""
    erased_at = await tx.fetchval(
        "SELECT erased_at FROM erased_leads WHERE lead_id = :l", l=lead_id
    )
    result = await tx.fetch(
        "SELECT l.global_position, l.event_id, l.producer, l.event_type, l.occurred_at, "
        "l.recorded_at, l.payload, p.fields FROM lead_event_log l "
        "LEFT JOIN lead_personal p ON p.lead_id = l.lead_id AND p.event_id = l.event_id "
        "WHERE l.lead_id = :l ORDER BY l.occurred_at, l.global_position",
        l=lead_id,
    )
    events = []
    for pos, event_id, producer, event_type, occurred, recorded, payload, fields in result:
        events.append(
            {
                "position": pos,
                "event_id": str(event_id),
                "producer": producer,
                "event_type": event_type,
                "occurred_at": occurred.isoformat(),
                "recorded_at": recorded.isoformat(),
                "stage": report_math.stage_of_event(event_type),
                "payload": {**payload, **(fields or {})} if personal else payload,
            }
        )
    if not events:
        return None
    return {
        "lead_id": str(lead_id),
        "erased": erased_at is not None,
        "erased_at": erased_at.isoformat() if erased_at else None,
        "personal_fields": "shown" if personal else "withheld",
        "events": events,
        "rows": [{k: v for k, v in e.items() if k != "payload"} for e in events],
    }


async def checkpoints(tx: Tx) -> dict[str, int]:
    return {
        n: int(p) for n, p in await tx.fetch("SELECT name, position FROM projection_checkpoints")
    }
