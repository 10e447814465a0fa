"""The launcher stops and starts the broker mid-test while an idempotent producer keeps
sending: every record arrives, none twice, in the order sent."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadflow.testing import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOPIC = "foundation.restart"


async def test_producer_across_broker_restart_loses_and_duplicates_nothing(private_kafka) -> None:
    bootstrap = private_kafka.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=180_000,  # batches wait out the outage instead of expiring
        retry_backoff_ms=200,
        linger_ms=5,
    )
    await producer.start()
    futures: list[asyncio.Future] = []
    acked = 0
    stop = asyncio.Event()

    def on_ack(_fut: asyncio.Future) -> None:
        nonlocal acked
        acked += 1

    async def keep_sending() -> None:
        seq = 0
        while not stop.is_set():
            fut = await producer.send(TOPIC, value=str(seq).encode(), key=b"one-lead")
            fut.add_done_callback(on_ack)
            futures.append(fut)
            seq += 1
            with contextlib.suppress(TimeoutError):  # a steady trickle until told to stop
                await asyncio.wait_for(stop.wait(), 0.005)

    sender = asyncio.create_task(keep_sending())
    try:
        await wait_until(lambda: acked >= 200, timeout=60, message="acks before the restart")
        await asyncio.to_thread(private_kafka.stop)
        sent_while_down = len(futures)
        await wait_until(  # the producer keeps sending into the outage
            lambda: len(futures) >= sent_while_down + 50, timeout=90, message="sent while down"
        )
        await asyncio.to_thread(private_kafka.start)
        target = len(futures) + 200
        await wait_until(lambda: acked >= target, timeout=180, message="acks after the restart")
        stop.set()
        await sender
        await asyncio.wait_for(asyncio.gather(*futures), timeout=180)  # none failed
    finally:
        stop.set()
        if not sender.done():
            sender.cancel()
        await producer.stop()
    total = len(futures)
    assert total > sent_while_down  # the producer really kept sending around the restart

    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[int] = []
    try:

        async def fetch() -> bool:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                values.extend(int(r.value) for r in records)
            return len(values) >= total

        await wait_until(fetch, timeout=60, message=f"{total} records back")
        extra = await consumer.getmany(timeout_ms=1000)  # nothing beyond what was sent
        values.extend(int(r.value) for records in extra.values() for r in records)
    finally:
        await consumer.stop()
    assert values == list(range(total))
    # The broker's own log tells the story too (it once fell silent: an slf4j 1.7 API beside
    # the slf4j2 binding meant the no-op logger), one start-up per start.
    starts = private_kafka.log_path.read_text().count("Transition from STARTING to STARTED")
    assert starts == 2, f"broker.log shows {starts} start-ups, expected 2"
