"""Reps' personal tokens: issued, listed, revoked, resolved (only digests are stored)."""

from __future__ import annotations

from typing import Any

from leadflow.events.sql import Tx


async def insert_rep_token(
    tx: Tx, token_id: str, digest: bytes, rep_id: str, name: str
) -> dict[str, Any]:
    row = await tx.fetchrow(
        "INSERT INTO rep_tokens (token_id, token_sha256, rep_id, name) "
        "VALUES (:i, :d, :r, :n) RETURNING token_id, rep_id, name, created_at, revoked_at",
        i=token_id,
        d=digest,
        r=rep_id,
        n=name,
    )
    assert row is not None
    return dict(row)


async def rep_tokens(tx: Tx, rep_id: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT token_id, rep_id, name, created_at, revoked_at FROM rep_tokens "
        "WHERE rep_id = :r ORDER BY created_at, token_id",
        r=rep_id,
    )
    return [dict(r) for r in rows]


async def revoke_rep_token(tx: Tx, rep_id: str, token_id: str) -> bool:
    """Revoke (idempotently); False when the rep has no such token."""
    revoked = await tx.execute(
        "UPDATE rep_tokens SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE rep_id = :r AND token_id = :i",
        r=rep_id,
        i=token_id,
    )
    return bool(revoked)


async def revoke_rep_tokens(tx: Tx, rep_id: str) -> int:
    """Revoke every live token of a rep; returns how many."""
    return await tx.execute(
        "UPDATE rep_tokens SET revoked_at = now() WHERE rep_id = :r AND revoked_at IS NULL",
        r=rep_id,
    )


async def rep_of_token(tx: Tx, digest: bytes) -> str | None:
    """The rep a live token belongs to, or None (unknown or revoked)."""
    rep = await tx.fetchval(
        "SELECT rep_id FROM rep_tokens WHERE token_sha256 = :d AND revoked_at IS NULL", d=digest
    )
    return str(rep) if rep is not None else None
