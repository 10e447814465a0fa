"""The analytics rebuild: replay the whole log into the six projections in large chunks.

The kernel's ``rebuild_many`` applies the group batch by batch, and every batch reads and
rewrites the per-lead fold state of its leads and merges its counts into the rollups. A full
replay does not need that round trip: this path keeps the lead states in memory between
batches and writes each chunk (``chunk_events``, default 250k) in one transaction: the fold
states and current stage of the leads the chunk touched, every member's counts (one COPY
and one set-based merge per table) and the checkpoints. The result is the same rows the
live loop writes (``FoldBatch`` is shared with ``LeadFold.apply``; a test compares both).

It is a pipeline of two stages: chunk k+1 is read and folded in memory (no writes) while
chunk k is written and committed on its own connection, so Postgres merges one chunk while
Python folds the next. Chunk writes use ``StagingTable.merge_locked`` (UPDATE the rows already
there, plain INSERT of the new ones, about half the cost of ``ON CONFLICT``): they hold the
group's checkpoint locks, so nobody else writes the tables meanwhile.

Concurrency is the kernel's: each chunk's transaction locks the group's checkpoint rows
``FOR UPDATE``, so the live loop waits for it; a crash leaves the projections consistent at
the last chunk's checkpoint, and the live loop (or a new rebuild) continues from there. A
chunk is folded from where the previous one ended; if its transaction finds the
checkpoints elsewhere (the live loop applied batches between two chunks), the chunk and the
in-memory states are stale: they are dropped and the replay goes on from the live
checkpoint with the states read back from ``analytics_fold``. Leads not touched by the last
chunk are evicted from memory (their state is stored), so memory stays bounded on a long log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from leadflow.analytics.domain import LeadJourney
from leadflow.analytics.fold_group import (
    FoldBatch,
    LeadFold,
    LeadProjection,
    LoggedEvent,
    load_states,
    log_head,
    read_batch,
)
from leadflow.analytics.staging import Records, write_records
from leadflow.events.projection import RebuildProgress
from leadflow.events.sql import Tx

CHUNK_EVENTS = 250_000
READ_BATCH = 50_000
FOLD_SLICE = 5_000
MERGE_WORK_MEM = "64MB"


class Connections(Protocol):
    """Where a replay gets its connections: the service kit (``kit.connect()``,
    ``kit.transaction()``) or a pool of a bench's or a test's own."""

    def connect(self) -> AbstractAsyncContextManager[Tx]:
        """A connection in autocommit (the replay's reader)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A connection in a transaction, committed when the block ends."""
        ...


class Stored:
    """Leads whose state is only in ``analytics_fold`` (evicted), or all of them (stale)."""

    __slots__ = ("everything", "leads")

    def __init__(self) -> None:
        self.everything = False
        self.leads: set[str] = set()


class _Stale(Exception):
    """The live loop moved the checkpoints since the chunk was folded: it is discarded."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class Folded:
    """A chunk folded in memory and not written yet: its rows (a snapshot), the log
    positions it covers and the leads it touched."""

    __slots__ = ("end", "leads", "read", "records", "start")

    def __init__(self, start: int) -> None:
        self.start = self.end = start
        self.read = 0
        self.leads: set[str] = set()
        self.records: Records = []


async def _fold_chunk(
    reader: Tx,
    members: Sequence[LeadProjection],
    states: dict[str, LeadJourney],
    stored: Stored,
    position: int,
    chunk_events: int,
    read_events: int,
) -> Folded:
    """Fold up to ``chunk_events`` after ``position`` into ``states`` (no writes): the next
    batch is fetched on ``reader`` while this one is folded; leads whose state is only
    stored are read back through ``reader`` first. The rows are taken at the end."""
    chunk = Folded(position)
    batch = FoldBatch(members)
    chunk.leads = batch.touched
    fetch: asyncio.Future[list[LoggedEvent]] | None = None
    try:
        fetch = asyncio.ensure_future(read_batch(reader, position, min(read_events, chunk_events)))
        while True:
            facts = await fetch
            fetch = None
            if not facts:
                break
            chunk.read += len(facts)
            chunk.end = facts[-1].position
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
                    states.update(await load_states(reader, missing))
                    stored.leads.difference_update(missing)
            left = chunk_events - chunk.read
            if left > 0:
                fetch = asyncio.ensure_future(read_batch(reader, chunk.end, min(read_events, left)))
                await asyncio.sleep(0)  # send the query before folding
            # Fold in slices, letting the loop run in between: the fetch and the previous
            # chunk's write in flight move on to their next statement meanwhile.
            for i in range(0, len(facts), FOLD_SLICE):
                batch.fold(facts[i : i + FOLD_SLICE], states)
                await asyncio.sleep(0)
            if fetch is None:
                break
        chunk.records = batch.records(states)
    finally:
        if fetch is not None and not fetch.done():
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
    return chunk


async def _write_chunk(db: Connections, names: Sequence[str], chunk: Folded) -> None:
    """One transaction: lock the checkpoints, check they are where the chunk was folded
    from (else ``_Stale``), write its rows and move the checkpoints to its end."""
    async with db.transaction() as tx:
        position = await _lock(tx, names)
        if position != chunk.start:
            raise _Stale(position)
        # The chunk's roll-ups aggregate a few hundred thousand staged rows: with the
        # default work_mem their hash aggregates and sorts spill to disk.
        await tx.execute(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'")
        # Nobody else writes the group's tables while we hold its checkpoint locks.
        await write_records(tx, chunk.records, locked=True)
        await tx.execute(
            "UPDATE projection_checkpoints SET position = :end, updated_at = now() "
            "WHERE name = ANY(CAST(:names AS text[]))",
            end=chunk.end,
            names=list(names),
        )


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


async def _lock(tx: Tx, names: Sequence[str]) -> int:
    """Lock the group's checkpoints (one order for every caller) and return their position."""
    await tx.execute(
        "INSERT INTO projection_checkpoints (name) "
        "SELECT unnest(CAST(:ns AS text[])) ON CONFLICT DO NOTHING",
        ns=list(names),
    )
    rows = await tx.fetch(
        "SELECT name, position FROM projection_checkpoints "
        "WHERE name = ANY(CAST(:ns AS text[])) ORDER BY name FOR UPDATE",
        ns=list(names),
    )
    positions = {int(r[1] or 0) for r in rows}
    if len(positions) != 1:
        raise OutOfStep(f"checkpoints of {sorted(names)} differ: {sorted(positions)}")
    return positions.pop()


async def rebuild_group(
    db: Connections,
    members: Sequence[LeadProjection],
    *,
    chunk_events: int = CHUNK_EVENTS,
    read_events: int = READ_BATCH,
    progress: Mapping[str, RebuildProgress] | None = None,
) -> RebuildProgress:
    """Clear every member (and the shared fold) and replay the log into them.

    ``members`` must be the whole group; ``progress`` (e.g. the runner's) is updated in
    place per chunk so ``/v1/projections`` shows it. Returns the group's progress."""
    return await _replay(db, members, True, chunk_events, read_events, progress)


async def catch_up_group(
    db: Connections,
    members: Sequence[LeadProjection],
    *,
    chunk_events: int = CHUNK_EVENTS,
    read_events: int = READ_BATCH,
    progress: Mapping[str, RebuildProgress] | None = None,
) -> RebuildProgress:
    """Apply everything after the group's checkpoint the same way (a large backlog, e.g.
    after an outage or an import): the leads' states are read from ``analytics_fold``."""
    return await _replay(db, members, False, chunk_events, read_events, progress)


async def _replay(
    db: Connections,
    members: Sequence[LeadProjection],
    from_start: bool,
    chunk_events: int,
    read_events: int,
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
                db,
                members,
                names,
                from_start,
                chunk_events,
                read_events,
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
    db: Connections,
    members: Sequence[LeadProjection],
    names: list[str],
    from_start: bool,
    chunk_events: int,
    read_events: int,
    tracked: list[RebuildProgress],
    started: float,
) -> None:
    group = members[0].group
    async with db.transaction() as tx:
        expected = await _lock(tx, names)
        if from_start:
            await tx.execute(
                "UPDATE projection_checkpoints SET position = 0, updated_at = now() "
                "WHERE name = ANY(CAST(:names AS text[]))",
                names=names,
            )
            await _clear(tx, group, members)
            expected = 0
        head = await log_head(tx)
        total = head - expected
    for p in tracked:
        p.total = total
    states: dict[str, LeadJourney] = {}
    stored = Stored()
    stored.everything = not from_start  # the states so far are in analytics_fold
    # Two connections besides the writes: the log is read (and stored states read back)
    # on ``reader`` while Python folds; chunk k is written and committed on its own
    # transaction while chunk k+1 is folded in memory. Reads see only committed rows: a
    # lead evicted after chunk k was last written by chunk k-1 or before, which has
    # committed by then (chunk k's write starts only after chunk k-1's ended).
    writing: asyncio.Task[None] | None = None
    pending: Folded | None = None  # the chunk being written
    position = expected
    async with db.connect() as reader:
        try:
            while True:
                size = chunk_size(chunk_events, head - position, first=position == expected)
                chunk = await _fold_chunk(
                    reader, members, states, stored, position, size, read_events
                )
                if writing is not None and pending is not None:
                    try:
                        await writing
                    except _Stale as stale:
                        # The live loop applied batches after our last commit: what is
                        # in memory is stale; fold again from its checkpoint.
                        states.clear()
                        stored.leads.clear()
                        stored.everything = True
                        position = stale.position
                        writing = pending = None
                        continue
                    writing = None
                    _advance(tracked, pending.read, started)
                    pending = None
                if not chunk.read:
                    break
                # Keep only the leads this chunk touched; the rest are stored (committed)
                # and read back if they ever reappear.
                if len(states) > len(chunk.leads):
                    stored.leads.update(lid for lid in states if lid not in chunk.leads)
                    states = {lid: states[lid] for lid in chunk.leads}
                pending = chunk
                writing = asyncio.ensure_future(_write_chunk(db, names, chunk))
                position = chunk.end
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing


def chunk_size(chunk_events: int, remaining: int, first: bool = False) -> int:
    """How many events the next chunk folds: the first and the last chunk are a fifth of
    ``chunk_events`` (the *ramp*), the ones between ``chunk_events``.

    The replay is a two-stage pipeline, so its time is about the first chunk's fold, then
    per chunk the longer of the next fold and this write, then the last chunk's write:
    the two ends overlap nothing. Small end chunks shrink them (a 1M-event log in 250k
    chunks spent a third of its time there). No chunk is much smaller than the ramp: a
    remainder of up to a quarter of it joins the last chunk, a longer one under two ramps
    is halved. A tiny chunk costs a whole merge round (its statements read the full
    tables) for few rows."""
    ramp = max(1, chunk_events // 5)
    if remaining <= 0:
        return chunk_events  # the log grew since the head was read: read on in full
    if remaining <= ramp + ramp // 4:
        return remaining  # the last (or only) chunk
    if remaining < 2 * ramp:
        return remaining // 2  # two end chunks, neither of them tiny
    if first:
        return ramp
    if remaining <= chunk_events + ramp:
        return remaining - ramp  # leave a ramp-sized last chunk
    return chunk_events


def _advance(tracked: list[RebuildProgress], read: int, started: float) -> None:
    elapsed = max(time.time() - started, 1e-9)
    for p in tracked:
        p.processed += read
        p.events_per_second = p.processed / elapsed


async def _clear(tx: Tx, group: LeadFold, members: Sequence[LeadProjection]) -> None:
    await group.clear(tx)
    for m in members:
        await m.clear(tx)
