"""Hosted web form definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import json_text

# ---------------------------------------------------------------------------------------
# Forms


async def get_form(conn: AsyncConnection, form_key: str) -> dict[str, Any] | None:
    value = await conn.scalar(
        text("SELECT definition FROM forms WHERE form_key = :k"), {"k": form_key}
    )
    return dict(value) if value is not None else None


async def put_form(
    conn: AsyncConnection,
    form_key: str,
    definition: dict[str, Any],
    *,
    only_if_missing: bool = False,
) -> None:
    conflict = (
        "DO NOTHING"
        if only_if_missing
        else ("DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()")
    )
    await conn.execute(
        text(
            f"INSERT INTO forms (form_key, definition) VALUES (:k, CAST(:d AS jsonb)) "
            f"ON CONFLICT (form_key) {conflict}"
        ),
        {"k": form_key, "d": json_text(definition)},
    )


async def list_forms(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(text("SELECT definition FROM forms ORDER BY form_key"))
    return [dict(r[0]) for r in rows]


async def delete_form(conn: AsyncConnection, form_key: str) -> bool:
    result = await conn.execute(
        text("DELETE FROM forms WHERE form_key = :k RETURNING form_key"), {"k": form_key}
    )
    return result.first() is not None
