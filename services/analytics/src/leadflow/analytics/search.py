"""Lead search for the console's ``/leads?q=``: by e-mail, name or company, with filters
(stage, grade, source channel, owner) and paging.

Analytics is where every service's events meet, so the search lives here: ``lead_current``
has each lead's stage, channel and owner; the latest contact card is the last personal
``contact`` field recorded (``lead_personal``, blanked on erasure, so an erased person is
never found by name); the grade is the last ``lead.scored`` / ``lead.qualified`` one.
The results are personal data: ``leads.read`` (admin, marketing ops, sales managers).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from leadflow.events.access import Permission, requires
from leadflow.events.service import KitDep

search_router = APIRouter()

_SQL = """
WITH people AS (
    SELECT DISTINCT ON (l.lead_id) l.lead_id, p.fields->'contact' AS contact
    FROM lead_event_log l
    JOIN lead_personal p ON p.lead_id = l.lead_id AND p.event_id = l.event_id
    WHERE p.fields ? 'contact'
    ORDER BY l.lead_id, l.global_position DESC
), grades AS (
    SELECT DISTINCT ON (lead_id) lead_id, payload->>'grade' AS grade,
           payload->>'matrix_cell' AS matrix_cell
    FROM lead_event_log WHERE event_type IN ('lead.scored', 'lead.qualified')
    ORDER BY lead_id, global_position DESC
)
SELECT c.lead_id, c.stage, c.channel, c.campaign, c.rep_id, c.stage_entered_at,
       pe.contact, g.grade, g.matrix_cell, count(*) OVER () AS total
FROM lead_current c
LEFT JOIN people pe ON pe.lead_id = c.lead_id
LEFT JOIN grades g ON g.lead_id = c.lead_id
WHERE (CAST(:pattern AS text) IS NULL
       OR pe.contact->>'email' ILIKE :pattern
       OR concat_ws(' ', pe.contact->>'first_name', pe.contact->>'last_name') ILIKE :pattern
       OR pe.contact->>'company' ILIKE :pattern)
  AND (CAST(:stage AS text) IS NULL OR c.stage = :stage)
  AND (CAST(:grade AS text) IS NULL OR g.grade = :grade)
  AND (CAST(:channel AS text) IS NULL OR c.channel = :channel)
  AND (CAST(:rep AS text) IS NULL OR c.rep_id = :rep)
ORDER BY c.stage_entered_at DESC, c.lead_id
LIMIT :limit OFFSET :offset
"""


def _like(q: str | None) -> str | None:
    """A contains-pattern with LIKE's own wildcards escaped (a ``%`` typed is a ``%``)."""
    if not q or not q.strip():
        return None
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@search_router.get(
    "/v1/leads/search",
    tags=["leads"],
    summary="Find leads by e-mail, name or company, filtered by stage, grade, channel, owner",
    dependencies=[requires(Permission.LEADS_READ)],
)
async def search_leads(
    kit: KitDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    grade: Annotated[str | None, Query(max_length=8)] = None,
    channel: Annotated[str | None, Query(max_length=100)] = None,
    rep_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    async with kit.connect() as conn:
        rows = (
            await conn.execute(
                text(_SQL),
                {
                    "pattern": _like(q),
                    "stage": stage or None,
                    "grade": grade or None,
                    "channel": channel or None,
                    "rep": rep_id or None,
                    "limit": limit,
                    "offset": offset,
                },
            )
        ).all()
    items = [
        {
            "lead_id": str(r.lead_id),
            "stage": r.stage,
            "channel": r.channel,
            "campaign": r.campaign,
            "rep_id": r.rep_id or None,
            "stage_entered_at": r.stage_entered_at.isoformat(),
            "contact": r.contact or {},
            "grade": r.grade,
            "matrix_cell": r.matrix_cell,
        }
        for r in rows
    ]
    total = int(rows[0].total) if rows else 0
    return {"items": items, "total": total, "limit": limit, "offset": offset}
