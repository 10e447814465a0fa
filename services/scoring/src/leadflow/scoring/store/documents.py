"""What scoring decides with besides a lead: the current model and predictive versions
(the model document itself: ``leadflow.scoring.model_document``) and the nurture tracks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.scoring.domain import NurtureTrack, ScoringModel, validate_track
from leadflow.scoring.model_document import MODEL

# The newest scoring model (its version and row stamp, ``MODEL.head_sql``) and the promoted
# predictive model's version; one row, NULLs when none.
_VERSIONS_ROW = f"""
    SELECT m.version, m.stamp,
           (SELECT version FROM predictive_models WHERE promoted
            ORDER BY promoted_at DESC, version DESC LIMIT 1) AS predictive
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({MODEL.head_sql}) AS m ON true
"""


async def current_model(tx: Tx) -> ScoringModel:
    """The newest published model, or the built-in default (version 0) before any publish."""
    return (await MODEL.current(tx)).doc


async def _resolve_versions(
    tx: Tx, version: int | None, stamp: str | None, predictive_version: Any
) -> tuple[ScoringModel, int | None]:
    """The model of a ``_VERSIONS_ROW`` (from the document kind's cache: one parse per
    published version) and the predictive version, as a pair."""
    predictive = None if predictive_version is None else int(predictive_version)
    return (await MODEL.resolve(tx, version, stamp)).doc, predictive


# -- tracks ---------------------------------------------------------------------------------


def _track(row: Any) -> NurtureTrack:
    return validate_track({**row["doc"], "version": row["version"], "active": row["active"]})


async def tracks(tx: Tx, *, active_only: bool = True) -> list[NurtureTrack]:
    sql = "SELECT doc, version, active FROM tracks"
    if active_only:
        sql += " WHERE active"
    return [_track(r) for r in await tx.fetch(sql + " ORDER BY track_id")]


async def track(tx: Tx, track_id: str) -> NurtureTrack | None:
    row = await tx.fetchrow(
        "SELECT doc, version, active FROM tracks WHERE track_id = :id", id=track_id
    )
    return None if row is None else _track(row)


async def put_track(tx: Tx, doc: Mapping[str, Any]) -> int:
    """Create or replace a track; returns its new version."""
    body = {k: v for k, v in doc.items() if k not in {"version", "active"}}
    version = await tx.fetchval(
        "INSERT INTO tracks (track_id, doc, active) VALUES (:id, CAST(:doc AS jsonb), :active) "
        "ON CONFLICT (track_id) DO UPDATE SET doc = EXCLUDED.doc, active = EXCLUDED.active, "
        "version = tracks.version + 1, updated_at = now() RETURNING version",
        id=doc["id"],
        doc=json_text(body),
        active=bool(doc.get("active", True)),
    )
    return int(version or 1)


async def deactivate_track(tx: Tx, track_id: str) -> bool:
    changed = await tx.execute(
        "UPDATE tracks SET active = false, version = version + 1, updated_at = now() "
        "WHERE track_id = :id AND active",
        id=track_id,
    )
    return bool(changed)
