"""The ``activities`` table: the engagement history a lead's score is computed from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import DriverSql, json_text
from leadflow.scoring.domain import (
    Activity,
)


async def add_activity(
    conn: AsyncConnection, lead_id: uuid.UUID, key: str, activity: Activity
) -> None:
    await conn.execute(
        text(
            "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
            "content_id, campaign, properties) VALUES (:lead, :key, :type, :at, :url, :content, "
            ":campaign, CAST(:props AS jsonb)) ON CONFLICT DO NOTHING"
        ),
        {
            "lead": lead_id,
            "key": key,
            "type": activity.activity_type,
            "at": activity.occurred_at,
            "url": activity.url,
            "content": activity.content_id,
            "campaign": activity.campaign,
            "props": json_text(dict(activity.properties)),
        },
    )


_ADD_ACTIVITIES_ROWS = (
    "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
    "content_id, campaign, properties) SELECT l, k, t, a, u, c, cp, CAST(p AS jsonb) "
    "FROM unnest(CAST(:l AS uuid[]), CAST(:k AS text[]), CAST(:t AS text[]), "
    "CAST(:a AS timestamptz[]), CAST(:u AS text[]), CAST(:c AS text[]), "
    "CAST(:cp AS text[]), CAST(:p AS text[])) AS x(l, k, t, a, u, c, cp, p) "
    "ON CONFLICT DO NOTHING RETURNING lead_id, activity_key"
)
_ACTIVITIES_OF = DriverSql(
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
    return Activity(
        activity_type=row.activity_type,
        occurred_at=row.occurred_at,
        url=row.url,
        content_id=row.content_id,
        campaign=row.campaign,
        properties=row.properties or {},
        activity_id=row.activity_key,
    )


async def activities(
    conn: AsyncConnection, lead_id: uuid.UUID, since: datetime | None
) -> list[Activity]:
    rows = await conn.execute(
        text(
            "SELECT activity_key, activity_type, occurred_at, url, content_id, campaign, "
            "properties FROM activities WHERE lead_id = :id AND "
            "(CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since)"
        ),
        {"id": lead_id, "since": since},
    )
    return [_activity(r) for r in rows]


async def activities_of(
    conn: AsyncConnection, lead_ids: Sequence[uuid.UUID], since: datetime | None
) -> dict[uuid.UUID, list[Activity]]:
    rows = await _ACTIVITIES_OF.fetch(conn, {"ids": list(lead_ids), "since": since})
    out: dict[uuid.UUID, list[Activity]] = {i: [] for i in lead_ids}
    for r in rows:
        out[r.lead_id].append(_activity(r))
    return out


async def move_activities(conn: AsyncConnection, source: uuid.UUID, target: uuid.UUID) -> None:
    """A merged duplicate's engagement counts for the surviving lead."""
    await conn.execute(
        text(
            "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
            "content_id, campaign, properties) SELECT :target, activity_key, activity_type, "
            "occurred_at, url, content_id, campaign, properties FROM activities "
            "WHERE lead_id = :source ON CONFLICT DO NOTHING"
        ),
        {"source": source, "target": target},
    )
    await conn.execute(text("DELETE FROM activities WHERE lead_id = :source"), {"source": source})


async def delete_activities(conn: AsyncConnection, lead_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM activities WHERE lead_id = :id"), {"id": lead_id})
