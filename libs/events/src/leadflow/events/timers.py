"""Durable timers: SLA deadlines and nurture cadence that survive restarts and fire once.

A timer is a row keyed by a caller-chosen ``key`` (re-scheduling the same key moves it).
The runner claims due rows with ``FOR UPDATE SKIP LOCKED`` so replicas never fire the same
timer, runs the handler in the same transaction as the delete and the ``fired_timers``
record, and commits: a crash before commit leaves the timer to fire again, a commit means
it fired exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadflow.events import metrics
from leadflow.events.clock import Clock
from leadflow.events.db import DriverSql
from leadflow.events.waiting import wait_event

if TYPE_CHECKING:
    from leadflow.events.consumer import UnitOfWork

log = logging.getLogger("leadflow.timers")


@dataclass(frozen=True)
class Timer:
    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    lead_id: uuid.UUID | None = None


TimerHandler = Callable[[Timer, "UnitOfWork"], Awaitable[None]]


# A key scheduled twice in one call keeps its last row (ON CONFLICT cannot touch a row twice).
# ``{p}``: the parameters' prefix, so the same rows can be written inside a larger statement.
_SCHEDULE_ROWS = """
    INSERT INTO timers (key, kind, lead_id, due_at, payload)
    SELECT DISTINCT ON (key) key, kind, lead_id, due_at, payload
    FROM unnest(CAST(:{p}keys AS text[]), CAST(:{p}kinds AS text[]),
                CAST(:{p}lead_ids AS uuid[]), CAST(:{p}due AS timestamptz[]),
                CAST(:{p}payloads AS jsonb[]))
         WITH ORDINALITY AS t(key, kind, lead_id, due_at, payload, n)
    ORDER BY key, n DESC
    ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, lead_id = EXCLUDED.lead_id,
        due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, attempts = 0, last_error = NULL
"""
_CANCEL_ROWS = "DELETE FROM timers WHERE key = ANY(CAST(:{p}keys AS text[]))"
# Both are on every consumer batch that moves a timer: sent straight to asyncpg.
_SCHEDULE = DriverSql(_SCHEDULE_ROWS.format(p=""))
_CANCEL = DriverSql(_CANCEL_ROWS.format(p=""))


def _schedule_params(timers: Sequence[Timer], prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}keys": [t.key for t in timers],
        f"{prefix}kinds": [t.kind for t in timers],
        f"{prefix}lead_ids": [t.lead_id for t in timers],
        f"{prefix}due": [t.due_at for t in timers],
        f"{prefix}payloads": [orjson.dumps(t.payload).decode() for t in timers],
    }


def timer_writes(
    cancel: Sequence[str], schedule: Sequence[Timer], *, prefix: str = "timers_"
) -> tuple[list[str], dict[str, Any]]:
    """``cancel_many`` and ``schedule_many`` as parts of a ``WITH`` statement, with their
    parameters: a service that writes a consumer batch's rows with one statement writes the
    batch's timers in it too (a round trip less per batch). Cancelled and scheduled keys
    must differ. The caller notes the schedule on its ``Timers`` (``note_scheduled``)."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if cancel:
        parts.append(f"{prefix}cancelled AS ({_CANCEL_ROWS.format(p=prefix + 'c_')})")
        params[f"{prefix}c_keys"] = list(cancel)
    if schedule:
        parts.append(f"{prefix}scheduled AS ({_SCHEDULE_ROWS.format(p=prefix + 's_')})")
        params |= _schedule_params(schedule, prefix + "s_")
    return parts, params


class Timers:
    """Schedule and cancel timers inside the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
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
        await _SCHEDULE.execute(self.conn, _schedule_params(timers))

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
        status = await _CANCEL.execute(self.conn, {"keys": list(keys)})
        return int(status.rsplit(" ", 1)[-1])

    async def cancel_prefix(self, prefix: str) -> int:
        result = await self.conn.execute(
            text("DELETE FROM timers WHERE key LIKE :p"), {"p": prefix.replace("%", r"\%") + "%"}
        )
        return int(result.rowcount or 0)

    async def get(self, key: str) -> Timer | None:
        row = (
            await self.conn.execute(
                text("SELECT key, kind, due_at, payload, lead_id FROM timers WHERE key = :key"),
                {"key": key},
            )
        ).first()
        return Timer(row.key, row.kind, row.due_at, row.payload, row.lead_id) if row else None


UowFactory = Callable[[AsyncConnection], "UnitOfWork"]


class TimerRunner:
    """Fires due timers. ``run_due()`` fires everything due now (tests call it directly)."""

    def __init__(
        self,
        engine: AsyncEngine,
        handlers: Mapping[str, TimerHandler],
        clock: Clock,
        make_uow: Callable[[AsyncConnection, Any], Awaitable[UnitOfWork]],
        *,
        service: str,
        poll_seconds: float = 0.5,
        batch: int = 200,
        on_applied: Callable[[datetime | None, bool], None] | None = None,
    ) -> None:
        """``on_applied(None, events appended?)`` runs after each sweep that fired timers
        commits, as after a consumer batch (``ConsumerRunner``)."""
        self.engine = engine
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
        try:
            return await self._sweep_together()
        except _SweepFailed:
            return await self._sweep_one_by_one()

    async def _claim(self, conn: AsyncConnection) -> list[Any]:
        return list(
            (
                await conn.execute(
                    text(
                        """
                        SELECT key, kind, due_at, payload, lead_id, attempts FROM timers
                        WHERE due_at <= :now ORDER BY due_at, key LIMIT :batch
                        FOR UPDATE SKIP LOCKED
                        """
                    ),
                    {"now": self.clock.now(), "batch": self.batch},
                )
            ).all()
        )

    async def _sweep_together(self) -> int:
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                rows = await self._claim(conn)
                if not rows:
                    await transaction.commit()
                    return 0
                timers = [_timer(row) for row in rows]
                try:
                    uow = await self.make_uow(conn, None)
                    for timer in timers:
                        await self._fire(timer, uow)
                    await uow.flush()
                except Exception as exc:
                    if _transient(exc):
                        raise
                    log.warning("a timer of the batch failed (%r); firing one by one", exc)
                    raise _SweepFailed from exc
                await self._record_fired(conn, timers)
                await transaction.commit()
            except BaseException:
                await transaction.rollback()
                raise
        self._applied([uow])
        for timer in timers:
            metrics.TIMERS_FIRED.labels(self.service, timer.kind).inc()
        return len(rows)

    async def _sweep_one_by_one(self) -> int:
        now = self.clock.now()
        fired: list[UnitOfWork] = []
        async with self.engine.connect() as conn, conn.begin():
            rows = await self._claim(conn)
            for row in rows:
                timer = _timer(row)
                try:
                    async with conn.begin_nested():
                        uow = await self.make_uow(conn, None)
                        await self._fire(timer, uow)
                        await uow.flush()
                        await self._record_fired(conn, [timer])
                    fired.append(uow)
                    metrics.TIMERS_FIRED.labels(self.service, timer.kind).inc()
                except Exception as exc:
                    log.exception("timer %s failed", timer.key)
                    backoff = timedelta(seconds=min(3600, 2 ** min(row.attempts + 1, 12)))
                    await conn.execute(
                        text(
                            "UPDATE timers SET attempts = attempts + 1, last_error = :err, "
                            "due_at = :due WHERE key = :key"
                        ),
                        {"err": repr(exc)[:2000], "due": now + backoff, "key": timer.key},
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

    async def _record_fired(self, conn: AsyncConnection, timers: list[Timer]) -> None:
        """Delete the fired rows (unless a handler moved the same key later) and record them."""
        params = {
            "keys": [t.key for t in timers],
            "kinds": [t.kind for t in timers],
            "leads": [t.lead_id for t in timers],
            "dues": [t.due_at for t in timers],
        }
        await conn.execute(
            text(
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
                """
            ),
            params,
        )


class _SweepFailed(Exception):
    """A handler failed in the batch: fire the batch again one timer at a time."""


def _timer(row: Any) -> Timer:
    return Timer(row.key, row.kind, row.due_at, row.payload or {}, row.lead_id)


def _transient(exc: BaseException) -> bool:
    from leadflow.events.consumer import is_transient

    return is_transient(exc)
