"""The console's SQL: users, the signing key, failed sign-ins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflow.console.domain import User
from leadflow.events.sql import Tx

_USER_COLUMNS = "user_id, email, name, roles, rep_id, created_at, updated_at"


def _user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        email=row.email,
        name=row.name,
        roles=tuple(row.roles),
        rep_id=row.rep_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def insert_user(
    tx: Tx,
    *,
    email: str,
    name: str,
    password_hash: str,
    roles: list[str],
    rep_id: str | None,
) -> User | None:
    """The new user, or None when the e-mail is taken (compared case-insensitively)."""
    row = await tx.fetchrow(
        f"""
                INSERT INTO users (user_id, email, name, password_hash, roles, rep_id)
                VALUES (:id, :email, :name, :hash, :roles, :rep_id)
                ON CONFLICT ((lower(email))) DO NOTHING
                RETURNING {_USER_COLUMNS}
                """,
        id=uuid.uuid4(),
        email=email,
        name=name,
        hash=password_hash,
        roles=roles,
        rep_id=rep_id,
    )
    return _user(row) if row else None


async def get_user(tx: Tx, user_id: uuid.UUID) -> User | None:
    row = await tx.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = :id", id=user_id)
    return _user(row) if row else None


async def credentials_of(tx: Tx, email: str) -> tuple[User, str] | None:
    row = await tx.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower(:e)",
        e=email,
    )
    return (_user(row), row.password_hash) if row else None


async def list_users(tx: Tx) -> list[User]:
    rows = await tx.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY lower(email)")
    return [_user(r) for r in rows]


async def update_user(tx: Tx, user_id: uuid.UUID, changes: dict[str, Any]) -> User | None:
    """Apply ``changes`` (columns → values); None when there is no such user. Raises
    ``UniqueViolation`` when a new e-mail is taken."""
    sets = ", ".join(f"{column} = :{column}" for column in changes)
    row = await tx.fetchrow(
        f"UPDATE users SET {sets}, updated_at = now() WHERE user_id = :user_id "
        f"RETURNING {_USER_COLUMNS}",
        **changes,
        user_id=user_id,
    )
    return _user(row) if row else None


async def delete_user(tx: Tx, user_id: uuid.UUID) -> bool:
    return bool(await tx.execute("DELETE FROM users WHERE user_id = :id", id=user_id))


async def signing_key_pem(tx: Tx) -> str | None:
    return await tx.fetchval("SELECT private_pem FROM signing_keys ORDER BY created_at LIMIT 1")


async def insert_signing_key(tx: Tx, kid: str, pem: str) -> None:
    await tx.execute(
        "INSERT INTO signing_keys (kid, private_pem) VALUES (:kid, :pem) ON CONFLICT DO NOTHING",
        kid=kid,
        pem=pem,
    )


async def failures(tx: Tx, keys: list[str], since: datetime) -> dict[str, list[datetime]]:
    rows = await tx.fetch(
        "SELECT key, failed_at FROM login_failures WHERE key = ANY(:keys) AND failed_at > :since",
        keys=keys,
        since=since,
    )
    out: dict[str, list[datetime]] = {k: [] for k in keys}
    for row in rows:
        out[row.key].append(row.failed_at)
    return out


async def record_failure(tx: Tx, keys: list[str], at: datetime) -> None:
    await tx.execute(
        "INSERT INTO login_failures (key, failed_at) SELECT unnest(CAST(:keys AS text[])), :at",
        keys=keys,
        at=at,
    )


async def forget_failures(tx: Tx, key: str, before: datetime) -> None:
    """A successful sign-in clears its user's failures; old rows of any key go too."""
    await tx.execute(
        "DELETE FROM login_failures WHERE key = :key OR failed_at < :before", key=key, before=before
    )
