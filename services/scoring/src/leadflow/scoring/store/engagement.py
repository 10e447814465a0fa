"""The ``activities`` table: the engagement history a lead's score is computed from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.scoring.domain import Activity

# A batch's added activities (``save_batch``); a redelivered one is already there.
_ADD_ACTIVITIES_ROWS = (
    "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
    "content_id, campaign, properties) SELECT l, k, t, a, u, c, cp, CAST(p AS jsonb) "
    "FROM unnest(CAST(:l AS uuid[]), CAST(:k AS text[]), CAST(:t AS text[]), "
    "CAST(:a AS timestamptz[]), CAST(:u AS text[]), CAST(:c AS text[]), "
    "CAST(:cp AS text[]), CAST(:p AS text[])) AS x(l, k, t, a, u, c, cp, p) "
    "ON CONFLICT DO NOTHING RETURNING lead_id, activity_key"
)
_ACTIVITIES_OF = (
    "SELECT lead_id, activity_key, activity_type, occurred_at, url, content_id, campaign, "
    "properties FROM activities WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND "
    "(CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since)"
)


def _activity_columns(items: Sequence[tuple[uuid.UUID, str, Activity]]) -> dict[str, list[Any]]:
    """``_ADD_ACTIVITIES_ROWS``'s parameters: one array per column."""
    return {
        "l": [i[0] for i in items],
        "k": [i[1] for i in items],
        "t": [i[2].activity_type for i in items],
        "a": [i[2].occurred_at for i in items],
        "u": [i[2].url for i in items],
        "c": [i[2].content_id for i in items],
        "cp": [i[2].campaign for i in items],
        "p": [json_text(dict(i[2].properties)) for i in items],
    }


def _activity(row: Any) -> Activity:
    """A row of ``_ACTIVITIES_OF`` (read by key: a Row's attribute read is a Python
    ``__getattr__``, and a batch reads every activity of its leads' decay windows)."""
    return Activity(
        activity_type=row["activity_type"],
        occurred_at=row["occurred_at"],
        url=row["url"],
        content_id=row["content_id"],
        campaign=row["campaign"],
        properties=row["properties"] or {},
        activity_id=row["activity_key"],
    )


async def activities(tx: Tx, lead_id: uuid.UUID, since: datetime | None) -> list[Activity]:
    return (await activities_of(tx, [lead_id], since))[lead_id]


async def activities_of(
    tx: Tx, lead_ids: Sequence[uuid.UUID], since: datetime | None
) -> dict[uuid.UUID, list[Activity]]:
    rows = await tx.fetch(_ACTIVITIES_OF, ids=list(lead_ids), since=since)
    out: dict[uuid.UUID, list[Activity]] = {i: [] for i in lead_ids}
    for r in rows:
        out[r["lead_id"]].append(_activity(r))
    return out


async def move_activities(tx: Tx, source: uuid.UUID, target: uuid.UUID) -> None:
    """A merged duplicate's engagement counts for the surviving lead."""
    await tx.execute(
        "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
        "content_id, campaign, properties) SELECT :target, activity_key, activity_type, "
        "occurred_at, url, content_id, campaign, properties FROM activities "
        "WHERE lead_id = :source ON CONFLICT DO NOTHING",
        source=source,
        target=target,
    )
    await tx.execute("DELETE FROM activities WHERE lead_id = :source", source=source)


async def delete_activities(tx: Tx, lead_id: uuid.UUID) -> None:
    await tx.execute("DELETE FROM activities WHERE lead_id = :id", id=lead_id)
