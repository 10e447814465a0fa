"""The analytics rebuild: replay the whole log into the six projections in large chunks.

The kernel's ``rebuild_many`` applies the group batch by batch, and every batch reads and
rewrites the per-lead fold state of its leads and merges its counts into the rollups. A full
replay does not need that round trip: this path keeps the lead states in memory between
batches and writes each chunk (``chunk_events``, default 500k) in one transaction: the fold
states and current stage of the leads the chunk touched, every member's counts (one COPY
and one set-based merge per table) and the checkpoints. The result is the same rows the
live loop writes (``FoldBatch`` is shared with ``LeadFold.apply``; a test compares both).

Concurrency is the kernel's: each chunk locks the group's checkpoint rows ``FOR UPDATE``,
so the live loop waits for it; a crash leaves the projections consistent at the last
chunk's checkpoint, and the live loop (or a new rebuild) continues from there. If the live
loop did move the checkpoints between two chunks, the in-memory states are stale: they are
dropped and read back from ``analytics_fold``. Leads not touched by the last chunk are
evicted from memory (their state is stored), so memory stays bounded on a long log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.analytics.domain import LeadState
from leadflow.analytics.projections import (
    FoldBatch,
    LeadFold,
    LeadProjection,
    load_states,
    log_head,
    raw_connection,
    read_batch,
    write_records,
)
from leadflow.events.projection import RebuildProgress

CHUNK_EVENTS = 500_000
READ_BATCH = 50_000
FLUSH_EVENTS = 100_000
FOLD_SLICE = 5_000


class Stored:
    """Leads whose state is only in ``analytics_fold`` (evicted), or all of them (stale)."""

    __slots__ = ("everything", "leads")

    def __init__(self) -> None:
        self.everything = False
        self.leads: set[str] = set()


class Touched:
    """What a chunk covered: the leads it folded and the last log position it read."""

    __slots__ = ("leads", "position")

    def __init__(self, position: int) -> None:
        self.leads: set[str] = set()
        self.position = position


async def _chunk(
    apg: Any,
    reader: Any,
    members: Sequence[LeadProjection],
    states: dict[str, LeadState],
    stored: Stored,
    position: int,
    chunk_events: int,
    read_events: int,
    flush_events: int,
) -> tuple[int, Touched]:
    """Fold up to ``chunk_events`` after ``position`` and write them through ``apg`` (the
    chunk's transaction): the next batch is fetched on ``reader`` while this one is folded,
    insert-only rows are written every ``flush_events`` meanwhile, the rest at the end."""
    touched = Touched(position)
    batch = FoldBatch(members)
    touched.leads = batch.touched
    read = 0
    fetch = asyncio.ensure_future(read_batch(reader, position, min(read_events, chunk_events)))
    writing: asyncio.Task[None] | None = None
    try:
        unflushed = 0
        while True:
            facts = await fetch
            if facts:
                read += len(facts)
                touched.position = facts[-1].position
                left = chunk_events - read
                if left > 0:
                    fetch = asyncio.ensure_future(
                        read_batch(reader, touched.position, min(read_events, left))
                    )
                    await asyncio.sleep(0)  # send the query before folding
                if stored.everything or stored.leads:
                    missing = list(
                        {
                            f.lead_id
                            for f in facts
                            if f.lead_id not in states
                            and (stored.everything or f.lead_id in stored.leads)
                        }
                    )
                    if missing:
                        # (through the transaction's connection, once it is free)
                        if writing is not None:
                            await writing
                            writing = None
                        states.update(await load_states(apg, missing))
                        stored.leads.difference_update(missing)
                # Fold in slices, letting the loop run in between: the fetch and the
                # flush in flight move on to their next statement meanwhile.
                for i in range(0, len(facts), FOLD_SLICE):
                    batch.fold(facts[i : i + FOLD_SLICE], states)
                    await asyncio.sleep(0)
                unflushed += len(facts)
            last = not facts or read >= chunk_events
            if last or unflushed >= flush_events:
                # Insert-only rows as they come (written while the next batch is folded);
                # counts and the per-lead rows once, at the end of the chunk: they merge
                # into fewer rows the longer they collect.
                records = batch.records(states) if last else batch.drain()
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(write_records(apg, records))
                unflushed = 0
            if last:
                break
        if writing is not None:
            await writing
            writing = None
    finally:
        for task in (fetch, writing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    return read, touched


_gc_holds = 0
_gc_was_enabled = True


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while replaying: the fold allocates millions of small
    objects and keeps the leads' states alive, so collections would keep re-scanning a
    growing heap (about a quarter of the replay's CPU) without finding garbage. Reference
    counting still frees everything; the collector resumes (if it ran before the first)
    when the last of overlapping replays ends."""
    global _gc_holds, _gc_was_enabled
    if _gc_holds == 0:
        _gc_was_enabled = gc.isenabled()
    _gc_holds += 1
    gc.disable()
    try:
        yield
    finally:
        _gc_holds -= 1
        if _gc_holds == 0 and _gc_was_enabled:
            gc.enable()


class OutOfStep(RuntimeError):
    """The group's checkpoints differ: only the kernel runner may repair that (replay)."""


async def _lock(conn: AsyncConnection, names: Sequence[str]) -> int:
    """Lock the group's checkpoints (one order for every caller) and return their position.

    Through SQLAlchemy, not the raw connection: its first statement is what actually opens
    the transaction ``conn.begin()`` stands for (the raw statements after it then run in
    it, the stages' ON COMMIT DELETE ROWS included)."""
    await conn.execute(
        text(
            "INSERT INTO projection_checkpoints (name) "
            "SELECT unnest(CAST(:ns AS text[])) ON CONFLICT DO NOTHING"
        ),
        {"ns": list(names)},
    )
    rows = await conn.execute(
        text(
            "SELECT name, position FROM projection_checkpoints "
            "WHERE name = ANY(CAST(:ns AS text[])) ORDER BY name FOR UPDATE"
        ),
        {"ns": list(names)},
    )
    positions = {int(r[1] or 0) for r in rows}
    if len(positions) != 1:
        raise OutOfStep(f"checkpoints of {sorted(names)} differ: {sorted(positions)}")
    return positions.pop()


async def rebuild_group(
    engine: AsyncEngine,
    members: Sequence[LeadProjection],
    *,
    chunk_events: int = CHUNK_EVENTS,
    read_events: int = READ_BATCH,
    flush_events: int = FLUSH_EVENTS,
    progress: Mapping[str, RebuildProgress] | None = None,
) -> RebuildProgress:
    """Clear every member (and the shared fold) and replay the log into them.

    ``members`` must be the whole group; ``progress`` (e.g. the runner's) is updated in
    place per chunk so ``/v1/projections`` shows it. Returns the group's progress."""
    return await _replay(engine, members, True, chunk_events, read_events, flush_events, progress)


async def catch_up_group(
    engine: AsyncEngine,
    members: Sequence[LeadProjection],
    *,
    chunk_events: int = CHUNK_EVENTS,
    read_events: int = READ_BATCH,
    flush_events: int = FLUSH_EVENTS,
    progress: Mapping[str, RebuildProgress] | None = None,
) -> RebuildProgress:
    """Apply everything after the group's checkpoint the same way (a large backlog, e.g.
    after an outage or an import): the leads' states are read from ``analytics_fold``."""
    return await _replay(engine, members, False, chunk_events, read_events, flush_events, progress)


async def _replay(
    engine: AsyncEngine,
    members: Sequence[LeadProjection],
    from_start: bool,
    chunk_events: int,
    read_events: int,
    flush_events: int,
    progress: Mapping[str, RebuildProgress] | None,
) -> RebuildProgress:
    group = members[0].group
    if any(m.group is not group for m in members):
        raise ValueError("rebuild_group needs the members of one LeadFold group")
    names = sorted(m.name for m in members)
    started = time.time()
    mine = RebuildProgress("analytics", "running", started_at=started)
    tracked = [mine, *(progress[n] for n in names if progress is not None and n in progress)]
    for p in tracked[1:]:
        p.state, p.processed, p.total, p.error = "running", 0, 0, None
        p.started_at, p.finished_at, p.events_per_second = started, 0.0, 0.0
    try:
        with _no_cycle_collection():
            await _run(
                engine,
                members,
                names,
                from_start,
                chunk_events,
                read_events,
                flush_events,
                tracked,
                started,
            )
        for p in tracked:
            p.state = "done"
    except Exception as exc:
        for p in tracked:
            p.state, p.error = "failed", repr(exc)
        raise
    finally:
        for p in tracked:
            p.finished_at = time.time()
    return mine


async def _run(
    engine: AsyncEngine,
    members: Sequence[LeadProjection],
    names: list[str],
    from_start: bool,
    chunk_events: int,
    read_events: int,
    flush_events: int,
    tracked: list[RebuildProgress],
    started: float,
) -> None:
    group = members[0].group
    async with engine.connect() as conn, conn.begin():
        expected = await _lock(conn, names)
        if from_start:
            apg = await raw_connection(conn)
            await apg.execute(
                "UPDATE projection_checkpoints SET position = 0, updated_at = now() "
                "WHERE name = ANY($1::text[])",
                names,
            )
            await _clear(conn, group, members)
            expected = 0
        total = await log_head(conn) - expected
    for p in tracked:
        p.total = total
    states: dict[str, LeadState] = {}
    stored = Stored()
    stored.everything = not from_start  # the states so far are in analytics_fold
    # Reads go through a second connection (the log is append-only and each read sees
    # what is committed, as it would in the chunk's transaction) so that the next batch
    # is fetched, and the last flush merged, while Python folds the current batch.
    async with engine.connect() as reader_conn:
        reader = await raw_connection(reader_conn)
        while True:
            async with engine.connect() as conn, conn.begin():
                position = await _lock(conn, names)
                apg = await raw_connection(conn)
                if position != expected:
                    # The live loop applied batches in between: our states are stale.
                    states.clear()
                    stored.everything = True
                read, touched = await _chunk(
                    apg,
                    reader,
                    members,
                    states,
                    stored,
                    position,
                    chunk_events,
                    read_events,
                    flush_events,
                )
                if not read:
                    break
                position = touched.position
                await apg.execute(
                    "UPDATE projection_checkpoints SET position = $1, updated_at = now() "
                    "WHERE name = ANY($2::text[])",
                    position,
                    names,
                )
            expected = position
            # Keep only the leads this chunk touched; the rest are stored and read back
            # if they ever reappear.
            if len(states) > len(touched.leads):
                stored.leads.update(lid for lid in states if lid not in touched.leads)
                states = {lid: states[lid] for lid in touched.leads}
            elapsed = max(time.time() - started, 1e-9)
            for p in tracked:
                p.processed += read
                p.events_per_second = p.processed / elapsed


async def _clear(conn: Any, group: LeadFold, members: Sequence[LeadProjection]) -> None:
    await group.clear(conn)
    for m in members:
        await m.clear(conn)
