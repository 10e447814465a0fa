"""Hosted web form definitions."""

from __future__ import annotations

from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx

# ---------------------------------------------------------------------------------------
# Forms


async def get_form(tx: Tx, form_key: str) -> dict[str, Any] | None:
    value = await tx.fetchval("SELECT definition FROM forms WHERE form_key = :k", k=form_key)
    return dict(value) if value is not None else None


async def put_form(
    tx: Tx,
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
    await tx.execute(
        f"INSERT INTO forms (form_key, definition) VALUES (:k, CAST(:d AS jsonb)) "
        f"ON CONFLICT (form_key) {conflict}",
        k=form_key,
        d=json_text(definition),
    )


async def list_forms(tx: Tx) -> list[dict[str, Any]]:
    rows = await tx.fetch("SELECT definition FROM forms ORDER BY form_key")
    return [dict(r[0]) for r in rows]


async def delete_form(tx: Tx, form_key: str) -> bool:
    return await tx.execute("DELETE FROM forms WHERE form_key = :k", k=form_key) > 0
