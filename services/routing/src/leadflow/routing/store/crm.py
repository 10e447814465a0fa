"""External ids (a lead's id in its source system) and CRM receipts (a CRM event's
answer, kept so a redelivery is answered the same).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx


async def add_external_ids(tx: Tx, ids: Sequence[tuple[uuid.UUID, str | None, str]]) -> None:
    """Leads' ids in their source systems, (lead, system, id) in arrival order, in one
    statement; the first lead to claim an id keeps it (intake folds a re-import of the same
    id into the same lead anyway)."""
    if not ids:
        return
    await tx.execute(
        "INSERT INTO lead_external_ids (system, external_id, lead_id) "
        "SELECT s, x, l FROM unnest(CAST(:systems AS text[]), CAST(:xs AS text[]), "
        "CAST(:leads AS uuid[])) WITH ORDINALITY AS t(s, x, l, n) ORDER BY n "
        "ON CONFLICT (system, external_id) DO NOTHING",
        systems=[(system or "").lower() for _, system, _ in ids],
        xs=[x for _, _, x in ids],
        leads=[lead for lead, _, _ in ids],
    )


async def forget_external_ids_of(tx: Tx, lead_ids: Sequence[uuid.UUID]) -> None:
    """Erased leads' external ids go (a CRM can no longer name them by one)."""
    if lead_ids:
        await tx.execute(
            "DELETE FROM lead_external_ids WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
            ids=list(lead_ids),
        )


async def lead_by_external_id(tx: Tx, external_id: str, system: str | None) -> uuid.UUID | None:
    """The lead with this id in ``system``, or in any system when none is named (the most
    recent when two systems share the id)."""
    lead_id = await tx.fetchval(
        """
        SELECT lead_id FROM lead_external_ids
        WHERE external_id = :x AND (CAST(:s AS text) IS NULL OR system = :s)
        ORDER BY recorded_at DESC LIMIT 1
        """,
        x=external_id,
        s=system.lower() if system else None,
    )
    return uuid.UUID(str(lead_id)) if lead_id is not None else None


async def lead_by_email(tx: Tx, email: str) -> uuid.UUID | None:
    """The lead whose contact card has this e-mail (the most recently assigned of several)."""
    lead_id = await tx.fetchval(
        "SELECT lead_id FROM leads WHERE lower(contact->>'email') = lower(:e) "
        "ORDER BY assigned_at DESC NULLS LAST LIMIT 1",
        e=email,
    )
    return uuid.UUID(str(lead_id)) if lead_id is not None else None


async def external_ids(tx: Tx, lead_id: uuid.UUID) -> list[dict[str, str]]:
    rows = await tx.fetch(
        "SELECT system, external_id FROM lead_external_ids WHERE lead_id = :l "
        "ORDER BY system, external_id",
        l=lead_id,
    )
    return [{"system": r["system"], "external_id": r["external_id"]} for r in rows]


async def crm_receipt(tx: Tx, key: str) -> dict[str, Any] | None:
    response = await tx.fetchval("SELECT response FROM crm_receipts WHERE event_key = :k", k=key)
    return dict(response) if response is not None else None


async def record_crm_receipt(
    tx: Tx, key: str, lead_id: uuid.UUID, response: dict[str, Any]
) -> None:
    await tx.execute(
        "INSERT INTO crm_receipts (event_key, lead_id, response) "
        "VALUES (:k, :l, CAST(:r AS jsonb)) ON CONFLICT (event_key) DO NOTHING",
        k=key,
        l=lead_id,
        r=json_text(response),
    )
