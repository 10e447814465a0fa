"""Baselines the service benchmarks are measured against, in the same run, and the pieces
those benchmarks share.

``raw_consume_produce`` is what a bare aiokafka service would do with the same records:
consume, decode, produce, commit. A service's events/s divided by this is its ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadflow.events.db import plain_url
from leadflow.events.envelope import Envelope
from leadflow.events.settings import ServiceSettings
from leadflow.events.topics import ensure_topics
from leadflow.testing import produce_events


async def raw_consume_produce(bootstrap: str, prefix: str, events: list[Envelope]) -> float:
    """Seconds for raw aiokafka to consume ``events`` and produce each once more."""
    src, dst = f"{prefix}raw.in", f"{prefix}raw.out"
    await ensure_topics(bootstrap, [src, dst], 3)
    started = time.perf_counter()
    await produce_events(bootstrap, src, events)
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < len(events):
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            futures = []
            for records in batch.values():
                for r in records:
                    env = Envelope.from_record(r.key, r.value, list(r.headers or ()))
                    futures.append(await producer.send(dst, value=env.to_json(), key=r.key))
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


# -- shared pieces of the service benchmarks -------------------------------------------------

S = TypeVar("S", bound=ServiceSettings)


def bench_settings(
    cls: type[S], bootstrap: str, database_url: str, prefix: str, schema: str, **extra: Any
) -> S:
    """A service's settings for a benchmark: scratch schema and topic prefix, quiet logs."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "db_schema": schema,
        "topic_prefix": prefix,
        "admin_token": "bench",
        "log_level": "WARNING",
        "log_json": False,
        "outbox_poll_seconds": 0.2,
    }
    return cls(**{**values, **extra})


@contextlib.asynccontextmanager
async def topic_reader(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less reader of a service's output topic, from the beginning."""
    out = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await out.start()
    try:
        yield out
    finally:
        await out.stop()


async def count_records(
    out: AIOKafkaConsumer, n: int, *, event_type: str | None = None, deadline_s: float = 900
) -> None:
    """Read until ``n`` records (of ``event_type``, when given) arrived, or time out."""
    wanted = event_type.encode() if event_type else None
    deadline = time.perf_counter() + deadline_s
    seen = 0
    while seen < n:
        batch = await out.getmany(timeout_ms=500)
        for records in batch.values():
            seen += sum(
                1
                for r in records
                if wanted is None or dict(r.headers or ()).get("event_type") == wanted
            )
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {seen}/{n} records in {deadline_s:.0f} s")


def bench_infra() -> tuple[str, str]:
    """(bootstrap servers, database url) from the environment, or exit saying what is missing."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("DATABASE_URL")
    if not bootstrap or not database_url:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (see the docstring)")
    return bootstrap, database_url


async def drop_schema(database_url: str, schema: str) -> None:
    """Remove a benchmark's scratch schema."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
