"""Outcomes (training examples with the snapshot of their sales cycle) and the trained
predictive models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.scoring.state import OutcomeRecord

_INSERT_OUTCOMES_ROWS = (
    "INSERT INTO outcomes (event_id, lead_id, outcome, reason_code, occurred_at, snapshot, "
    "snapshot_at) SELECT * FROM unnest(CAST(:o_event AS uuid[]), CAST(:o_lead AS uuid[]), "
    "CAST(:o_outcome AS text[]), CAST(:o_reason AS text[]), CAST(:o_at AS timestamptz[]), "
    "CAST(:o_snapshot AS jsonb[]), CAST(:o_snapshot_at AS timestamptz[])) "
    "ON CONFLICT DO NOTHING"
)


def _outcome_columns(rows: Sequence[OutcomeRecord]) -> dict[str, list[Any]]:
    return {
        "o_event": [r.event_id for r in rows],
        "o_lead": [r.lead_id for r in rows],
        "o_outcome": [r.outcome for r in rows],
        "o_reason": [r.reason_code for r in rows],
        "o_at": [r.occurred_at for r in rows],
        "o_snapshot": [json_text(r.snapshot) for r in rows],
        "o_snapshot_at": [r.snapshot_at for r in rows],
    }


# -- outcomes and predictive models ---------------------------------------------------------


async def latest_outcomes(tx: Tx) -> list[dict[str, Any]]:
    """One row per lead: its latest outcome with the snapshot of that sales cycle."""
    rows = await tx.fetch(
        "SELECT DISTINCT ON (lead_id) lead_id, outcome, reason_code, occurred_at, snapshot, "
        "snapshot_at FROM outcomes ORDER BY lead_id, occurred_at DESC, event_id DESC"
    )
    return [dict(r) for r in rows]


async def all_outcomes(tx: Tx) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT lead_id, outcome, reason_code, occurred_at, snapshot FROM outcomes"
    )
    return [dict(r) for r in rows]


_PREDICTIVE_CACHE: dict[int, Any] = {}


async def promoted_model(tx: Tx) -> dict[str, Any] | None:
    """The predictive model in service (newest promotion), without its artifact."""
    row = await tx.fetchrow(
        "SELECT version, weights, metrics, trained_at, promoted_at FROM predictive_models "
        "WHERE promoted ORDER BY promoted_at DESC, version DESC LIMIT 1"
    )
    return dict(row) if row else None


async def predictive_weights(tx: Tx, version: int) -> dict[str, Any] | None:
    cached = _PREDICTIVE_CACHE.get(version)
    if cached is None:
        cached = await tx.fetchval(
            "SELECT weights FROM predictive_models WHERE version = :v", v=version
        )
        if cached is not None:
            _PREDICTIVE_CACHE[version] = cached
    return cached


async def insert_predictive_model(
    tx: Tx,
    *,
    version: int,
    weights: dict[str, Any],
    artifact: bytes,
    metrics: dict[str, Any],
    promoted: bool,
    trained_by: str | None,
    at: datetime,
) -> int:
    await tx.execute(
        "INSERT INTO predictive_models (version, weights, artifact, metrics, promoted, "
        "trained_by, trained_at, promoted_at) VALUES (:v, CAST(:w AS jsonb), :a, "
        "CAST(:m AS jsonb), :p, :by, :at, :pat)",
        v=version, w=json_text(weights), a=artifact, m=json_text(metrics), p=promoted,
        by=trained_by, at=at, pat=at if promoted else None,
    )  # fmt: skip
    return version


async def next_predictive_version(tx: Tx) -> int:
    await tx.execute("LOCK TABLE predictive_models IN SHARE ROW EXCLUSIVE MODE")
    return int(
        await tx.fetchval("SELECT coalesce(max(version), 0) + 1 FROM predictive_models") or 1
    )


async def predictive_models(tx: Tx) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT version, metrics, promoted, trained_by, trained_at, promoted_at, "
        "length(artifact) AS artifact_bytes FROM predictive_models ORDER BY version"
    )
    return [dict(r) for r in rows]


async def scrub_outcome_snapshots(tx: Tx, lead_id: uuid.UUID, scrub: Callable[[Any], Any]) -> None:
    """An erased lead's training examples keep their counts, not the person's words."""
    rows = await tx.fetch("SELECT event_id, snapshot FROM outcomes WHERE lead_id = :id", id=lead_id)
    for event_id, snap in rows:
        await tx.execute(
            "UPDATE outcomes SET snapshot = CAST(:s AS jsonb) WHERE event_id = :e",
            s=json_text(scrub(snap)),
            e=event_id,
        )
