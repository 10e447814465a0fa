"""Scoring's ``leads`` table: one row per lead (profile, last published score, qualification
and nurture state), so that handling one event is one locking upsert plus one update."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.scoring.domain import LeadProfile
from leadflow.scoring.state import LeadRow

LEAD_COLUMNS = (
    "lead_id, profile, status, with_sales, qualified, qualified_at, disqualified, "
    "disqualify_reason, engagement_since, score, scored_at, reeval_at, nurture_status, "
    "track_id, track_version, nurture_step, nurture_reason, nurture_next_due_at, "
    "enrolled_at, outcome, snapshot, snapshot_at, cycle, expansions, stage, held_from"
)
_LEAD_FIELDS = tuple(c.strip() for c in LEAD_COLUMNS.split(","))
# Every column a handler may change, with its SQL type, written together by ``save_leads``
# (one statement, one array per column).
SAVED_COLUMNS = {
    "profile": "jsonb", "status": "text", "with_sales": "boolean", "qualified": "boolean",
    "qualified_at": "timestamptz", "disqualified": "boolean", "disqualify_reason": "text",
    "engagement_since": "timestamptz", "score": "jsonb", "scored_at": "timestamptz",
    "reeval_at": "timestamptz", "nurture_status": "text", "track_id": "text",
    "track_version": "integer", "nurture_step": "integer", "nurture_reason": "text",
    "nurture_next_due_at": "timestamptz", "enrolled_at": "timestamptz", "outcome": "text",
    "snapshot": "jsonb", "snapshot_at": "timestamptz", "cycle": "text", "expansions": "integer",
    "stage": "text", "held_from": "text",
}  # fmt: skip
_JSON_COLUMNS = frozenset(c for c, sql_type in SAVED_COLUMNS.items() if sql_type == "jsonb")


async def upsert_lead(tx: Tx, lead_id: uuid.UUID, profile: LeadProfile | None = None) -> LeadRow:
    """Create the lead if new (replacing its profile when one is given) and lock its row."""
    if profile is None:
        row = await tx.fetchrow(
            "INSERT INTO leads (lead_id) VALUES (:id) ON CONFLICT (lead_id) "
            "DO UPDATE SET updated_at = now() RETURNING " + LEAD_COLUMNS,
            id=lead_id,
        )
    else:
        row = await tx.fetchrow(
            "INSERT INTO leads (lead_id, profile) VALUES (:id, CAST(:p AS jsonb)) "
            "ON CONFLICT (lead_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now() "
            "RETURNING " + LEAD_COLUMNS,
            id=lead_id,
            p=json_text(profile.model_dump(mode="json")),
        )
    assert row is not None
    return LeadRow.from_row(row)


async def lock_lead(tx: Tx, lead_id: uuid.UUID) -> LeadRow | None:
    row = await tx.fetchrow(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = :id FOR UPDATE", id=lead_id
    )
    return LeadRow.from_row(row) if row else None


async def lock_leads(tx: Tx, lead_ids: Sequence[uuid.UUID]) -> list[LeadRow]:
    rows = await tx.fetch(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
        "ORDER BY lead_id FOR UPDATE",
        ids=list(lead_ids),
    )
    return [LeadRow.from_row(r) for r in rows]


async def get_lead(tx: Tx, lead_id: uuid.UUID) -> LeadRow | None:
    row = await tx.fetchrow(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = :id", id=lead_id)
    return LeadRow.from_row(row) if row else None


# A batch's leads created where missing and locked, in id order (``lock_batch_leads``).
_UPSERT_LEADS_ROWS = (
    "INSERT INTO leads (lead_id) SELECT i FROM unnest(CAST(:ids AS uuid[])) AS t(i) "
    "ORDER BY i ON CONFLICT (lead_id) DO UPDATE SET updated_at = now() "
    "RETURNING " + LEAD_COLUMNS
)
# The same without writing a row that exists: the new leads are inserted (``created``), the
# others locked as they are (``FOR UPDATE`` returns a row's latest version, committed after
# the statement's snapshot included). The two parts share one snapshot, so ``locked`` does
# not see ``created``'s rows; a lead another transaction created after that snapshot is in
# neither (its insert is skipped as a conflict, and the snapshot does not show it) and is
# left to ``_UPSERT_LEADS_ROWS``.
_CREATE_OR_LOCK_LEADS_ROWS = (
    "WITH created AS (INSERT INTO leads (lead_id) "
    "SELECT i FROM unnest(CAST(:ids AS uuid[])) AS t(i) ORDER BY i "
    "ON CONFLICT (lead_id) DO NOTHING RETURNING " + LEAD_COLUMNS + "), "
    "locked AS (SELECT " + LEAD_COLUMNS + " FROM leads WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
    "ORDER BY lead_id FOR UPDATE) "
    "SELECT * FROM created UNION ALL SELECT * FROM locked"
)


# Each row sets only the columns its lead changed (named in ``changed`` as ``|a|b|``); the
# others keep the stored value, so an unchanged profile or snapshot (a kilobyte of JSON each)
# is neither serialised here nor parsed again by the server.
_SAVE_LEADS_ROWS = (
    "UPDATE leads AS l SET "
    + ", ".join(
        f"{c} = CASE WHEN strpos(v.changed, '|{c}|') > 0 THEN v.{c} ELSE l.{c} END"
        for c in SAVED_COLUMNS
    )
    + ", updated_at = now() FROM unnest(CAST(:lead_id AS uuid[]), CAST(:changed AS text[]), "
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in SAVED_COLUMNS.items())
    + ") AS v(lead_id, changed, "
    + ", ".join(SAVED_COLUMNS)
    + ") WHERE l.lead_id = v.lead_id"
)


def _changed_columns(leads: Sequence[LeadRow]) -> dict[str, list[Any]] | None:
    """The changed leads as one array per column (``_SAVE_LEADS_ROWS``'s parameters; NULL
    where a lead did not change the column), their changes then counted as written; None
    when nothing changed."""
    changed = [lead for lead in leads if lead.dirty]
    if not changed:
        return None
    columns: dict[str, list[Any]] = {
        "lead_id": [lead.lead_id for lead in changed],
        "changed": ["|" + "|".join(sorted(lead.dirty)) + "|" for lead in changed],
    }
    for c in SAVED_COLUMNS:
        columns[c] = [_column_value(lead, c) if c in lead.dirty else None for lead in changed]
    for lead in changed:
        lead.dirty.clear()
    return columns


def _column_value(lead: LeadRow, column: str) -> Any:
    """A lead's value for ``column`` as the statements bind it (JSON columns as text)."""
    value = getattr(lead, column)
    if column == "profile":
        return json_text(value.model_dump(mode="json"))
    if column in _JSON_COLUMNS:
        return None if value is None else json_text(value)
    return value


async def save_leads(tx: Tx, leads: Sequence[LeadRow]) -> None:
    """Write every changed lead of a batch with one statement (one array per column)."""
    columns = _changed_columns(leads)
    if columns is not None:
        await tx.execute(_SAVE_LEADS_ROWS, **columns)


async def open_lead_ids(tx: Tx, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    rows = await tx.fetch(
        "SELECT lead_id FROM leads WHERE status = 'open' AND "
        "(CAST(:after AS uuid) IS NULL OR lead_id > :after) ORDER BY lead_id LIMIT :limit",
        after=after,
        limit=limit,
    )
    return [r[0] for r in rows]


async def count_open_leads(tx: Tx) -> int:
    return int(await tx.fetchval("SELECT count(*) FROM leads WHERE status = 'open'") or 0)


async def open_leads_page(tx: Tx, after: uuid.UUID | None, limit: int) -> list[LeadRow]:
    rows = await tx.fetch(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE status = 'open' AND "
        "(CAST(:after AS uuid) IS NULL OR lead_id > :after) ORDER BY lead_id LIMIT :limit",
        after=after,
        limit=limit,
    )
    return [LeadRow.from_row(r) for r in rows]
