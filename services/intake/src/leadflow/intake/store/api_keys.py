"""API keys: stored as hashes with their scopes, listed and revoked."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadflow.events.sql import Tx
from leadflow.intake.security import ApiKey

# ---------------------------------------------------------------------------------------
# API keys


async def find_api_key(tx: Tx, key_hash: str) -> ApiKey | None:
    row = await tx.fetchrow(
        "SELECT key_id, name, scopes, device_id, revoked_at FROM api_keys WHERE key_hash = :h",
        h=key_hash,
    )
    if row is None:
        return None
    return ApiKey(
        str(row.key_id), row.name, frozenset(row.scopes), row.device_id, row.revoked_at is not None
    )


async def insert_api_key(
    tx: Tx,
    key_id: uuid.UUID,
    name: str,
    key_hash: str,
    prefix: str,
    scopes: Sequence[str],
    device_id: str | None,
) -> None:
    await tx.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, prefix, scopes, device_id) "
        "VALUES (:id, :name, :hash, :prefix, :scopes, :device) "
        "ON CONFLICT (key_hash) DO UPDATE SET scopes = EXCLUDED.scopes, revoked_at = NULL",
        id=key_id,
        name=name,
        hash=key_hash,
        prefix=prefix,
        scopes=list(scopes),
        device=device_id,
    )


async def list_api_keys(tx: Tx) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT key_id, name, prefix, scopes, device_id, created_at, revoked_at "
        "FROM api_keys ORDER BY created_at"
    )
    return [dict(r.items()) for r in rows]


async def revoke_api_key(tx: Tx, key_id: uuid.UUID, now: datetime) -> bool:
    changed = await tx.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE key_id = :id",
        id=key_id,
        now=now,
    )
    return changed > 0
