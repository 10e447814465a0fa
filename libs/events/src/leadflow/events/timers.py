"""Durable timers: SLA deadlines and nurture cadence that survive restarts and fire once.

A timer is a row keyed by a caller-chosen ``key`` (re-scheduling the same key moves it).
This module writes and reads the rows (``Timers``); ``timer_runner`` fires them. A batch
handler's timers are written by the kernel (``leadflow.events.batch``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from leadflow.events.sql import Tx

log = logging.getLogger("leadflow.timers")


@dataclass(frozen=True)
class Timer:
    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    lead_id: uuid.UUID | None = None


# A key scheduled twice in one call keeps its last row (ON CONFLICT cannot touch a row twice).
_SCHEDULE = """
    INSERT INTO timers (key, kind, lead_id, due_at, payload)
    SELECT DISTINCT ON (key) key, kind, lead_id, due_at, payload
    FROM unnest(CAST(:keys AS text[]), CAST(:kinds AS text[]),
                CAST(:lead_ids AS uuid[]), CAST(:due AS timestamptz[]),
                CAST(:payloads AS jsonb[]))
         WITH ORDINALITY AS t(key, kind, lead_id, due_at, payload, n)
    ORDER BY key, n DESC
    ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, lead_id = EXCLUDED.lead_id,
        due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, attempts = 0, last_error = NULL
"""
_CANCEL = "DELETE FROM timers WHERE key = ANY(CAST(:keys AS text[]))"
# The same rows, leaving a key that is already there as it is.
_ENSURE = _SCHEDULE.split("ON CONFLICT")[0] + "ON CONFLICT (key) DO NOTHING"


def _schedule_params(timers: Sequence[Timer]) -> dict[str, Any]:
    return {
        "keys": [t.key for t in timers],
        "kinds": [t.kind for t in timers],
        "lead_ids": [t.lead_id for t in timers],
        "due": [t.due_at for t in timers],
        "payloads": [orjson.dumps(t.payload).decode() for t in timers],
    }


class Timers:
    """Schedule and cancel timers inside the caller's transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        # The earliest due time scheduled through this unit of work: the runner is woken
        # after commit only when that is sooner than its next poll.
        self.soonest: datetime | None = None

    async def schedule(
        self,
        key: str,
        due_at: datetime,
        kind: str,
        payload: dict[str, Any] | None = None,
        lead_id: uuid.UUID | None = None,
    ) -> None:
        await self.schedule_many([Timer(key, kind, due_at, payload or {}, lead_id)])

    async def schedule_many(self, timers: Sequence[Timer]) -> None:
        """Upsert timers by key in one statement (re-scheduling a key moves it and resets
        its attempts). A batch handler collects its timers and schedules them here once."""
        if not timers:
            return
        self.note_scheduled(t.due_at for t in timers)
        await self.tx.execute(_SCHEDULE, **_schedule_params(timers))

    async def ensure_many(self, timers: Sequence[Timer]) -> int:
        """Schedule each key that is not there yet, in one statement; a key already there
        keeps its due time (a queue's timer waiting out a backoff is not pulled forward by
        the queue's next message). Returns how many were added."""
        if not timers:
            return 0
        self.note_scheduled(t.due_at for t in timers)
        return await self.tx.execute(_ENSURE, **_schedule_params(timers))

    def note_scheduled(self, due_times: Iterable[datetime]) -> None:
        """Record timers written in this transaction; a service that writes its timers
        with its own set-based SQL calls this, so a due one still wakes the runner."""
        soonest = min(due_times, default=None)
        if soonest is not None and (self.soonest is None or soonest < self.soonest):
            self.soonest = soonest

    async def cancel(self, key: str) -> bool:
        return await self.cancel_many([key]) == 1

    async def cancel_many(self, keys: Sequence[str]) -> int:
        """Delete timers by key in one statement; returns how many existed."""
        if not keys:
            return 0
        return await self.tx.execute(_CANCEL, keys=list(keys))

    async def cancel_prefix(self, prefix: str) -> int:
        return await self.tx.execute(
            "DELETE FROM timers WHERE key LIKE :p", p=prefix.replace("%", r"\%") + "%"
        )

    async def get(self, key: str) -> Timer | None:
        row = await self.tx.fetchrow(
            "SELECT key, kind, due_at, payload, lead_id FROM timers WHERE key = :key", key=key
        )
        return Timer(row.key, row.kind, row.due_at, row.payload, row.lead_id) if row else None
