"""Each lead as routing knows it: stage, owner, snapshot, the decisions made on it, and
the row locks that make handlers and API commands on one lead take turns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.db import json_text
from leadflow.events.lifecycle import Cycle, LeadLifecycle, Stage
from leadflow.events.sql import Tx
from leadflow.routing.domain.lead import SALES_OPEN_STAGES, LeadRow


async def open_leads_of(tx: Tx, kind: str, id_: str) -> list[uuid.UUID]:
    """Leads in sales' hands (``SALES_OPEN_STAGES``) owned by this rep, team or queue."""
    column = {"rep": "rep_id", "team": "team_id", "queue": "queue_id"}[kind]
    rows = await tx.fetch(
        f"SELECT lead_id FROM leads WHERE {column} = :id "
        "AND stage = ANY(CAST(:stages AS text[])) ORDER BY assigned_at, lead_id",
        id=id_,
        stages=list(SALES_OPEN_STAGES),
    )
    return [r[0] for r in rows]


@dataclass(frozen=True)
class AssignmentRow:
    """One decision's arbiter row: (lead, cycle) and its explanation."""

    lead_id: uuid.UUID
    cycle: int
    decided_at: datetime
    event_id: uuid.UUID
    explanation: Mapping[str, Any]


_LEAD_COLUMNS = (
    "lead_id, stage, held_from, cycle, snapshot, assignee_kind, rep_id, team_id, queue_id, "
    "excluded_reps, assigned_at, opportunity_id, amount, currency, buying_cycle"
)


def _lead_row(r: Any) -> LeadRow:
    return LeadRow(
        lead_id=r[0],
        stage=Stage(r[1]) if r[1] else None,
        held_from=Stage(r[2]) if r[2] else None,
        cycle=r[3],
        snapshot=LeadSnapshot.model_validate(r[4] or {}),
        assignee_kind=r[5],
        rep_id=r[6],
        team_id=r[7],
        queue_id=r[8],
        excluded_reps=list(r[9] or []),
        assigned_at=r[10],
        opportunity_id=r[11],
        amount=r[12],
        currency=r[13],
        buying_cycle=Cycle(r[14] or Cycle.NEW_BUSINESS),
    )


async def lock_lead(tx: Tx, lead_id: uuid.UUID) -> LeadRow | None:
    """The lead's row FOR UPDATE: handlers and API commands on one lead take turns."""
    row = await tx.fetchrow(
        f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = :id FOR UPDATE", id=lead_id
    )
    return None if row is None else _lead_row(row)


# Insert-or-lock in id order (two lockers cannot deadlock each other), with the cycles each
# lead was already assigned in.
_LOCK_LEADS = (
    "INSERT INTO leads (lead_id) SELECT id FROM unnest(CAST(:ids AS uuid[])) AS t(id) "
    "ORDER BY id ON CONFLICT (lead_id) DO UPDATE SET lead_id = EXCLUDED.lead_id "
    f"RETURNING {_LEAD_COLUMNS}, "
    "ARRAY(SELECT a.cycle FROM assignments a WHERE a.lead_id = leads.lead_id)"
)


async def lock_leads(tx: Tx, lead_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, LeadRow]:
    """Insert-or-lock many lead rows in one round trip (in id order, so two lockers cannot
    deadlock each other), each with the cycles it was already assigned in."""
    rows = await tx.fetch(_LOCK_LEADS, ids=sorted(set(lead_ids)))
    leads: dict[uuid.UUID, LeadRow] = {}
    for r in rows:
        lead = replace(_lead_row(r), assigned_cycles=frozenset(r[15] or ()))
        leads[lead.lead_id] = lead
    return leads


async def get_lead(tx: Tx, lead_id: uuid.UUID) -> LeadRow | None:
    row = await tx.fetchrow(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = :id", id=lead_id)
    return None if row is None else _lead_row(row)


_UPDATABLE = {
    "stage",
    "held_from",
    "cycle",
    "snapshot",
    "assignee_kind",
    "rep_id",
    "team_id",
    "queue_id",
    "excluded_reps",
    "assigned_at",
    "opportunity_id",
    "amount",
    "currency",
    "buying_cycle",
}


async def update_lead(tx: Tx, lead_id: uuid.UUID, **fields: Any) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not lead columns: {unknown}")
    params: dict[str, Any] = {"id": lead_id}
    sets = []
    for name, value in fields.items():
        if name == "snapshot":
            sets.append("snapshot = CAST(:snapshot AS jsonb)")
            value = value.model_dump_json() if isinstance(value, BaseModel) else json_text(value)
        elif name in ("stage", "held_from") and value is not None:
            sets.append(f"{name} = :{name}")
            value = Stage(value).value
        elif name == "buying_cycle":
            sets.append(f"{name} = :{name}")
            value = Cycle(value).value
        else:
            sets.append(f"{name} = :{name}")
        params[name] = value
    sets.append("updated_at = now()")
    await tx.execute(f"UPDATE leads SET {', '.join(sets)} WHERE lead_id = :id", **params)


async def set_lifecycle(tx: Tx, lead_id: uuid.UUID, lc: LeadLifecycle) -> None:
    await update_lead(tx, lead_id, stage=lc.stage, held_from=lc.held_from, buying_cycle=lc.cycle)


async def assignment_history(tx: Tx, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every owner decision on the lead, oldest first: the assignment of each qualification
    cycle (``kind`` "assigned") and each reassignment within a cycle ("reassigned")."""
    rows = await tx.fetch(
        "SELECT 'assigned', cycle, decided_at, event_id, explanation FROM assignments "
        "WHERE lead_id = :id "
        "UNION ALL "
        "SELECT 'reassigned', cycle, decided_at, event_id, explanation FROM reassignments "
        "WHERE lead_id = :id "
        "ORDER BY 3, 2, 1",
        id=lead_id,
    )
    return [
        {"kind": r[0], "cycle": r[1], "decided_at": r[2], "event_id": r[3], "explanation": r[4]}
        for r in rows
    ]


async def insert_reassignment(tx: Tx, row: AssignmentRow) -> None:
    await tx.execute(
        "INSERT INTO reassignments (event_id, lead_id, cycle, decided_at, explanation) "
        "VALUES (:e, :l, :c, :at, CAST(:x AS jsonb)) ON CONFLICT (event_id) DO NOTHING",
        e=row.event_id,
        l=row.lead_id,
        c=row.cycle,
        at=row.decided_at,
        x=json_text(row.explanation),
    )


async def lead_contact(tx: Tx, lead_id: uuid.UUID) -> dict[str, Any] | None:
    value = await tx.fetchval("SELECT contact FROM leads WHERE lead_id = :id", id=lead_id)
    return dict(value) if value else None
