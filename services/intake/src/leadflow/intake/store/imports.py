"""Imports: their status and running counts, rejected rows, source-system ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx

# ---------------------------------------------------------------------------------------
# Imports


async def create_import(
    tx: Tx,
    import_id: uuid.UUID,
    filename: str | None,
    mapping: dict[str, str],
    file_format: dict[str, Any] | None = None,
) -> None:
    await tx.execute(
        "INSERT INTO imports (import_id, status, filename, mapping, file_format) "
        "VALUES (:id, 'running', :f, CAST(:m AS jsonb), CAST(:ff AS jsonb))",
        id=import_id,
        f=filename,
        m=json_text(mapping),
        ff=json_text(file_format),
    )


async def import_total(tx: Tx, import_id: uuid.UUID, rows: int) -> None:
    await tx.execute(
        "UPDATE imports SET rows_total = :n, updated_at = now() WHERE import_id = :id",
        n=rows,
        id=import_id,
    )


@dataclass(frozen=True)
class ImportCounts:
    """What one batch of an import did (added to the import's running totals)."""

    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    new_leads: int = 0
    matched: int = 0
    unchanged: int = 0
    history_won: int = 0
    history_lost: int = 0


async def import_progress(
    tx: Tx,
    import_id: uuid.UUID,
    counts: ImportCounts,
    rejections: Sequence[tuple[int, str | None, str]],
) -> None:
    await tx.execute(
        "UPDATE imports SET rows_read = rows_read + :r, accepted = accepted + :a, "
        "rejected = rejected + :x, new_leads = new_leads + :n, matched = matched + :m, "
        "unchanged = unchanged + :u, history_won = history_won + :w, "
        "history_lost = history_lost + :l, updated_at = now() WHERE import_id = :id",
        r=counts.rows_read,
        a=counts.accepted,
        x=counts.rejected,
        n=counts.new_leads,
        m=counts.matched,
        u=counts.unchanged,
        w=counts.history_won,
        l=counts.history_lost,
        id=import_id,
    )
    if rejections:
        await tx.execute(
            "INSERT INTO import_rejections (import_id, row_number, field, reason) "
            "SELECT :id, * FROM unnest(CAST(:rows AS integer[]), CAST(:fields AS text[]), "
            "CAST(:reasons AS text[])) ON CONFLICT DO NOTHING",
            id=import_id,
            rows=[r[0] for r in rejections],
            fields=[r[1] for r in rejections],
            reasons=[r[2] for r in rejections],
        )


async def external_leads(tx: Tx, system: str, external_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    """The leads already known by these ids of ``system`` (an import's source system)."""
    if not external_ids:
        return {}
    rows = await tx.fetch(
        "SELECT external_id, lead_id FROM external_ids WHERE system = :s "
        "AND external_id = ANY(CAST(:ids AS text[]))",
        s=system,
        ids=list(external_ids),
    )
    return {r.external_id: r.lead_id for r in rows}


async def record_external_ids(
    tx: Tx, system: str, rows: Sequence[tuple[str, uuid.UUID, str | None]]
) -> None:
    """Remember (external id -> lead, outcome recorded) for the next import of the file."""
    if not rows:
        return
    await tx.execute(
        "INSERT INTO external_ids (system, external_id, lead_id, outcome) "
        "SELECT :s, * FROM unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]), "
        "CAST(:outcomes AS text[])) ON CONFLICT DO NOTHING",
        s=system,
        ids=[r[0] for r in rows],
        leads=[r[1] for r in rows],
        outcomes=[r[2] for r in rows],
    )


async def finish_import(
    tx: Tx, import_id: uuid.UUID, status: str, error: str | None = None
) -> None:
    await tx.execute(
        "UPDATE imports SET status = :s, error = :e, finished_at = now(), "
        "updated_at = now() WHERE import_id = :id",
        s=status,
        e=error,
        id=import_id,
    )


async def get_import(
    tx: Tx, import_id: uuid.UUID, rejection_limit: int
) -> tuple[Any, list[Any]] | None:
    row = await tx.fetchrow("SELECT * FROM imports WHERE import_id = :id", id=import_id)
    if row is None:
        return None
    rejected = await tx.fetch(
        "SELECT row_number, field, reason FROM import_rejections WHERE import_id = :id "
        "ORDER BY row_number LIMIT :n",
        id=import_id,
        n=rejection_limit,
    )
    return row, list(rejected)
