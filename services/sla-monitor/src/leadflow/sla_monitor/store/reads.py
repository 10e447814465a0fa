"""What the API reads: open breaches, a lead's SLAs, compliance outcomes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.events.sql import Tx
from leadflow.sla_monitor.domain import (
    Outcome,
)

# -- reads ----------------------------------------------------------------------------

_READ_COLUMNS = (
    "sla_id, lead_id, policy_id, policy_version, measures, side, status, started_by_event, "
    "started_at, warn_at, due_at, business_time, calendar_id, rep_id, team_id, warned_at, "
    "breached_at, CASE WHEN status = 'breached' THEN GREATEST(CAST(extract(epoch FROM "
    "CAST(:now AS timestamptz) - due_at) AS float8), 0) ELSE late_by_seconds END "
    "AS late_by_seconds, "
    "escalation_step, last_action, met_at, met_by_event, on_time, "
    "elapsed_seconds, elapsed_business_seconds, closed_at, closed_by_event"
)


async def open_breaches(
    tx: Tx,
    *,
    rep_id: str | None,
    team_id: str | None,
    policy_id: str | None,
    limit: int,
    offset: int,
    now: datetime,
) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        f"""
            SELECT {_READ_COLUMNS} FROM sla_instances
            WHERE status = 'breached'
              AND (CAST(:rep AS text) IS NULL OR rep_id = :rep)
              AND (CAST(:team AS text) IS NULL OR team_id = :team)
              AND (CAST(:policy AS text) IS NULL OR policy_id = :policy)
            ORDER BY due_at, sla_id LIMIT :limit OFFSET :offset
            """,
        rep=rep_id,
        team=team_id,
        policy=policy_id,
        limit=limit,
        offset=offset,
        now=now,
    )
    return [dict(r._mapping) for r in rows]


async def lead_slas(tx: Tx, lead_id: uuid.UUID, now: datetime) -> list[dict[str, Any]]:
    """Every SLA of the lead; ``late_by_seconds`` is how long after its deadline it was met,
    stopped (after a breach), or, still breached, how late it is ``now``."""
    rows = await tx.fetch(
        f"SELECT {_READ_COLUMNS} FROM sla_instances WHERE lead_id = :id "
        "ORDER BY started_at, sla_id",
        id=lead_id,
        now=now,
    )
    slas = [dict(r._mapping) for r in rows]
    if not slas:
        return slas
    esc = await tx.fetch(
        "SELECT sla_id, step, action, raised_at, notify FROM sla_escalations "
        "WHERE sla_id = ANY(CAST(:ids AS text[])) ORDER BY sla_id, step",
        ids=[s["sla_id"] for s in slas],
    )
    by_sla: dict[str, list[dict[str, Any]]] = {}
    for r in esc:
        by_sla.setdefault(r.sla_id, []).append(
            {"step": r.step, "action": r.action, "raised_at": r.raised_at, "notify": r.notify}
        )
    for s in slas:
        s["escalations"] = by_sla.get(s["sla_id"], [])
    return slas


async def lead_known(tx: Tx, lead_id: uuid.UUID) -> bool:
    return bool(
        await tx.fetchval("SELECT EXISTS (SELECT 1 FROM sla_leads WHERE lead_id = :id)", id=lead_id)
    )


@dataclass(frozen=True)
class OutcomeRow:
    policy_id: str
    measures: str | None
    team_id: str | None
    rep_id: str | None
    outcome: Outcome


async def outcomes(
    tx: Tx,
    *,
    policy_id: str | None,
    team_id: str | None,
    rep_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[OutcomeRow]:
    rows = await tx.fetch(
        """
            SELECT policy_id, measures, team_id, rep_id, status, on_time, elapsed_seconds,
                   elapsed_business_seconds, breached_at IS NOT NULL AS breached
            FROM sla_instances
            WHERE (CAST(:policy AS text) IS NULL OR policy_id = :policy)
              AND (CAST(:team AS text) IS NULL OR team_id = :team)
              AND (CAST(:rep AS text) IS NULL OR rep_id = :rep)
              AND (CAST(:since AS timestamptz) IS NULL OR started_at >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR started_at < :until)
            """,
        policy=policy_id,
        team=team_id,
        rep=rep_id,
        since=since,
        until=until,
    )
    return [
        OutcomeRow(
            r.policy_id,
            r.measures,
            r.team_id,
            r.rep_id,
            Outcome(r.status, r.on_time, r.elapsed_seconds, r.elapsed_business_seconds, r.breached),
        )
        for r in rows
    ]
