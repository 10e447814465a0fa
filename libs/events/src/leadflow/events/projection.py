"""Projections: read models built from a log, checkpointed in the same transaction as their rows.

A ``Projection`` applies a batch of stored events to its tables; the runner reads the batch
after the projection's checkpoint, applies it and moves the checkpoint in ONE transaction,
so a crash can neither skip nor double-apply a batch. The checkpoint row is locked for the
batch (``FOR UPDATE``), which serialises replicas and a concurrent rebuild.

``rebuild(name)`` clears the projection, resets its checkpoint and replays the whole log in
large batches, reporting progress; the live loop then simply continues from where it ends.

Several projections can share ONE pass over the log: ``step_many``/``rebuild_many`` read
(and decode) each batch once and apply it to all of them in one transaction. Projections
that also share per-lead state point at a ``ProjectionGroup`` with a ``group`` attribute;
the runner then always moves the members together (same checkpoint), hands each batch to
the group once, and rebuilding any member rebuilds the whole group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from leadflow.events import metrics
from leadflow.events.sql import Database, Tx
from leadflow.events.store import StoredEvent
from leadflow.events.waiting import wait_event

log = logging.getLogger("leadflow.projection")

EventSource = Callable[[Tx, int, int], Awaitable[Sequence[StoredEvent]]]
HeadPosition = Callable[[Tx], Awaitable[int]]


class Projection(Protocol):
    name: str

    async def apply(self, conn: Tx, events: Sequence[StoredEvent]) -> None: ...

    async def clear(self, conn: Tx) -> None: ...


class ProjectionGroup(Protocol):
    """Projections cheaper to apply together: one fold of each event feeds all members."""

    name: str

    async def apply(
        self, conn: Tx, members: Sequence[Projection], events: Sequence[StoredEvent]
    ) -> None: ...

    async def clear(self, conn: Tx) -> None: ...


def group_of(projection: Projection) -> ProjectionGroup | None:
    """The group a projection belongs to (its optional ``group`` attribute)."""
    return getattr(projection, "group", None)


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


# A step's checkpoint statements: one of each per step, and the live loop steps after every
# batch its service logs.
_LOCK_CHECKPOINTS = (
    "SELECT name, position FROM projection_checkpoints "
    "WHERE name = ANY(CAST(:ns AS text[])) ORDER BY name FOR UPDATE"
)
_MOVE_CHECKPOINT = (
    "UPDATE projection_checkpoints SET position = :p, updated_at = now() WHERE name = :n"
)
_MOVE_CHECKPOINTS = (
    "UPDATE projection_checkpoints SET position = :p, updated_at = now() "
    "WHERE name = ANY(CAST(:ns AS text[])) AND position < :p"
)

_INSERT_CHECKPOINTS = (
    "INSERT INTO projection_checkpoints (name) "
    "SELECT unnest(CAST(:ns AS text[])) ON CONFLICT DO NOTHING"
)


async def _lock_checkpoints(tx: Tx, names: Sequence[str]) -> dict[str, int]:
    """Lock the checkpoints of ``names`` (in name order) and return their positions.

    One statement once the rows exist (every step after the first); a missing row is
    inserted first, then all are locked again."""
    ordered = sorted(names)
    rows = await tx.fetch(_LOCK_CHECKPOINTS, ns=ordered)
    if len(rows) < len(ordered):
        await tx.execute(_INSERT_CHECKPOINTS, ns=ordered)
        rows = await tx.fetch(_LOCK_CHECKPOINTS, ns=ordered)
    return {str(n): int(p or 0) for n, p in rows}


class ProjectionRunner:
    def __init__(
        self,
        db: Database,
        projections: Sequence[Projection],
        source: EventSource,
        head: HeadPosition,
        *,
        service: str,
        batch: int = 2000,
        rebuild_batch: int = 20000,
        poll_seconds: float = 0.2,
    ) -> None:
        self.db = db
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
        # name -> every member of its group (grouped projections always move together)
        self._members: dict[str, list[str]] = {}
        groups: dict[int, list[str]] = {}
        for p in projections:
            g = group_of(p)
            if g is not None:
                groups.setdefault(id(g), []).append(p.name)
        for members in groups.values():
            for n in members:
                self._members[n] = members

    def _units(self) -> list[list[str]]:
        """What the live loop steps: each group as one unit, every other projection alone."""
        units: list[list[str]] = []
        for name in self.projections:
            members = self._members.get(name)
            if members is None:
                units.append([name])
            elif members[0] == name:
                units.append(members)
        return units

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            # Cleared before stepping, not after: a wake() while a step runs (a batch
            # committed after the step's read) must end the wait below at once, not be lost
            # and leave the batch to the next poll.
            self._wake.clear()
            full = False
            try:
                for unit in self._units():
                    full |= await self.step(unit[0], self.batch) >= self.batch
            except Exception:
                log.exception("projection step failed")
            if full:
                continue  # more may be waiting right behind a full batch
            await wait_event(self._wake, self.poll_seconds)

    async def step(self, name: str, limit: int) -> int:
        """Apply the next batch to one projection; returns how many events it applied.

        A grouped projection is stepped together with the rest of its group."""
        if name in self._members:
            return await self.step_many(self._members[name], limit)
        projection = self.projections[name]
        async with self.db.transaction() as conn:
            positions = await _lock_checkpoints(conn, [name])
            events = await self.source(conn, positions[name], limit)
            if not events:
                return 0
            await projection.apply(conn, events)
            await conn.execute(_MOVE_CHECKPOINT, p=events[-1].position, n=name)
        metrics.PROJECTION_POSITION.labels(self.service, name).set(events[-1].position)
        return len(events)

    async def step_many(self, names: Sequence[str], limit: int) -> int:
        """Read the next batch ONCE and apply it to every projection in ``names`` (plus the
        rest of their groups), moving all their checkpoints in the same transaction.

        Each projection only gets the events after its own checkpoint; a group whose
        members are out of step (moved one by one by an older runner) starts over from the
        beginning of the log. Returns how many events were read.
        """
        wanted = set(names)
        for n in names:
            wanted.update(self._members.get(n, ()))
        ordered = sorted(wanted)  # one lock order for every caller: no deadlocks
        async with self.db.transaction() as conn:
            positions = await _lock_checkpoints(conn, ordered)
            groups: dict[int, tuple[ProjectionGroup, list[str]]] = {}
            singles: list[str] = []
            for n in ordered:
                g = group_of(self.projections[n])
                if g is None:
                    singles.append(n)
                else:
                    groups.setdefault(id(g), (g, []))[1].append(n)
            for g, members in groups.values():
                if len({positions[m] for m in members}) > 1:
                    log.warning("projection group %s out of step; replaying it", g.name)
                    await self._reset(conn, members, g)
                    for m in members:
                        positions[m] = 0
            low = min(positions.values())
            events = await self.source(conn, low, limit)
            if not events:
                return 0
            last = events[-1].position

            def after(position: int) -> Sequence[StoredEvent]:
                if position == low:
                    return events
                return [e for e in events if e.position > position]

            for g, members in groups.values():
                mine = after(positions[members[0]])
                if mine:
                    await g.apply(conn, [self.projections[m] for m in members], mine)
            for n in singles:
                mine = after(positions[n])
                if mine:
                    await self.projections[n].apply(conn, mine)
            await conn.execute(_MOVE_CHECKPOINTS, p=last, ns=ordered)
        for n in ordered:
            metrics.PROJECTION_POSITION.labels(self.service, n).set(last)
        return len(events)

    async def _reset(
        self, conn: Tx, names: Sequence[str], group: ProjectionGroup | None = None
    ) -> None:
        """Clear ``names`` (and their group's shared state) and move them back to 0."""
        await conn.execute(
            "UPDATE projection_checkpoints SET position = 0, updated_at = now() "
            "WHERE name = ANY(CAST(:ns AS text[]))",
            ns=list(names),
        )
        if group is not None:
            await group.clear(conn)
        for n in names:
            await self.projections[n].clear(conn)

    async def rebuild_many(self, names: Sequence[str]) -> dict[str, RebuildProgress]:
        """Clear ``names`` (with the rest of their groups) and replay the log ONCE for all
        of them; progress is kept per name in ``self.progress``."""
        wanted = set(names)
        for n in names:
            if n not in self.projections:
                raise KeyError(n)
            wanted.update(self._members.get(n, ()))
        ordered = sorted(wanted)
        started = time.time()
        progress = {n: RebuildProgress(n, "running", started_at=started) for n in ordered}
        self.progress.update(progress)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(_INSERT_CHECKPOINTS, ns=ordered)
                await conn.fetch(_LOCK_CHECKPOINTS, ns=ordered)
                cleared: set[int] = set()
                await self._reset(conn, ordered)
                for n in ordered:
                    g = group_of(self.projections[n])
                    if g is not None and id(g) not in cleared:
                        cleared.add(id(g))
                        await g.clear(conn)
                total = await self.head(conn)
            for p in progress.values():
                p.total = total
            while applied := await self.step_many(ordered, self.rebuild_batch):
                elapsed = max(time.time() - started, 1e-9)
                for p in progress.values():
                    p.processed += applied
                    p.events_per_second = p.processed / elapsed
            for p in progress.values():
                p.state = "done"
        except Exception as exc:
            for p in progress.values():
                p.state, p.error = "failed", repr(exc)
            raise
        finally:
            for p in progress.values():
                p.finished_at = time.time()
        return progress

    async def catch_up(self, name: str | None = None) -> int:
        """Apply everything available now (tests, CLI)."""
        total = 0
        for projection_name in [name] if name else list(self.projections):
            while applied := await self.step(projection_name, self.rebuild_batch):
                total += applied
        return total

    async def checkpoint(self, name: str) -> int:
        async with self.db.connect() as conn:
            value = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = :n", n=name
            )
        return int(value or 0)

    async def rebuild(self, name: str) -> RebuildProgress:
        """Clear and replay ``name`` from the start of the log; progress in ``self.progress``."""
        if name not in self.projections:
            raise KeyError(name)
        if name in self._members:
            return (await self.rebuild_many([name]))[name]
        progress = self.progress[name] = RebuildProgress(name, "running", started_at=time.time())
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO projection_checkpoints (name) VALUES (:n) "
                    "ON CONFLICT (name) DO UPDATE SET position = 0, updated_at = now()",
                    n=name,
                )
                await conn.fetchval(
                    "SELECT position FROM projection_checkpoints WHERE name = :n FOR UPDATE",
                    n=name,
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
