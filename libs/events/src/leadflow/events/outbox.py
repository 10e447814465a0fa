"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One relay per service is active at a time (a session advisory lock; the others wait as hot
standbys). It is woken by its own process's writers after they commit (``ServiceKit``), by
``LISTEN/NOTIFY`` from ``EventStore.append`` in any other process, and polls as a fallback;
it sends rows in id order through an idempotent producer (``acks=all``), and deletes them only
after the broker acknowledged every one (with the next fetch, in the same statement). With
Kafka down, rows simply wait; nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from leadflow.events import metrics
from leadflow.events.db import plain_url
from leadflow.events.waiting import wait_event

log = logging.getLogger("leadflow.outbox")
# Records per produce request: up to this many bytes per partition (the broker's default
# message.max.bytes is 1 MiB), so a busy outbox costs the broker few requests.
MAX_BATCH_BYTES = 512 * 1024
# How often the outbox depth gauge may be counted while rows pile up (see _report_depth).
DEPTH_COUNT_SECONDS = 2.0


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def relay_application_name(service: str) -> str:
    """The relay's session name in ``pg_stat_activity``: ``<service>-outbox <host>:<pid>``.

    With several replicas one relay holds the advisory lock and the others wait; which one
    (the pod, the process) is then one query away (``outbox_leader``), for an operator
    after a failover and for the cluster test that proves the lock moved."""
    return f"{service}-outbox {socket.gethostname()}:{os.getpid()}"[:63]


async def outbox_leader(database_url: str, schema: str) -> str | None:
    """The ``application_name`` of the session holding ``schema``'s relay lock (None:
    no relay is active)."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        name = await conn.fetchval(
            "SELECT a.application_name FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            # a bigint key is held as (classid, objid) = its high and low words
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1) "
            "AND l.objsubid = 1",
            f"{schema}.outbox",
        )
        return str(name) if name is not None else None
    finally:
        await conn.close()


class OutboxRelay:
    def __init__(
        self,
        *,
        database_url: str,
        schema: str,
        bootstrap_servers: str,
        service: str,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        linger_ms: int = 2,
    ) -> None:
        self.database_url = plain_url(database_url)
        self.schema = schema
        self.bootstrap_servers = bootstrap_servers
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_ms = linger_ms
        self.channel = notify_channel(schema)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.active = asyncio.Event()
        self.published = 0
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = KeyPartitionCache()
        # Rows the broker acknowledged, deleted by the next fetch (one round trip, not two).
        self._acked: list[int] = []
        self._depth_counted_at = -DEPTH_COUNT_SECONDS

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                await self._run_once()
                delay = 0.2
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
                log.warning("outbox relay interrupted (%r); restarting in %.1fs", exc, delay)
            except Exception:
                log.exception("outbox relay failed; restarting in %.1fs", delay)
            finally:
                self.active.clear()
            if not self._stop.is_set():
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _run_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.database_url,
            server_settings={
                "search_path": f'"{self.schema}"',
                "application_name": relay_application_name(self.service),
            },
        )
        try:
            # Session-level lock: released automatically if this process dies.
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1))", f"{self.schema}.outbox"
            ):
                if await self._sleep(2.0):
                    return
            await conn.add_listener(self.channel, self._on_notify)
            producer = await self._start_producer(conn)
            if producer is None:
                return
            self.active.set()
            try:
                await self._drain_forever(conn, producer)
                await self._forget_acked(conn)
            finally:
                self._producer = None
                await producer.stop()
        finally:
            await conn.close(timeout=2)

    async def _start_producer(self, conn: asyncpg.Connection) -> AIOKafkaProducer | None:
        delay = 0.2
        while not self._stop.is_set():
            await self._report_depth(conn)  # the broker is away: what piles up is the news
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                enable_idempotence=True,
                acks="all",
                linger_ms=self.linger_ms,
                max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=15_000,
                client_id=f"{self.service}-outbox",
            )
            try:
                await producer.start()
                self._producer = producer
                return producer
            except (KafkaError, OSError) as exc:
                log.warning("kafka not reachable for outbox (%s); retry in %.1fs", exc, delay)
                try:
                    await producer.stop()
                except Exception:
                    log.debug("producer stop failed", exc_info=True)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
        return None

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _report_depth(self, conn: asyncpg.Connection) -> None:
        """Count the unpublished rows, at most every ``DEPTH_COUNT_SECONDS``: ``count(*)``
        walks a table whose every row is inserted and deleted (8 ms a count at 200 leads/s,
        a twentieth of the database's statement time), so it runs only while rows pile up."""
        now = time.monotonic()
        if now - self._depth_counted_at < DEPTH_COUNT_SECONDS:
            return
        self._depth_counted_at = now
        depth = await conn.fetchval("SELECT count(*) FROM outbox")
        metrics.OUTBOX_DEPTH.labels(self.service).set(max(0, depth - len(self._acked)))

    async def _drain_forever(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            sent = await self._publish_batch(conn, producer)
            if sent >= self.batch_size:
                await self._report_depth(conn)
                continue  # a full batch: more are waiting
            # A short fetch saw every row committed before it, and they are now published.
            metrics.OUTBOX_DEPTH.labels(self.service).set(0)
            # Short of a full batch, nothing more is known to be waiting: a row committed after
            # the fetch's snapshot notifies after it and wakes us again. The acked rows go with
            # the next fetch, whenever it comes: one statement per wake, not a second, empty
            # fetch after every batch.
            await self._sleep(self.poll_seconds)

    async def _publish_batch(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        rows = await conn.fetch(_DELETE_ACKED_AND_FETCH, self._acked, self.batch_size)
        self._acked = []
        if not rows:
            return 0
        # Every record acknowledged before any row goes; on failure all stay and are resent
        # (consumers dedup by event_id, so a resend is harmless).
        await asyncio.gather(*await self._send(producer, rows))
        self._acked = [r["id"] for r in rows]  # deleted by the next fetch (or on stop)
        acked = time.time()
        publish_latency = metrics.PUBLISH_LATENCY.labels(self.service)
        for row in rows:
            publish_latency.observe(max(0.0, acked - row["created_at"].timestamp()))
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        self.published += len(rows)
        return len(rows)

    async def _send(
        self, producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record]
    ) -> list[asyncio.Future[Any]]:
        """The rows as record batches, one per partition (more when one fills up), each
        filled in row order so a lead's events stay in order. ``producer.send`` per record
        cost about four times the CPU: a coroutine, a future and the partitioner each."""
        futures: list[asyncio.Future[Any]] = []
        partitions_of: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], BatchBuilder] = {}
        for row in rows:
            topic, key = row["topic"], bytes(row["key"])
            partitions = partitions_of.get(topic)
            if partitions is None:
                partitions = partitions_of[topic] = sorted(await producer.partitions_for(topic))
            partition = self._partitioner(key, partitions, partitions)
            record = {
                "timestamp": None,  # now: the time it was sent
                "key": key,
                "value": bytes(row["value"]),
                "headers": [(k, v.encode()) for k, v in orjson.loads(row["headers"]).items()],
            }
            batch = filling.get((topic, partition))
            if batch is not None and batch.append(**record) is None:  # full
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = None
            if batch is None:
                batch = filling[(topic, partition)] = producer.create_batch()
                batch.append(**record)  # an empty batch takes any record
        for (topic, partition), batch in filling.items():
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _forget_acked(self, conn: asyncpg.Connection) -> None:
        if self._acked:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", self._acked)
            self._acked = []

    async def _sleep(self, seconds: float) -> bool:
        """Sleep until woken, stopped or timed out; True when stopping."""
        await wait_event(self._wake, seconds)
        return self._stop.is_set()


# The rows of the last batch the broker acknowledged go, and the next batch is read, in one
# statement. The CTE's delete is not visible to the select (one snapshot), hence the filter.
_DELETE_ACKED_AND_FETCH = """
    WITH acked AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]))
    SELECT id, topic, key, value, headers, created_at FROM outbox
    WHERE id <> ALL($1::bigint[]) ORDER BY id LIMIT $2
"""


class KeyPartitionCache:
    """Kafka's default partitioner for keyed records (murmur2 of the key, as the Java client
    and aiokafka's ``DefaultPartitioner``), remembered per key: a lead's events all carry
    its key, so most records of a busy outbox hit the cache."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._partition: dict[tuple[bytes, int], int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        cache_key = (key, len(all_partitions))
        partition = self._partition.get(cache_key)
        if partition is None:
            if len(self._partition) >= self.max_keys:
                self._partition.clear()
            index = (murmur2(key) & 0x7FFFFFFF) % len(all_partitions)
            partition = self._partition[cache_key] = all_partitions[index]
        return partition


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``, unsigned), equal to
    aiokafka's but about three times as fast: the words are unpacked at once and masked
    only where a product can pass 32 bits (aiokafka's costs ~11 µs for a lead id)."""
    length = len(data)
    h = 0x9747B28C ^ length
    body = length & ~3
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail >= 3:
        h ^= data[body + 2] << 16
    if tail >= 2:
        h ^= data[body + 1] << 8
    if tail >= 1:
        h = ((h ^ data[body]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


async def outbox_depth(database_url: str, schema: str) -> int:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox'))
    finally:
        await conn.close()
