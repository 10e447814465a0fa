"""SQL of webhook endpoints, their per-lead queues and the delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadflow.events.sql import Tx

ENDPOINT_COLUMNS = (
    "endpoint_id, url, description, events, enabled, failing_since, disabled_at, "
    "disabled_reason, created_at"
)


async def create_endpoint(
    tx: Tx,
    endpoint_id: str,
    url: str,
    description: str,
    events: Sequence[str],
    secret: str,
) -> Any:
    return await tx.fetchrow(
        f"""
                INSERT INTO webhook_endpoints (endpoint_id, url, description, events, secret)
                VALUES (:id, :url, :d, CAST(:ev AS text[]), :s) RETURNING {ENDPOINT_COLUMNS}
                """,
        id=endpoint_id,
        url=url,
        d=description,
        ev=list(events),
        s=secret,
    )


async def endpoint(tx: Tx, endpoint_id: str, *, lock: bool = False) -> Any:
    return await tx.fetchrow(
        "SELECT * FROM webhook_endpoints WHERE endpoint_id = :id" + (" FOR UPDATE" if lock else ""),
        id=endpoint_id,
    )


async def endpoints(tx: Tx) -> list[Any]:
    rows = await tx.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, endpoint_id"
    )
    return list(rows)


async def enabled_endpoints(tx: Tx) -> list[Any]:
    rows = await tx.fetch("SELECT endpoint_id, events FROM webhook_endpoints WHERE enabled")
    return list(rows)


async def delete_endpoint(tx: Tx, endpoint_id: str) -> bool:
    affected = await tx.execute(
        "DELETE FROM webhook_endpoints WHERE endpoint_id = :id", id=endpoint_id
    )
    await tx.execute("DELETE FROM timers WHERE key LIKE :p", p=f"wh:{endpoint_id}:%")
    return bool(affected)


async def rotate_secret(tx: Tx, endpoint_id: str, secret: str, previous_until: datetime) -> bool:
    affected = await tx.execute(
        """
            UPDATE webhook_endpoints SET previous_secret = secret, previous_until = :until,
                secret = :s WHERE endpoint_id = :id
            """,
        id=endpoint_id,
        s=secret,
        until=previous_until,
    )
    return bool(affected)


async def set_enabled(
    tx: Tx, endpoint_id: str, enabled: bool, at: datetime, reason: str | None
) -> None:
    await tx.execute(
        """
            UPDATE webhook_endpoints SET enabled = :e, failing_since = NULL,
                disabled_at = CASE WHEN :e THEN NULL ELSE CAST(:at AS timestamptz) END,
                disabled_reason = CASE WHEN :e THEN NULL ELSE CAST(:r AS text) END
            WHERE endpoint_id = :id
            """,
        id=endpoint_id,
        e=enabled,
        at=at,
        r=reason,
    )


async def note_failing(tx: Tx, endpoint_id: str, since: datetime) -> datetime:
    """When the endpoint started failing (kept from the first failure until a success)."""
    row = await tx.fetchrow(
        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, :at) "
        "WHERE endpoint_id = :id RETURNING failing_since",
        id=endpoint_id,
        at=since,
    )
    if row is None:
        raise LookupError(f"webhook endpoint {endpoint_id} is gone")
    failing_since: datetime = row.failing_since
    return failing_since


async def note_healthy(tx: Tx, endpoint_id: str) -> None:
    await tx.execute(
        "UPDATE webhook_endpoints SET failing_since = NULL "
        "WHERE endpoint_id = :id AND failing_since IS NOT NULL",
        id=endpoint_id,
    )


async def enqueue(
    tx: Tx,
    *,
    message_id: str,
    endpoint_id: str,
    lead_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    body: str,
) -> bool:
    affected = await tx.execute(
        """
            INSERT INTO webhook_messages (message_id, endpoint_id, lead_id, event_id, event_type,
                                          body)
            VALUES (:id, :ep, :lead, :eid, :type, :body)
            ON CONFLICT DO NOTHING
            """,
        id=message_id,
        ep=endpoint_id,
        lead=lead_id,
        eid=event_id,
        type=event_type,
        body=body,
    )
    return bool(affected)


async def queue_head(tx: Tx, endpoint_id: str, lead_id: uuid.UUID, limit: int) -> list[Any]:
    """The oldest pending messages of one lead for one endpoint: delivered in this order."""
    rows = await tx.fetch(
        """
            SELECT message_id, event_type, body, attempts, created_at FROM webhook_messages
            WHERE endpoint_id = :ep AND lead_id = :lead AND status = 'pending'
            ORDER BY seq LIMIT :n
            """,
        ep=endpoint_id,
        lead=lead_id,
        n=limit,
    )
    return list(rows)


async def record_attempt(
    tx: Tx,
    message_id: str,
    *,
    at: datetime,
    status: int | None,
    error: str | None,
    latency_ms: float,
    delivered: bool,
) -> None:
    await tx.execute(
        """
            WITH m AS (
                UPDATE webhook_messages SET attempts = attempts + 1, last_status = :st,
                    last_error = :err, latency_ms = :lat,
                    status = CASE WHEN :ok THEN 'delivered' ELSE status END,
                    delivered_at = CASE WHEN :ok THEN CAST(:at AS timestamptz) ELSE NULL END
                WHERE message_id = :id RETURNING attempts
            )
            INSERT INTO webhook_attempts (message_id, attempt, attempted_at, status, error,
                                          latency_ms)
            SELECT :id, attempts, :at, :st, :err, :lat FROM m
            """,
        id=message_id,
        at=at,
        st=status,
        err=error,
        lat=latency_ms,
        ok=delivered,
    )


async def deliveries(tx: Tx, endpoint_id: str, limit: int) -> list[Any]:
    rows = await tx.fetch(
        """
            SELECT message_id, lead_id, event_id, event_type, status, attempts, last_status,
                   last_error, latency_ms, created_at, delivered_at
            FROM webhook_messages WHERE endpoint_id = :ep
            ORDER BY created_at DESC, seq DESC LIMIT :n
            """,
        ep=endpoint_id,
        n=limit,
    )
    return list(rows)


async def attempts(tx: Tx, message_id: str) -> list[Any]:
    rows = await tx.fetch(
        "SELECT attempt, attempted_at, status, error, latency_ms FROM webhook_attempts "
        "WHERE message_id = :id ORDER BY attempt",
        id=message_id,
    )
    return list(rows)


async def replay(tx: Tx, endpoint_id: str, message_id: str) -> Any:
    """Back in its queue (keeping its place by ``seq``): a delivered message is sent again."""
    return await tx.fetchrow(
        """
                UPDATE webhook_messages SET status = 'pending'
                WHERE endpoint_id = :ep AND message_id = :id RETURNING lead_id
                """,
        ep=endpoint_id,
        id=message_id,
    )


async def pending_queues(tx: Tx, endpoint_id: str) -> list[uuid.UUID]:
    rows = await tx.fetch(
        "SELECT DISTINCT lead_id FROM webhook_messages "
        "WHERE endpoint_id = :ep AND status = 'pending'",
        ep=endpoint_id,
    )
    return [r.lead_id for r in rows]
