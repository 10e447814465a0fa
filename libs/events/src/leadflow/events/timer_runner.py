"""The timer runner: fires due durable timers (``timers``), each in the same transaction as
its row's delete and its ``fired_timers`` record, so a timer fires exactly once; replicas
claim rows with ``FOR UPDATE SKIP LOCKED`` and never fire the same one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from leadflow.events import metrics
from leadflow.events.clock import Clock
from leadflow.events.faults import is_transient
from leadflow.events.sql import Database, Tx
from leadflow.events.timers import Timer
from leadflow.events.uow import TimerHandler, UnitOfWork
from leadflow.events.waiting import wait_event

log = logging.getLogger("leadflow.timers")


UowFactory = Callable[[Tx], UnitOfWork]


class TimerRunner:
    """Fires due timers. ``run_due()`` fires everything due now (tests call it directly)."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, TimerHandler],
        clock: Clock,
        make_uow: Callable[[Tx, Any], Awaitable[UnitOfWork]],
        *,
        service: str,
        poll_seconds: float = 0.5,
        batch: int = 200,
        on_applied: Callable[[datetime | None, bool], None] | None = None,
    ) -> None:
        """``on_applied(None, events appended?)`` runs after each sweep that fired timers
        commits, as after a consumer batch (``ConsumerRunner``)."""
        self.db = db
        self.handlers = dict(handlers)
        self.clock = clock
        self.make_uow = make_uow
        self.on_applied = on_applied
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def wake_for(self, due_at: datetime | None) -> None:
        """Wake for a timer just committed, if it falls due before the next poll anyway
        (a sweep is a transaction; most timers are hours away, and the poll finds them)."""
        if due_at is not None and due_at <= self.clock.now() + timedelta(seconds=self.poll_seconds):
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the sweep: a wake() during it is not lost
            try:
                fired = await self.run_due()
            except Exception:  # database away: keep the loop alive and try again
                log.exception("timer sweep failed")
                fired = 0
            if fired >= self.batch:
                continue
            await wait_event(self._wake, self.poll_seconds)

    async def run_due(self) -> int:
        """Fire every timer due at ``clock.now()``; returns how many fired."""
        total = 0
        while True:
            fired = await self._sweep_once()
            total += fired
            if fired < self.batch:
                return total

    async def _sweep_once(self) -> int:
        """Fire one batch of due timers.

        Fast path: every claimed timer's handler in ONE unit of work, then one multi-row
        delete and one multi-row ``fired_timers`` insert. If any handler fails, that
        transaction is rolled back and the batch is fired again one savepoint per timer,
        so a failing timer backs off alone while the others fire.
        """
        if not await self._any_due():
            return 0
        try:
            return await self._sweep_together()
        except _SweepFailed:
            return await self._sweep_one_by_one()

    async def _any_due(self) -> bool:
        """Whether a timer is due: one autocommit read. Most sweeps find nothing (timers
        are hours away), and a claim is a transaction: BEGIN, the claim and COMMIT were
        three round trips per poll of every service with timers, about a twentieth of the
        database's statements at 150 leads/s. A timer due a moment after this read is
        found by the next poll, or by the wake its commit sends."""
        async with self.db.connect() as tx:
            return bool(await tx.fetchval(_ANY_DUE, now=self.clock.now()))

    async def _claim(self, tx: Tx) -> list[Any]:
        return await tx.fetch(
            """
            SELECT key, kind, due_at, payload, lead_id, attempts FROM timers
            WHERE due_at <= :now ORDER BY due_at, key LIMIT :batch
            FOR UPDATE SKIP LOCKED
            """,
            now=self.clock.now(),
            batch=self.batch,
        )

    async def _sweep_together(self) -> int:
        async with self.db.transaction() as tx:
            rows = await self._claim(tx)
            if not rows:
                return 0
            timers = [_timer(row) for row in rows]
            try:
                uow = await self.make_uow(tx, None)
                for timer in timers:
                    await self._fire(timer, uow)
                await uow.flush()
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.warning("a timer of the batch failed (%r); firing one by one", exc)
                raise _SweepFailed from exc
            await self._record_fired(tx, timers)
        self._applied([uow])
        for timer in timers:
            metrics.TIMERS_FIRED.labels(self.service, timer.kind).inc()
        return len(rows)

    async def _sweep_one_by_one(self) -> int:
        now = self.clock.now()
        fired: list[UnitOfWork] = []
        async with self.db.transaction() as tx:
            rows = await self._claim(tx)
            for row in rows:
                timer = _timer(row)
                try:
                    async with tx.savepoint():
                        uow = await self.make_uow(tx, None)
                        await self._fire(timer, uow)
                        await uow.flush()
                        await self._record_fired(tx, [timer])
                    fired.append(uow)
                    metrics.TIMERS_FIRED.labels(self.service, timer.kind).inc()
                except Exception as exc:
                    log.exception("timer %s failed", timer.key)
                    backoff = timedelta(seconds=min(3600, 2 ** min(row["attempts"] + 1, 12)))
                    await tx.execute(
                        "UPDATE timers SET attempts = attempts + 1, last_error = :err, "
                        "due_at = :due WHERE key = :key",
                        err=repr(exc)[:2000],
                        due=now + backoff,
                        key=timer.key,
                    )
        self._applied(fired)
        return len(rows)

    def _applied(self, units: Sequence[UnitOfWork]) -> None:
        # No soonest timer: timers that timer handlers schedule wait for the next poll, as
        # before, so one that keeps rescheduling itself as due cannot spin this loop.
        if self.on_applied is not None and units:
            self.on_applied(None, any(u.appended for u in units))

    async def _fire(self, timer: Timer, uow: UnitOfWork) -> None:
        handler = self.handlers.get(timer.kind)
        if handler is None:
            log.warning("no handler for timer kind %s (%s)", timer.kind, timer.key)
            return
        await handler(timer, uow)

    async def _record_fired(self, tx: Tx, timers: list[Timer]) -> None:
        """Delete the fired rows (unless a handler moved the same key later) and record them."""
        await tx.execute(
            """
            WITH fired AS (
                SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:kinds AS text[]),
                                     CAST(:leads AS uuid[]), CAST(:dues AS timestamptz[]))
                    AS f(key, kind, lead_id, due_at)
            ), gone AS (
                DELETE FROM timers t USING fired f
                WHERE t.key = f.key AND t.due_at = f.due_at
            )
            INSERT INTO fired_timers (key, kind, lead_id, due_at)
            SELECT key, kind, lead_id, due_at FROM fired ON CONFLICT DO NOTHING
            """,
            keys=[t.key for t in timers],
            kinds=[t.kind for t in timers],
            leads=[t.lead_id for t in timers],
            dues=[t.due_at for t in timers],
        )


_ANY_DUE = "SELECT EXISTS (SELECT 1 FROM timers WHERE due_at <= :now)"


class _SweepFailed(Exception):
    """A handler failed in the batch: fire the batch again one timer at a time."""


def _timer(row: Any) -> Timer:
    return Timer(row["key"], row["kind"], row["due_at"], row["payload"] or {}, row["lead_id"])
