"""Group commit for single inquiries (API and web forms).

Each request still waits until its inquiry is committed (event + outbox) before it is
answered, but requests that arrive while a transaction is running share the next one. Idle,
a request is flushed at once (no added latency); under load the per-transaction round trips
are spread over the whole batch, and a second transaction runs in parallel only while a full
batch is waiting (``concurrency`` is the most in flight). A failure the database reports for a batch is retried (lost
races); anything else is retried item by item, so one bad inquiry cannot fail the others.

While requests overlap (the last transaction carried more than one inquiry), transactions
start at most once per ``interval`` (``LEADFLOW_INTAKE_GROUP_COMMIT_INTERVAL_MS``): the next
one waits for the rest of the interval, gathering everything that arrives meanwhile. A
transaction's fixed cost (BEGIN, the claim, the read, the write, the append, COMMIT, and the
relay's wake-up and Kafka request after it) is most of an inquiry's CPU while transactions
carry one or two inquiries each, as they do at a few hundred inquiries per second on a fast
database; spacing them keeps each transaction fuller at the cost of a few milliseconds. A
lone request, and a client that sends one request at a time, are flushed at once as before:
waiting gathers nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from leadflow.events import UnitOfWork
from leadflow.events.errors import Problem
from leadflow.events.waiting import wait_event
from leadflow.intake import commands, store

log = logging.getLogger("leadflow.intake.batching")


@dataclass(frozen=True)
class Idempotency:
    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Pending:
    item: commands.IngestItem
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Outcome:
    answer: dict[str, Any]
    replayed: bool = False


Transaction = Callable[[Callable[[UnitOfWork], Awaitable[Any]]], Awaitable[Any]]


def _mismatch() -> Problem:
    return Problem(
        422,
        "Idempotency key reused",
        "this Idempotency-Key was used for a different request",
        errors=[{"field": "Idempotency-Key", "message": "reused with a different body"}],
    )


async def process(uow: UnitOfWork, batch: list[Pending]) -> list[Outcome | Problem]:
    """One transaction for the whole batch: idempotency claims and identity locks (one
    statement), ingest, stored answers (written with the batch's leads)."""
    tx = uow.tx
    outcomes: list[Outcome | Problem | None] = [None] * len(batch)
    owners: dict[tuple[str, str], int] = {}
    followers: dict[int, int] = {}
    keyed: list[int] = []
    for i, pending in enumerate(batch):
        idem = pending.idempotency
        if idem is None:
            continue
        owner = owners.get((idem.scope, idem.key))
        if owner is None:
            owners[(idem.scope, idem.key)] = i
            keyed.append(i)
        elif batch[owner].idempotency.request_hash != idem.request_hash:  # type: ignore[union-attr]
            outcomes[i] = _mismatch()
        else:
            followers[i] = owner
    candidates = [i for i in range(len(batch)) if outcomes[i] is None and i not in followers]
    # Locks for every candidate, even one that turns out to be a replay: harmless, and it
    # saves the round trip a separate lock statement would cost.
    claimed = await store.claim_and_lock(
        tx,
        [_claim(batch[i]) for i in keyed],
        commands.identity_keys([batch[i].item for i in candidates]),
    )
    earlier = [i for i in keyed if _idempotency_key(batch[i]) not in claimed]
    if earlier:
        by_key = await store.stored_responses(tx, [_idempotency_key(batch[i]) for i in earlier])
        for i in earlier:
            idem = batch[i].idempotency
            assert idem is not None
            request_hash, response = by_key[(idem.scope, idem.key)]
            outcomes[i] = (
                Outcome(dict(response), replayed=True)
                if request_hash == idem.request_hash
                else _mismatch()
            )
    todo = [i for i in candidates if outcomes[i] is None]
    results = await commands.ingest(
        uow,
        [batch[i].item for i in todo],
        identities_locked=True,
        idempotency=[
            _idempotency_key(batch[i]) if batch[i].idempotency is not None else None for i in todo
        ],
    )
    for i, result in zip(todo, results, strict=True):
        outcomes[i] = Outcome(result.answer())
    for i, owner in followers.items():
        first = outcomes[owner]
        outcomes[i] = Outcome(first.answer, replayed=True) if isinstance(first, Outcome) else first
    return [o if o is not None else Problem(500, "Internal error") for o in outcomes]


def _claim(pending: Pending) -> tuple[str, str, str]:
    idem = pending.idempotency
    assert idem is not None
    return idem.scope, idem.key, idem.request_hash


class InquiryBatcher:
    def __init__(
        self,
        transaction: Transaction,
        *,
        max_batch: int = 256,
        concurrency: int = 2,
        interval: float = 0.0,
    ) -> None:
        self.transaction = transaction
        self.max_batch = max_batch
        self.concurrency = concurrency
        self.interval = interval
        self._last_start = float("-inf")  # loop time the last transaction started
        self._last_size = 0  # inquiries it carried
        self._full = asyncio.Event()  # a full batch waits: a spacing flusher goes at once
        self._queue: list[tuple[Pending, asyncio.Future[Outcome | Problem]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._running = 0

    async def submit(self, pending: Pending) -> Outcome:
        future: asyncio.Future[Outcome | Problem] = asyncio.get_running_loop().create_future()
        self._queue.append((pending, future))
        if len(self._queue) >= self.max_batch:
            self._full.set()
        # Idle, a request is flushed at once. Busy, it waits for the running transaction and
        # joins the next batch: the per-transaction cost (round trips, BEGIN/COMMIT) is mostly
        # fixed, so fewer, fuller transactions are what lets a loaded process keep up. Another
        # transaction starts in parallel only while a whole batch is waiting.
        if not self._running or (
            self._running < self.concurrency and len(self._queue) >= self.max_batch
        ):
            # Counted here and uncounted by the flusher itself right after it saw an empty
            # queue (no await in between), so no request can be left without a flusher.
            self._running += 1
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        outcome = await future
        if isinstance(outcome, Problem):
            raise outcome
        return outcome

    async def _flush(self) -> None:
        try:
            while self._queue:
                await self._space()
                if not self._queue:  # a parallel flusher took them meanwhile
                    continue
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                self._last_start = asyncio.get_running_loop().time()
                self._last_size = len(batch)
                await self._run(batch)
        finally:
            self._running -= 1

    async def _space(self) -> None:
        """While requests overlap, wait until ``interval`` has passed since the last
        transaction started (not after a lone request, nor with a full batch waiting)."""
        if self._last_size < 2 or len(self._queue) >= self.max_batch:
            return
        wait = self._last_start + self.interval - asyncio.get_running_loop().time()
        if wait > 0:
            self._full.clear()
            await wait_event(self._full, wait)

    async def _run(self, batch: list[tuple[Pending, asyncio.Future[Outcome | Problem]]]) -> None:
        items = [p for p, _ in batch]
        try:
            outcomes = await self.transaction(lambda uow: process(uow, items))
        except Exception as exc:
            if len(batch) > 1:
                log.warning("batch of %d failed (%r); retrying one by one", len(batch), exc)
                for one in batch:
                    await self._run([one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def close(self) -> None:
        for task in list(self._flushers):
            with contextlib.suppress(Exception):
                await task


def _idempotency_key(item: Any) -> tuple[str, str]:
    """(scope, key) of a batch item that carries an Idempotency-Key."""
    assert item.idempotency is not None
    return item.idempotency.scope, item.idempotency.key
