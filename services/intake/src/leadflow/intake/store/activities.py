"""Activities by lead or anonymous id, and the anonymous ids that identified themselves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx

# ---------------------------------------------------------------------------------------
# Activities


async def existing_activity_ids(tx: Tx, ids: Sequence[str]) -> set[str]:
    rows = await tx.fetch(
        "SELECT activity_id FROM activities WHERE activity_id = ANY(CAST(:ids AS text[]))",
        ids=list(ids),
    )
    return {r[0] for r in rows}


async def insert_activities(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    await tx.execute(
        "INSERT INTO activities (activity_id, lead_id, anonymous_id, email, payload, "
        "occurred_at, attached_at) SELECT * FROM unnest(CAST(:ids AS text[]), "
        "CAST(:leads AS uuid[]), CAST(:anon AS text[]), CAST(:emails AS text[]), "
        "CAST(:payloads AS jsonb[]), CAST(:occurred AS timestamptz[]), "
        "CAST(:attached AS timestamptz[]))",
        ids=[r["activity_id"] for r in rows],
        leads=[r["lead_id"] for r in rows],
        anon=[r["anonymous_id"] for r in rows],
        emails=[r["email"] for r in rows],
        payloads=[json_text(r["payload"]) for r in rows],
        occurred=[r["occurred_at"] for r in rows],
        attached=[r["attached_at"] for r in rows],
    )


async def anonymous_owners(tx: Tx, anonymous_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    if not anonymous_ids:
        return {}
    rows = await tx.fetch(
        "SELECT anonymous_id, lead_id FROM anonymous_ids "
        "WHERE anonymous_id = ANY(CAST(:a AS text[]))",
        a=list(set(anonymous_ids)),
    )
    return {r[0]: r[1] for r in rows}


async def link_anonymous(tx: Tx, pairs: dict[str, uuid.UUID]) -> None:
    if not pairs:
        return
    await tx.execute(
        "INSERT INTO anonymous_ids (anonymous_id, lead_id) SELECT * FROM "
        "unnest(CAST(:a AS text[]), CAST(:l AS uuid[])) ON CONFLICT DO NOTHING",
        a=list(pairs),
        l=list(pairs.values()),
    )


async def claim_pending_activities(
    tx: Tx,
    emails: dict[str, uuid.UUID],
    anonymous: dict[str, uuid.UUID],
    now: datetime,
) -> list[tuple[uuid.UUID, dict[str, Any], datetime]]:
    """Attach anonymous activity of people who just identified themselves (same email or
    same anonymous id); returns (lead, payload, occurred_at) to record as events."""
    if not emails and not anonymous:
        return []
    rows = await tx.fetch(
        """
            WITH ids AS (
                SELECT * FROM unnest(CAST(:emails AS text[]), CAST(:eleads AS uuid[]))
                    AS e(email, lead_id)
            ), anon AS (
                SELECT * FROM unnest(CAST(:anon AS text[]), CAST(:aleads AS uuid[]))
                    AS a(anonymous_id, lead_id)
            ), matched AS (
                SELECT a.activity_id,
                       coalesce(i.lead_id, n.lead_id) AS lead_id
                FROM activities a
                LEFT JOIN ids i ON a.email = i.email
                LEFT JOIN anon n ON a.anonymous_id = n.anonymous_id
                WHERE a.lead_id IS NULL AND (i.lead_id IS NOT NULL OR n.lead_id IS NOT NULL)
                FOR UPDATE OF a SKIP LOCKED
            )
            UPDATE activities t SET lead_id = m.lead_id, attached_at = :now
            FROM matched m WHERE t.activity_id = m.activity_id
            RETURNING t.lead_id, t.payload, t.occurred_at
            """,
        emails=list(emails),
        eleads=list(emails.values()),
        anon=list(anonymous),
        aleads=list(anonymous.values()),
        now=now,
    )
    return sorted(((r[0], dict(r[1]), r[2]) for r in rows), key=lambda t: t[2])
