"""What scoring decides with besides a lead: the current model and predictive versions
(the model document itself: ``leadflow.scoring.model_document``) and the nurture tracks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import DriverSql, json_text
from leadflow.scoring.domain import (
    NurtureTrack,
    ScoringModel,
    validate_track,
)
from leadflow.scoring.model_document import MODEL

# The versions part of ``_CURRENT_VERSIONS``: the newest scoring model (its version and row
# stamp, ``MODEL.head_sql``) and the promoted predictive model's version; one row, NULLs when
# none.
_VERSIONS_ROW = f"""
    SELECT m.version, m.stamp,
           (SELECT version FROM predictive_models WHERE promoted
            ORDER BY promoted_at DESC, version DESC LIMIT 1) AS predictive
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({MODEL.head_sql}) AS m ON true
"""


# -- model versions (the document itself: leadflow.scoring.model_document) ----------------

# The newest published model's version and stamp and the promoted predictive model's
# version, in one statement: a consumer batch needs both.
_CURRENT_VERSIONS = DriverSql(_VERSIONS_ROW)


async def current_model(conn: AsyncConnection) -> ScoringModel:
    """The newest published model, or the built-in default (version 0) before any publish."""
    return (await MODEL.current(conn)).doc


async def current_versions(conn: AsyncConnection) -> tuple[ScoringModel, int | None]:
    """The current scoring model and the promoted predictive model's version (if any).

    The model comes from the document kind's cache (one parse per published version), so
    an event costs one indexed lookup, and a new publish is seen by the very next event."""
    (row,) = await _CURRENT_VERSIONS.fetch(conn, {})
    return await _resolve_versions(conn, row.version, row.stamp, row.predictive)


async def _resolve_versions(
    conn: AsyncConnection, version: int | None, stamp: str | None, predictive_version: Any
) -> tuple[ScoringModel, int | None]:
    """The model of a ``_VERSIONS_ROW`` and the predictive version, as a pair."""
    predictive = None if predictive_version is None else int(predictive_version)
    return (await MODEL.resolve(conn, version, stamp)).doc, predictive


# -- tracks ---------------------------------------------------------------------------------


async def tracks(conn: AsyncConnection, *, active_only: bool = True) -> list[NurtureTrack]:
    sql = "SELECT doc, version, active FROM tracks"
    if active_only:
        sql += " WHERE active"
    rows = await conn.execute(text(sql + " ORDER BY track_id"))
    return [validate_track({**r.doc, "version": r.version, "active": r.active}) for r in rows]


async def track(conn: AsyncConnection, track_id: str) -> NurtureTrack | None:
    row = (
        await conn.execute(
            text("SELECT doc, version, active FROM tracks WHERE track_id = :id"), {"id": track_id}
        )
    ).first()
    if row is None:
        return None
    return validate_track({**row.doc, "version": row.version, "active": row.active})


async def put_track(conn: AsyncConnection, doc: Mapping[str, Any]) -> int:
    """Create or replace a track; returns its new version."""
    body = {k: v for k, v in doc.items() if k not in {"version", "active"}}
    version = await conn.scalar(
        text(
            "INSERT INTO tracks (track_id, doc, active) VALUES (:id, CAST(:doc AS jsonb), :active) "
            "ON CONFLICT (track_id) DO UPDATE SET doc = EXCLUDED.doc, active = EXCLUDED.active, "
            "version = tracks.version + 1, updated_at = now() RETURNING version"
        ),
        {"id": doc["id"], "doc": json_text(body), "active": bool(doc.get("active", True))},
    )
    return int(version or 1)


async def deactivate_track(conn: AsyncConnection, track_id: str) -> bool:
    result = await conn.execute(
        text(
            "UPDATE tracks SET active = false, version = version + 1, updated_at = now() "
            "WHERE track_id = :id AND active"
        ),
        {"id": track_id},
    )
    return bool(result.rowcount)
