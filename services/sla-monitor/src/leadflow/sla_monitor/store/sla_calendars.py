"""Business calendars (``sla_calendars``): one JSON body per calendar id."""

from __future__ import annotations

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.sla_monitor.domain import (
    DEFAULT_CALENDAR_ID,
    default_calendar,
)

# -- calendars ------------------------------------------------------------------------


async def calendars(tx: Tx) -> dict[str, BusinessCalendar]:
    """Every calendar, with the built-in default when none was stored under ``default``."""
    rows = await tx.fetch("SELECT body FROM sla_calendars ORDER BY calendar_id")
    out = {c.calendar_id: c for c in (BusinessCalendar.model_validate(r.body) for r in rows)}
    out.setdefault(DEFAULT_CALENDAR_ID, default_calendar())
    return out


async def get_calendar(tx: Tx, calendar_id: str) -> BusinessCalendar | None:
    body = await tx.fetchval(
        "SELECT body FROM sla_calendars WHERE calendar_id = :id", id=calendar_id
    )
    if body is None:
        return default_calendar() if calendar_id == DEFAULT_CALENDAR_ID else None
    return BusinessCalendar.model_validate(body)


async def put_calendar(tx: Tx, calendar: BusinessCalendar) -> bool:
    """Create or replace; True when it was created."""
    row = await tx.fetchrow(
        """
        INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb))
        ON CONFLICT (calendar_id) DO UPDATE SET body = EXCLUDED.body, updated_at = now()
        RETURNING (xmax = 0) AS created
        """,
        id=calendar.calendar_id,
        b=json_text(calendar.model_dump(mode="json")),
    )
    return bool(row and row.created)


async def seed_calendar(tx: Tx, calendar: BusinessCalendar) -> None:
    """Store ``calendar`` unless one with its id exists (ops' edits win over the seed)."""
    await tx.execute(
        "INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb)) "
        "ON CONFLICT (calendar_id) DO NOTHING",
        id=calendar.calendar_id,
        b=json_text(calendar.model_dump(mode="json")),
    )


async def delete_calendar(tx: Tx, calendar_id: str) -> bool:
    affected = await tx.execute("DELETE FROM sla_calendars WHERE calendar_id = :id", id=calendar_id)
    return bool(affected)
