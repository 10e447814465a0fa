"""Group commit for single inquiries (API and web forms).

Each request still waits until its inquiry is committed (event + outbox) before it is
answered, but requests that arrive while a transaction is running share the next one. Idle,
a request is flushed at once (no added latency); under load the per-transaction round trips
are spread over the whole batch, and a second transaction runs in parallel only while a full
batch is waiting (``concurrency`` is the most in flight). A failure the database reports for a batch is retried (lost
races); anything else is retried item by item, so one bad inquiry cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from leadflow.events.consumer import UnitOfWork
from leadflow.events.errors import Problem
from leadflow.intake import commands

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


def _answer(result: commands.IngestResult) -> dict[str, Any]:
    return {
        "lead_id": str(result.lead_id),
        "inquiry_id": str(result.inquiry_id),
        "matched": result.matched,
        "match_reason": result.match_reason,
    }


def _mismatch() -> Problem:
    return Problem(
        422,
        "Idempotency key reused",
        "this Idempotency-Key was used for a different request",
        errors=[{"field": "Idempotency-Key", "message": "reused with a different body"}],
    )


async def process(uow: UnitOfWork, batch: list[Pending]) -> list[Outcome | Problem]:
    """One transaction for the whole batch: idempotency claims, ingest, stored answers."""
    conn = uow.conn
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
    claimed: set[tuple[str, str]] = set()
    if keyed:
        ids = [batch[i].idempotency for i in keyed]
        rows = await conn.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, request_hash) SELECT * FROM "
                "unnest(CAST(:s AS text[]), CAST(:k AS text[]), CAST(:h AS text[])) "
                "ON CONFLICT DO NOTHING RETURNING scope, key"
            ),
            {
                "s": [x.scope for x in ids if x],
                "k": [x.key for x in ids if x],
                "h": [x.request_hash for x in ids if x],
            },
        )
        claimed = {(r[0], r[1]) for r in rows}
        keys = {i: _idempotency_key(batch[i]) for i in keyed}
        earlier = [i for i in keyed if keys[i] not in claimed]
        if earlier:
            stored = await conn.execute(
                text(
                    "SELECT scope, key, request_hash, response FROM idempotency_keys "
                    "WHERE (scope, key) IN (SELECT * FROM unnest(CAST(:s AS text[]), "
                    "CAST(:k AS text[])))"
                ),
                {
                    "s": [keys[i][0] for i in earlier],
                    "k": [keys[i][1] for i in earlier],
                },
            )
            by_key = {(r[0], r[1]): (r[2], r[3]) for r in stored}
            for i in earlier:
                idem = batch[i].idempotency
                assert idem is not None
                request_hash, response = by_key[(idem.scope, idem.key)]
                outcomes[i] = (
                    Outcome(dict(response), replayed=True)
                    if request_hash == idem.request_hash
                    else _mismatch()
                )
    todo = [i for i in range(len(batch)) if outcomes[i] is None and i not in followers]
    results = await commands.ingest(uow, [batch[i].item for i in todo])
    answers: list[tuple[Idempotency, dict[str, Any]]] = []
    for i, result in zip(todo, results, strict=True):
        answer = _answer(result)
        outcomes[i] = Outcome(answer)
        idem = batch[i].idempotency
        if idem is not None:
            answers.append((idem, answer))
    if answers:
        from leadflow.intake.store import _json

        await conn.execute(
            text(
                "UPDATE idempotency_keys t SET status = 202, response = CAST(v.r AS jsonb) "
                "FROM unnest(CAST(:s AS text[]), CAST(:k AS text[]), CAST(:r AS text[])) "
                "AS v(s, k, r) WHERE t.scope = v.s AND t.key = v.k"
            ),
            {
                "s": [a[0].scope for a in answers],
                "k": [a[0].key for a in answers],
                "r": [_json(a[1]) for a in answers],
            },
        )
    for i, owner in followers.items():
        first = outcomes[owner]
        outcomes[i] = Outcome(first.answer, replayed=True) if isinstance(first, Outcome) else first
    return [o if o is not None else Problem(500, "Internal error") for o in outcomes]


class InquiryBatcher:
    def __init__(
        self, transaction: Transaction, *, max_batch: int = 256, concurrency: int = 2
    ) -> None:
        self.transaction = transaction
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._queue: list[tuple[Pending, asyncio.Future[Outcome | Problem]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._running = 0

    async def submit(self, pending: Pending) -> Outcome:
        future: asyncio.Future[Outcome | Problem] = asyncio.get_running_loop().create_future()
        self._queue.append((pending, future))
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
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._run(batch)
        finally:
            self._running -= 1

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
