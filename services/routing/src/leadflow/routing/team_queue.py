"""A rep's view of their team's queue: the leads waiting there for someone to take them.

Routing parks a lead in a queue when no rep of the target team can take it (all at
capacity, out of office, off shift); a rep with room claims one by accepting it, naming
themselves (``POST /v1/leads/{id}/accept`` with ``rep_id``). This view is what the console's
queue page shows under "My team's queue". It reads as the hand-off routes do: a rep sees
their own team's queues only; the admin token and managers see any rep's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from leadflow.events import KitDep
from leadflow.events.sql import Tx
from leadflow.routing import store
from leadflow.routing.api.common import CallerDep, Doc, IdPath, not_found
from leadflow.routing.domain import Queue, Rep, Team, team_queue_ids

team_router = APIRouter()


async def queued_leads(tx: Tx, queue_ids: list[str]) -> list[dict[str, Any]]:
    """Leads waiting (no rep) in these queues, in sales' open stages, oldest first."""
    if not queue_ids:
        return []
    rows = await tx.fetch(
        """
        SELECT l.lead_id, l.stage, l.queue_id, l.assigned_at, l.snapshot, l.contact
        FROM leads l
        WHERE l.rep_id IS NULL AND l.queue_id = ANY(CAST(:queues AS text[]))
          AND l.stage = ANY(CAST(:stages AS text[]))
        ORDER BY l.assigned_at NULLS LAST, l.lead_id
        LIMIT 200
        """,
        queues=queue_ids,
        stages=list(store.SALES_OPEN_STAGES),
    )
    return [
        {
            "lead_id": r[0],
            "stage": r[1],
            "queue_id": r[2],
            "queued_at": r[3],
            "lead": r[4],
            "contact": r[5],
        }
        for r in rows
    ]


@team_router.get(
    "/v1/reps/{rep_id}/team-queue",
    tags=["views"],
    summary="Leads waiting in the queues of a rep's team, to claim by accepting (oldest first)",
)
async def team_queue(kit: KitDep, who: CallerDep, rep_id: IdPath) -> Doc:
    who.may_see(rep_id)
    async with kit.snapshot() as tx:
        rep = await store.get_doc(tx, Rep, rep_id)
        if rep is None:
            raise not_found("rep", rep_id)
        ids = team_queue_ids(rep, await store.list_docs(tx, Team), await store.list_docs(tx, Queue))
        leads = await queued_leads(tx, ids)
    return {"rep_id": rep_id, "queue_ids": ids, "count": len(leads), "leads": leads}
