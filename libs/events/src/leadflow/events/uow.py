"""The unit of work: one open transaction and the ways a handler records facts in it
(events, timers). What consumer handlers, timer handlers and API commands are given; the
runners (``consumer``, ``timer_runner``) and the service kit open and commit it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope, EventPayload, is_historical
from leadflow.events.sql import Tx
from leadflow.events.store import EventStore
from leadflow.events.timers import Timer, Timers

B = TypeVar("B")


class UnitOfWork:
    """What a handler (or an API command) gets: an open transaction and ways to record facts.

    ``append`` buffers events; they are written with one multi-row insert when the unit of
    work is flushed (the runner does it before commit), so a batch of a thousand records
    costs a few round trips, not thousands. ``on_flush`` lets a handler defer its own
    set-based work to that point, still inside the transaction.
    """

    def __init__(
        self,
        tx: Tx,
        store: EventStore,
        clock: Clock,
        causation: Envelope | None = None,
        *,
        notify_relay: bool = True,
    ) -> None:
        # The transaction every statement of this unit of work runs in.
        self.tx = tx
        self.store = store
        self.clock = clock
        # False when whoever commits this unit of work wakes the outbox relay in-process
        # afterwards (its own process runs the active relay): no NOTIFY, which would wake
        # every listening session of the database.
        self.notify_relay = notify_relay
        self.timers = Timers(tx)
        self.causation = causation
        self.appended: list[Envelope] = []
        self._pending: list[Envelope] = []
        self._pending_leads: set[uuid.UUID] = set()  # leads with events in ``_pending``
        self._expected: dict[uuid.UUID, int] = {}
        # Stream versions read earlier in this transaction (see ``EventStore.append``); set
        # by the consumer's inbox claim, never for a store that serialises its appends.
        self.known_versions: dict[uuid.UUID, int] | None = None
        self._before_flush: list[Callable[[], Awaitable[None]]] = []
        self._batches: dict[Hashable, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}

    def on_flush(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` once, at the next flush, before the buffered events are written.

        A handler that accumulates a whole batch (routing decides a batch's leads with
        set-based SQL) registers here; whatever the callback appends is written in the same
        flush, and the runner flushes before it commits."""
        self._before_flush.append(callback)

    def batch(
        self, key: Hashable, make: Callable[[], B], flush: Callable[[B], Awaitable[None]]
    ) -> B:
        """What a handler collects under ``key`` during this unit of work (made by ``make``
        on first use), handed to ``flush`` once, at the next flush (or ``flush_batch``).

        A handler that decides a whole consumer batch with set-based SQL collects its
        events here and does the work in ``flush``, inside the batch's transaction."""
        entry = self._batches.get(key)
        if entry is None:
            entry = self._batches[key] = (make(), flush)
            self.on_flush(lambda: self.flush_batch(key))
        return cast(B, entry[0])

    async def flush_batch(self, key: Hashable) -> None:
        """Hand what was collected under ``key`` to its flush now (a handler that must not
        overtake the collected events calls this first); a later batch starts afresh."""
        entry = self._batches.pop(key, None)
        if entry is not None:
            collected, flush = entry
            await flush(collected)

    async def append(
        self,
        lead_id: uuid.UUID,
        payloads: EventPayload | Sequence[EventPayload],
        *,
        expected_version: int | None = None,
        occurred_at: datetime | None = None,
        causation: Envelope | None = None,
    ) -> list[Envelope]:
        """Buffer ``payloads`` for ``lead_id``'s stream (written at the next flush).
        ``causation``: the event that caused them (None: the unit of work's ``causation``);
        a batch handler names each decided event here (``leadflow.events.batch``)."""
        if isinstance(payloads, EventPayload):
            payloads = [payloads]
        if expected_version is not None:
            # A set, not a scan of the buffer: an import appends thousands of new streams
            # to one unit of work, and the scan made that quadratic.
            if lead_id in self._pending_leads:
                await self.flush()
            self._expected[lead_id] = expected_version
        when = occurred_at or self.clock.now()
        cause = causation or self.causation
        envelopes = [
            Envelope.new(p, lead_id=lead_id, occurred_at=when, causation=cause) for p in payloads
        ]
        self._pending.extend(envelopes)
        self._pending_leads.add(lead_id)
        return envelopes

    async def flush(self) -> list[Envelope]:
        while self._before_flush:
            callbacks, self._before_flush = self._before_flush, []
            for callback in callbacks:
                await callback()
        if not self._pending:
            return []
        pending, expected = self._pending, self._expected
        self._pending, self._expected = [], {}
        self._pending_leads = set()
        stored = await self.store.append(
            self.tx,
            pending,
            expected_versions=expected,
            known_versions=self.known_versions,
            notify=self.notify_relay,
        )
        self.appended.extend(stored)
        return stored

    async def read_stream(self, lead_id: uuid.UUID) -> list[Envelope]:
        await self.flush()
        return await self.store.read_stream(self.tx, lead_id)

    async def stream_version(self, lead_id: uuid.UUID) -> int:
        await self.flush()
        if self.known_versions is not None and lead_id in self.known_versions:
            return self.known_versions[lead_id]
        return await self.store.stream_version(self.tx, lead_id)


Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]


HandlerMap = Mapping[type[EventPayload] | str, Handler]


def handlers_by_type(handlers: HandlerMap) -> dict[str, Handler]:
    """Handlers are registered by payload class (or event type string); look up by type."""
    by_type: dict[str, Handler] = {}
    for key, handler in handlers.items():
        event_type = key if isinstance(key, str) else key.event_type
        by_type[event_type] = handler
    return by_type


def skip_historical(handlers: HandlerMap) -> dict[type[EventPayload] | str, Handler]:
    """The same handlers, except that events flagged ``historical`` (imported history, see
    ``envelope.is_historical``) are consumed without effect: for services that act on events
    (routing, SLA clocks, notifications) rather than record them."""

    def guarded(handler: Handler) -> Handler:
        async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
            if not is_historical(envelope.payload):
                await handler(envelope, uow)

        return handle

    return {key: guarded(handler) for key, handler in handlers.items()}


TimerHandler = Callable[[Timer, UnitOfWork], Awaitable[None]]
