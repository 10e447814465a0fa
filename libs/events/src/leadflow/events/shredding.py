"""Crypto-shredding: the personal fields (``EventPayload.personal_fields``) of every event a
service stores are sealed with a per-lead AES-256-GCM key kept in its ``lead_keys`` table.
Erasing a lead deletes its key (``shred``), which makes those fields unreadable everywhere in
the append-only log while the events themselves (and every count built on them) stay.

A service opts in with ``ServiceKit(payload_codec=LeadKeyCodec())`` and ``LEAD_KEYS_DDL`` in
a migration (intake for contacts and notes, routing for reps' notes); see docs/erasure.md.
"""

from __future__ import annotations

import base64
import contextvars
import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leadflow.events.envelope import Envelope
from leadflow.events.sql import Tx

SEALED = "_sealed"
LEAD_KEYS_DDL = """
    CREATE TABLE lead_keys (
        lead_id uuid PRIMARY KEY,
        key bytea,
        erased_at timestamptz
    )
"""
# Keys fetched or created in the current transaction (set by the command that writes).
_TX_KEYS: contextvars.ContextVar[Mapping[uuid.UUID, bytes | None] | None] = contextvars.ContextVar(
    "intake_tx_keys", default=None
)


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def use_keys(keys: Mapping[uuid.UUID, bytes | None]) -> contextvars.Token[Any]:
    """Make this transaction's lead keys available to ``encode`` without more queries."""
    return _TX_KEYS.set(keys)


def reset_keys(token: contextvars.Token[Any]) -> None:
    _TX_KEYS.reset(token)


def _erased_value(field: str, value: Any, placeholders: Mapping[str, Any]) -> Any:
    """What stands in a stored event for a sealed or erased field: the payload's own
    placeholder for a required text field (a stored event must still validate), else an
    empty object or null."""
    if field in placeholders:
        return placeholders[field]
    return {} if isinstance(value, dict) else None


def seal(
    key: bytes,
    event_id: uuid.UUID,
    data: dict[str, Any],
    fields: frozenset[str],
    placeholders: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Replace ``fields`` by erased placeholders and add their sealed JSON under ``_sealed``.

    The event id is the associated data, so a sealed blob cannot be moved to another event.
    """
    personal = {f: data[f] for f in fields if f in data}
    if not personal:
        return data
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(personal), event_id.bytes)
    stand_in = placeholders or {}
    out = {k: (_erased_value(k, v, stand_in) if k in personal else v) for k, v in data.items()}
    out[SEALED] = {"v": 1, "id": str(event_id), "ct": base64.b64encode(nonce + sealed).decode()}
    return out


def unseal(key: bytes | None, data: dict[str, Any]) -> dict[str, Any]:
    """Restore sealed fields with ``key``; without a key (erased) the placeholders stay."""
    blob = data.get(SEALED)
    out = {k: v for k, v in data.items() if k != SEALED}
    if key is None or not isinstance(blob, dict):
        return out
    raw = base64.b64decode(blob["ct"])
    try:
        personal = orjson.loads(
            AESGCM(key).decrypt(raw[:12], raw[12:], uuid.UUID(blob["id"]).bytes)
        )
    except InvalidTag:
        return out
    out.update(personal)
    return out


def strip(
    data: dict[str, Any], fields: frozenset[str], placeholders: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    stand_in = placeholders or {}
    return {
        k: (_erased_value(k, v, stand_in) if k in fields else v)
        for k, v in data.items()
        if k != SEALED
    }


async def ensure_keys(tx: Tx, lead_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
    """Keys of these leads, creating missing ones (one round trip for the whole batch).

    An erased lead keeps a tombstone row with no key, so nothing new can be sealed for it.
    """
    if not lead_ids:
        return {}
    ids = list(dict.fromkeys(lead_ids))
    rows = await tx.fetch(
        """
            WITH wanted AS (
                SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS bytea[]))
                    AS w(lead_id, key)
            ), inserted AS (
                INSERT INTO lead_keys (lead_id, key)
                SELECT lead_id, key FROM wanted
                ON CONFLICT (lead_id) DO NOTHING
                RETURNING lead_id, key
            )
            SELECT lead_id, key FROM inserted
            UNION ALL
            SELECT k.lead_id, k.key FROM lead_keys k JOIN wanted w USING (lead_id)
            """,
        ids=ids,
        keys=[new_key() for _ in ids],
    )
    keys: dict[uuid.UUID, bytes | None] = {}
    for lead_id, key in rows:
        keys.setdefault(lead_id, bytes(key) if key is not None else None)
    return keys


async def shred(tx: Tx, lead_ids: list[uuid.UUID], now: datetime) -> None:
    """Forget these leads' keys for good: a tombstone row with no key, so nothing personal
    is sealed (or readable) for them again."""
    await tx.execute(
        "INSERT INTO lead_keys (lead_id, key, erased_at) "
        "SELECT id, NULL, CAST(:now AS timestamptz) FROM unnest(CAST(:ids AS uuid[])) AS id "
        "ON CONFLICT (lead_id) DO UPDATE SET key = NULL, erased_at = :now",
        ids=list(lead_ids),
        now=now,
    )


def _has_personal(data: Mapping[str, Any], fields: frozenset[str]) -> bool:
    return any(data.get(f) not in (None, "", {}, []) for f in fields)


class LeadKeyCodec:
    """The kernel's ``PayloadCodec`` for a service's event log: personal fields sealed."""

    async def encode(self, tx: Tx, envelope: Envelope, data: dict[str, Any]) -> dict[str, Any]:
        fields = frozenset(envelope.payload.personal_fields)
        if not fields or not _has_personal(data, fields):
            return data  # nothing to seal: no key needed (most of routing's events)
        keys = _TX_KEYS.get()
        if keys is not None and envelope.lead_id in keys:
            key = keys[envelope.lead_id]
        else:
            key = (await ensure_keys(tx, [envelope.lead_id]))[envelope.lead_id]
        placeholders = envelope.payload.erased_placeholders
        if key is None:  # erased: nothing personal is stored any more
            return strip(data, fields, placeholders)
        return seal(key, envelope.event_id, data, fields, placeholders)

    async def decode(
        self, tx: Tx, lead_id: uuid.UUID, event_type: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        if SEALED not in data:
            return data
        # Always asked of the database: a key cached here could outlive an erasure.
        key = await tx.fetchval("SELECT key FROM lead_keys WHERE lead_id = :id", id=lead_id)
        return unseal(bytes(key) if key is not None else None, data)
