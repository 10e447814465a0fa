"""Idempotency-Key answers of the routes other than inquiries (inquiries claim theirs in
the batch statement).
"""

from __future__ import annotations

from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx

# ---------------------------------------------------------------------------------------
# Idempotency


async def claim_idempotency(
    tx: Tx, scope: str, key: str, request_hash: str
) -> tuple[bool, str | None, int | None, Any]:
    """Claim ``key`` in this transaction. A concurrent claim of the same key waits on the
    unique index until ours commits, then sees our stored response.

    Returns (claimed, stored_hash, stored_status, stored_response)."""
    claimed = await tx.fetchval(
        "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (:s, :k, :h) "
        "ON CONFLICT DO NOTHING RETURNING true",
        s=scope,
        k=key,
        h=request_hash,
    )
    if claimed:
        return True, None, None, None
    row = await tx.fetchrow(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = :s AND key = :k",
        s=scope,
        k=key,
    )
    assert row is not None
    return False, row.request_hash, row.status, row.response


async def store_idempotent_response(
    tx: Tx, scope: str, key: str, status: int, response: Any
) -> None:
    await tx.execute(
        "UPDATE idempotency_keys SET status = :st, response = CAST(:r AS jsonb) "
        "WHERE scope = :s AND key = :k",
        st=status,
        r=json_text(response),
        s=scope,
        k=key,
    )
