"""Business calendars (``sla_calendars``): one JSON body per calendar id."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.db import json_text
from leadflow.sla_monitor.domain import (
    DEFAULT_CALENDAR_ID,
    default_calendar,
)

# -- calendars ------------------------------------------------------------------------


async def calendars(conn: AsyncConnection) -> dict[str, BusinessCalendar]:
    """Every calendar, with the built-in default when none was stored under ``default``."""
    rows = await conn.execute(text("SELECT body FROM sla_calendars ORDER BY calendar_id"))
    out = {c.calendar_id: c for c in (BusinessCalendar.model_validate(r.body) for r in rows)}
    out.setdefault(DEFAULT_CALENDAR_ID, default_calendar())
    return out


async def get_calendar(conn: AsyncConnection, calendar_id: str) -> BusinessCalendar | None:
    body = await conn.scalar(
        text("SELECT body FROM sla_calendars WHERE calendar_id = :id"), {"id": calendar_id}
    )
    if body is None:
        return default_calendar() if calendar_id == DEFAULT_CALENDAR_ID else None
    return BusinessCalendar.model_validate(body)


async def put_calendar(conn: AsyncConnection, calendar: BusinessCalendar) -> bool:
    """Create or replace; True when it was created."""
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb))
                ON CONFLICT (calendar_id) DO UPDATE SET body = EXCLUDED.body, updated_at = now()
                RETURNING (xmax = 0) AS created
                """
            ),
            {"id": calendar.calendar_id, "b": json_text(calendar.model_dump(mode="json"))},
        )
    ).first()
    return bool(row and row.created)


async def seed_calendar(conn: AsyncConnection, calendar: BusinessCalendar) -> None:
    """Store ``calendar`` unless one with its id exists (ops' edits win over the seed)."""
    await conn.execute(
        text(
            "INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb)) "
            "ON CONFLICT (calendar_id) DO NOTHING"
        ),
        {"id": calendar.calendar_id, "b": json_text(calendar.model_dump(mode="json"))},
    )


async def delete_calendar(conn: AsyncConnection, calendar_id: str) -> bool:
    result = await conn.execute(
        text("DELETE FROM sla_calendars WHERE calendar_id = :id"), {"id": calendar_id}
    )
    return bool(result.rowcount)
