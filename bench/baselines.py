"""Baselines the service benchmarks are measured against, in the same run.

``raw_consume_produce`` is what a bare aiokafka service would do with the same records:
consume, decode, produce, commit. A service's events/s divided by this is its ratio.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadflow.events.envelope import Envelope
from leadflow.events.service import ensure_topics
from leadflow.events.testing import produce_events


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
