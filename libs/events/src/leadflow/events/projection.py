"""Projections: read models built from a log, checkpointed in the same transaction as their rows.

A ``Projection`` applies a batch of stored events to its tables; the runner reads the batch
after the projection's checkpoint, applies it and moves the checkpoint in ONE transaction,
so a crash can neither skip nor double-apply a batch. The checkpoint row is locked for the
batch (``FOR UPDATE``), which serialises replicas and a concurrent rebuild.

``rebuild(name)`` clears the projection, resets its checkpoint and replays the whole log in
large batches, reporting progress; the live loop then simply continues from where it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.events import metrics
from leadflow.events.store import StoredEvent

log = logging.getLogger("leadflow.projection")

EventSource = Callable[[AsyncConnection, int, int], Awaitable[Sequence[StoredEvent]]]
HeadPosition = Callable[[AsyncConnection], Awaitable[int]]


class Projection(Protocol):
    name: str

    async def apply(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None: ...

    async def clear(self, conn: AsyncConnection) -> None: ...


@dataclass
class RebuildProgress:
    name: str
    state: str = "idle"  # idle | running | done | failed
    processed: int = 0
    total: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str | None = None
    events_per_second: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class ProjectionRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        projections: Sequence[Projection],
        source: EventSource,
        head: HeadPosition,
        *,
        service: str,
        batch: int = 2000,
        rebuild_batch: int = 20000,
        poll_seconds: float = 0.2,
    ) -> None:
        self.engine = engine
        self.projections = {p.name: p for p in projections}
        self.source = source
        self.head = head
        self.service = service
        self.batch = batch
        self.rebuild_batch = rebuild_batch
        self.poll_seconds = poll_seconds
        self.progress: dict[str, RebuildProgress] = {
            n: RebuildProgress(n) for n in self.projections
        }
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            applied = 0
            try:
                for name in self.projections:
                    applied += await self.step(name, self.batch)
            except Exception:
                log.exception("projection step failed")
            if applied:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    async def step(self, name: str, limit: int) -> int:
        """Apply the next batch to one projection; returns how many events it applied."""
        projection = self.projections[name]
        async with self.engine.connect() as conn, conn.begin():
            await conn.execute(
                text(
                    "INSERT INTO projection_checkpoints (name) VALUES (:n) ON CONFLICT DO NOTHING"
                ),
                {"n": name},
            )
            position = await conn.scalar(
                text("SELECT position FROM projection_checkpoints WHERE name = :n FOR UPDATE"),
                {"n": name},
            )
            events = await self.source(conn, int(position or 0), limit)
            if not events:
                return 0
            await projection.apply(conn, events)
            await conn.execute(
                text(
                    "UPDATE projection_checkpoints SET position = :p, updated_at = now() "
                    "WHERE name = :n"
                ),
                {"p": events[-1].position, "n": name},
            )
        metrics.PROJECTION_POSITION.labels(self.service, name).set(events[-1].position)
        return len(events)

    async def catch_up(self, name: str | None = None) -> int:
        """Apply everything available now (tests, CLI)."""
        total = 0
        for projection_name in [name] if name else list(self.projections):
            while applied := await self.step(projection_name, self.rebuild_batch):
                total += applied
        return total

    async def checkpoint(self, name: str) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                text("SELECT position FROM projection_checkpoints WHERE name = :n"), {"n": name}
            )
        return int(value or 0)

    async def rebuild(self, name: str) -> RebuildProgress:
        """Clear and replay ``name`` from the start of the log; progress in ``self.progress``."""
        if name not in self.projections:
            raise KeyError(name)
        progress = self.progress[name] = RebuildProgress(name, "running", started_at=time.time())
        try:
            async with self.engine.connect() as conn, conn.begin():
                await conn.execute(
                    text(
                        "INSERT INTO projection_checkpoints (name) VALUES (:n) "
                        "ON CONFLICT (name) DO UPDATE SET position = 0, updated_at = now()"
                    ),
                    {"n": name},
                )
                await conn.scalar(
                    text("SELECT position FROM projection_checkpoints WHERE name = :n FOR UPDATE"),
                    {"n": name},
                )
                await self.projections[name].clear(conn)
                progress.total = await self.head(conn)
            while applied := await self.step(name, self.rebuild_batch):
                progress.processed += applied
                elapsed = max(time.time() - progress.started_at, 1e-9)
                progress.events_per_second = progress.processed / elapsed
            progress.state = "done"
        except Exception as exc:
            progress.state, progress.error = "failed", repr(exc)
            raise
        finally:
            progress.finished_at = time.time()
        return progress
