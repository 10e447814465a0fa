"""Idempotent Kafka consumers: at-least-once delivery + inbox dedup = one effect per event.

For every ``getmany`` batch the runner opens ONE database transaction that records the
batch's event ids in ``inbox`` (already-seen ids are skipped), runs the handlers, appends
the events they produce (event log + outbox) and commits. Only then are the Kafka offsets
committed, explicitly and per partition. A crash anywhere before that commit means the
batch is redelivered and the inbox makes the replay harmless.

Errors: connection-type errors are transient and retried with backoff for as long as it
takes. Anything else makes the runner fall back to one record per transaction for that
batch, retrying each record up to ``max_attempts``; a record that still fails, or cannot be
decoded at all, goes to ``<topic>.dlq`` with error headers and the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from leadflow.events import metrics
from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope, utcnow
from leadflow.events.errors import DecodeError
from leadflow.events.faults import is_transient
from leadflow.events.logs import bind_event, clear_event
from leadflow.events.sql import Database, Tx
from leadflow.events.store import EventStore
from leadflow.events.uow import HandlerMap, UnitOfWork, handlers_by_type
from leadflow.events.waiting import wait_event

log = logging.getLogger("leadflow.consumer")

_CLAIM_SQL = (
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(CAST(:ids AS uuid[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
# A consumer batch's first statement.
_CLAIM = _CLAIM_SQL
# The claimed event ids (version NULL), then each lead's current stream version.
_CLAIM_AND_READ_VERSIONS = (
    f"WITH claimed AS ({_CLAIM_SQL}) "
    "SELECT event_id, NULL::integer FROM claimed UNION ALL "
    "SELECT lead_id, max(stream_version) FROM event_log "
    "WHERE lead_id = ANY(CAST(:leads AS uuid[])) GROUP BY lead_id"
)


class _Abandoned(Exception):
    """Shutdown interrupted a batch: leave it uncommitted for redelivery."""


@dataclass
class _Item:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope | None
    error: str | None = None


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Wait for the batch in flight, then commit what was applied before the partitions go.
        async with self.runner.batch_lock:
            await self.runner.commit_applied()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ConsumerRunner:
    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        clock: Clock,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        handlers: HandlerMap,
        service: str,
        batch_size: int = 500,
        max_attempts: int = 5,
        on_applied: Callable[[datetime | None, bool], None] | None = None,
        commit_interval_seconds: float = 0.5,
        fetch_max_wait_ms: int = 100,
        fetch_min_bytes: int = 1,
        relay_in_process: Callable[[], bool] | None = None,
        client_id: str | None = None,
        client_rack: str | None = None,
        stall_seconds: float = 30.0,
    ) -> None:
        """``on_applied(soonest timer, appended events?)`` is called after each batch's
        commit. ``relay_in_process``: whether this process runs the active outbox relay
        now; if so a batch's events are written without NOTIFY, and waking the relay is left
        to ``on_applied``."""
        self.db = db
        self.store = store
        self.clock = clock
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group_id = group_id
        self.handlers = handlers_by_type(handlers)
        self.service = service
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.on_applied = on_applied
        self.commit_interval_seconds = commit_interval_seconds
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.relay_in_process = relay_in_process
        self.client_id = client_id or f"{service}-consumer"
        # The zone this process runs in: the broker may then serve fetches from a replica in
        # the same zone (KIP-392), not always the leader's (cross-zone traffic costs money).
        self.client_rack = client_rack
        # The units of work of the batch in hand (its timers, whether it appended).
        self._units_of_batch: list[UnitOfWork] = []
        self.batch_lock = asyncio.Lock()
        # Offsets of applied batches wait here for the background committer: the inbox makes
        # a redelivery harmless, so the next batch never waits for a broker round trip.
        self._applied: dict[TopicPartition, int] = {}
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._last_lag_check = 0.0
        # Partition -> (position, since when): a partition with lag whose position stays
        # put longer than ``stall_seconds`` restarts the clients (``stalled_partitions``).
        self.stall_seconds = stall_seconds
        self._progress: dict[TopicPartition, tuple[int, float]] = {}
        self.started = asyncio.Event()
        # Events handled and committed (duplicates skipped are not; a rolled-back attempt is
        # not): counted after the transaction, so whoever waits on it can read the effects.
        self.processed = 0
        self.batches = 0  # fetched batches handled, each in one transaction

    def stop(self) -> None:
        self._stop.set()

    @property
    def connected(self) -> bool:
        return self._consumer is not None and self.started.is_set()

    async def _start_clients(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.batch_size,
                fetch_max_wait_ms=self.fetch_max_wait_ms,
                fetch_min_bytes=self.fetch_min_bytes,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                rebalance_timeout_ms=30_000,
                client_id=self.client_id,
                client_rack=self.client_rack,
            )
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                enable_idempotence=True,
                acks="all",
                client_id=f"{self.service}-dlq",
            )
            consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
            try:
                await consumer.start()
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("kafka not reachable (%s); retrying in %.1fs", exc, delay)
                await _safe_stop(consumer)
                await _safe_stop(producer)
                await _sleep_unless(self._stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            self._consumer, self._dlq = consumer, producer
            return

    async def run(self) -> None:
        while not self._stop.is_set():
            await self._start_clients()
            if self._consumer is None:
                return
            if not await self._consume():
                return
            # A partition stalled (see ``stalled_partitions``): new clients, a new fetcher.
            metrics.CONSUMER_RESTARTS.labels(self.service).inc()

    async def _consume(self) -> bool:
        """Fetch and handle batches until stopped (False) or until an assigned partition
        stalls (True: the caller starts fresh clients)."""
        consumer = self._consumer
        assert consumer is not None
        self.started.set()
        committer = asyncio.create_task(self._commit_in_background())
        self._progress.clear()
        try:
            while not self._stop.is_set():
                try:
                    batch = await consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                except KafkaError as exc:
                    log.warning("fetch failed: %s", exc)
                    await _sleep_unless(self._stop, 0.5)
                    continue
                if batch:
                    async with self.batch_lock:
                        await self._handle_batch(batch)
                stalled = await self._report_lag()
                if stalled:
                    log.warning(
                        "partitions %s have records waiting but have not moved for %.0fs; "
                        "restarting the consumer",
                        sorted(f"{tp.topic}[{tp.partition}]" for tp in stalled),
                        self.stall_seconds,
                    )
                    return True
            return False
        finally:
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)
            await self.commit_applied()  # what was applied is committed before leaving
            await _safe_stop(consumer)  # leaves the group
            if self._dlq is not None:
                await _safe_stop(self._dlq)
            self._consumer = None

    # -- one batch -------------------------------------------------------------------

    async def _handle_batch(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        items: list[_Item] = []
        for records in batch.values():
            for record in records:
                items.append(_decode(record))
        dead = [i for i in items if i.envelope is None]
        good = [i for i in items if i.envelope is not None]
        delay = 0.1
        while True:
            try:
                await self._apply_in_one_transaction(good)
                break
            except Exception as exc:
                if is_transient(exc) and not self._stop.is_set():
                    metrics.HANDLER_RETRIES.labels(self.service).inc()
                    log.warning("transient error, retrying batch in %.1fs: %r", delay, exc)
                    await _sleep_unless(self._stop, delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if self._stop.is_set():
                    return  # not committed: redelivered to whoever owns the partition next
                log.warning("batch failed (%r); handling its records one by one", exc)
                try:
                    dead.extend(await self._apply_one_by_one(good))
                except _Abandoned:
                    return  # stopping: the next owner of the partition redelivers the batch
                break
        if dead:
            await self._dead_letter(dead)
        self._mark_applied(batch)
        self.batches += 1

    def _unit_of_work(self, conn: Tx) -> UnitOfWork:
        quiet = self.relay_in_process is not None and self.relay_in_process()
        uow = UnitOfWork(conn, self.store, self.clock, notify_relay=not quiet)
        self._units_of_batch.append(uow)
        return uow

    async def _apply_in_one_transaction(self, items: Sequence[_Item]) -> None:
        handled = [i for i in items if i.envelope and i.envelope.event_type in self.handlers]
        if not handled:
            return
        started = time.perf_counter()
        async with self.db.transaction() as conn:
            uow = self._unit_of_work(conn)
            fresh = await self._claim_inbox(
                uow, [i.envelope for i in handled if i.envelope is not None]
            )
            called = 0
            for item in handled:
                envelope = item.envelope
                assert envelope is not None
                if envelope.event_id not in fresh:
                    metrics.DUPLICATES_SKIPPED.labels(self.service).inc()
                    continue
                fresh.discard(envelope.event_id)  # a duplicate inside the same batch
                await self._call(envelope, uow)
                called += 1
            await uow.flush()
        self.processed += called  # committed: a waiter on `processed` may read the effects
        self._observe(handled, time.perf_counter() - started)

    async def _apply_one_by_one(self, items: Sequence[_Item]) -> list[_Item]:
        dead: list[_Item] = []
        for item in items:
            envelope = item.envelope
            assert envelope is not None
            if envelope.event_type not in self.handlers:
                continue
            attempts, delay = 0, 0.05
            while True:
                try:
                    async with self.db.transaction() as conn:
                        uow = self._unit_of_work(conn)
                        fresh = bool(await self._claim_inbox(uow, [envelope]))
                        if fresh:
                            await self._call(envelope, uow)
                            await uow.flush()
                    self.processed += fresh
                    break
                except Exception as exc:
                    if is_transient(exc) and not self._stop.is_set():
                        await _sleep_unless(self._stop, delay)
                        delay = min(delay * 2, 5.0)
                        continue
                    if self._stop.is_set():
                        # Shutting down: never dead-letter a record that was not given all its
                        # attempts; leave it (and the rest of the batch) uncommitted instead.
                        raise _Abandoned from exc
                    attempts += 1
                    metrics.HANDLER_RETRIES.labels(self.service).inc()
                    if attempts >= self.max_attempts:
                        log.error(
                            "poison record %s after %d attempts: %r",
                            envelope.event_id,
                            attempts,
                            exc,
                        )
                        item.error = f"{type(exc).__name__}: {exc}"
                        dead.append(item)
                        break
                    await _sleep_unless(self._stop, delay)
                    delay = min(delay * 2, 2.0)
        return dead

    async def _call(self, envelope: Envelope, uow: UnitOfWork) -> None:
        handler = self.handlers[envelope.event_type]
        uow.causation = envelope
        bind_event(
            lead_id=envelope.lead_id,
            event_id=envelope.event_id,
            correlation_id=envelope.correlation_id,
            event_type=envelope.event_type,
        )
        try:
            await handler(envelope, uow)
        finally:
            clear_event()

    async def _claim_inbox(self, uow: UnitOfWork, envelopes: list[Envelope]) -> set[uuid.UUID]:
        """Record the events in the inbox; return those not seen before. Unless the store
        serialises its appends, the same round trip reads the stream versions of their
        leads for the unit of work (the handlers mostly append to the lead of the event)."""
        ids = [e.event_id for e in envelopes]
        if self.store.serialize_appends:
            rows = await uow.tx.fetch(_CLAIM, consumer=self.group_id, ids=ids)
            return {row[0] for row in rows}
        leads = list({e.lead_id for e in envelopes})
        rows = await uow.tx.fetch(
            _CLAIM_AND_READ_VERSIONS, consumer=self.group_id, ids=ids, leads=leads
        )
        fresh: set[uuid.UUID] = set()
        known = dict.fromkeys(leads, 0)  # a lead without a row has no events yet
        for key, version in rows:
            if version is None:
                fresh.add(key)
            else:
                known[key] = int(version)
        uow.known_versions = known
        return fresh

    def _observe(self, items: Sequence[_Item], seconds: float) -> None:
        """Handler latency (the batch's time shared by its records) and events consumed,
        counted per (topic, event type): looking up a labelled metric costs more than
        updating it, so a batch does it once per kind of record."""
        per_record = seconds / max(len(items), 1)
        kinds = Counter(
            (item.record.topic, item.envelope.event_type) for item in items if item.envelope
        )
        for (topic, event_type), count in kinds.items():
            latency = metrics.HANDLER_LATENCY.labels(self.service, event_type)
            for _ in range(count):
                latency.observe(per_record)
            metrics.EVENTS_CONSUMED.labels(self.service, topic, event_type).inc(count)

    async def _dead_letter(self, items: Sequence[_Item]) -> None:
        assert self._dlq is not None
        futures = []
        for item in items:
            record = item.record
            headers = list(record.headers or ())
            headers += [
                ("dlq.error", (item.error or "unknown")[:4000].encode()),
                ("dlq.original_topic", record.topic.encode()),
                ("dlq.original_partition", str(record.partition).encode()),
                ("dlq.original_offset", str(record.offset).encode()),
                ("dlq.consumer_group", self.group_id.encode()),
                ("dlq.failed_at", utcnow().isoformat().encode()),
            ]
            futures.append(
                await self._dlq.send(
                    f"{record.topic}.dlq", value=record.value, key=record.key, headers=headers
                )
            )
            metrics.DLQ_RECORDS.labels(self.service, record.topic).inc()
        await asyncio.gather(*futures)

    def _mark_applied(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for tp, records in batch.items():
            if records:
                self._applied[tp] = records[-1].offset + 1
        # A rolled-back attempt's timers and events count too: a spurious wake is harmless.
        units, self._units_of_batch = self._units_of_batch, []
        soonest = min((u.timers.soonest for u in units if u.timers.soonest), default=None)
        appended = any(u.appended for u in units)
        if self.on_applied is not None:
            self.on_applied(soonest, appended)
        self._commit_wanted.set()

    async def _commit_in_background(self) -> None:
        """Commit applied offsets at most every ``commit_interval_seconds``, coalescing the
        batches applied meanwhile into one commit. Each commit is a write on the broker (to
        ``__consumer_offsets``): committing after every small batch made offset commits a
        large share of the broker's CPU, which every service's produce and fetch wait on.
        A crash redelivers at most an interval's batches, which the inbox skips; a
        rebalance and a stop commit at once."""
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            if not await self.commit_applied():
                await _sleep_unless(self._stop, 0.5)
            elif self.commit_interval_seconds > 0:
                await _sleep_unless(self._stop, self.commit_interval_seconds)

    async def commit_applied(self) -> bool:
        """Commit the offsets of every applied batch; False when the broker refused."""
        consumer = self._consumer
        async with self._commit_lock:
            offsets, self._applied = self._applied, {}
            if not offsets or consumer is None:
                return True
            try:
                await consumer.commit(offsets)
                return True
            except (CommitFailedError, KafkaError) as exc:
                log.warning("offset commit failed: %s", exc)
                # Keep what is still ours for the next attempt (a newer batch may have
                # superseded it); partitions moved away are redelivered to their new owner.
                owned = consumer.assignment()
                for tp, offset in offsets.items():
                    if tp in owned:
                        self._applied.setdefault(tp, offset)
                self._commit_wanted.set()
                return False

    async def _report_lag(self) -> list[TopicPartition]:
        """Every 2 s: each assigned partition's lag (the gauge), and the partitions that
        stalled — records waiting, the position unmoved for ``stall_seconds`` although this
        loop keeps fetching. aiokafka 0.14's fetcher was seen to stop fetching partitions for
        good after the broker in the consumer's ``client.rack`` was killed and restarted
        (tests/cluster); a stalled partition is never right, so the runner starts over."""
        now = time.monotonic()
        if self._consumer is None or now - self._last_lag_check < 2.0:
            return []
        self._last_lag_check = now
        positions: dict[TopicPartition, tuple[int, int]] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await self._consumer.position(tp)
            except Exception:
                continue
            positions[tp] = (position, highwater)
            metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )
        return stalled_partitions(self._progress, positions, now, self.stall_seconds)


def stalled_partitions(
    progress: dict[TopicPartition, tuple[int, float]],
    positions: Mapping[TopicPartition, tuple[int, int]],
    now: float,
    bound: float,
) -> list[TopicPartition]:
    """Partitions whose position has not moved for more than ``bound`` seconds while the
    high watermark is ahead of it. ``progress`` (partition -> position, since when) is
    updated in place: a partition that moved, caught up or left the assignment starts over."""
    for tp in list(progress):
        if tp not in positions:
            del progress[tp]
    stalled = []
    for tp, (position, highwater) in positions.items():
        seen = progress.get(tp)
        if highwater <= position or seen is None or seen[0] != position:
            progress[tp] = (position, now)
            continue
        if now - seen[1] > bound:
            stalled.append(tp)
    return stalled


def _decode(record: ConsumerRecord[bytes, bytes]) -> _Item:
    try:
        envelope = Envelope.from_record(record.key, record.value, list(record.headers or ()))
        return _Item(record, envelope)
    except DecodeError as exc:
        return _Item(record, None, f"{type(exc).__name__}: {exc}")


async def _safe_stop(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    try:
        await client.stop()
    except Exception:  # stopping a half-started client must not mask the real error
        log.debug("stop failed", exc_info=True)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    await wait_event(stop, seconds)
