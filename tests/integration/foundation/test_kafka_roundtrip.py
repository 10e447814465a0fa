"""A keyed record through the real broker with aiokafka: key, value, headers and order kept."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadflow.testing import wait_until

pytestmark = [pytest.mark.kafka]


async def test_keyed_records_arrive_with_key_value_headers_in_order(isolation) -> None:
    topic = f"{isolation.topic_prefix}foundation.roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=isolation.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=isolation.kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    sent = []
    try:
        for i in range(50):
            key = f"lead-{i % 2}".encode()
            headers = [("event_type", b"probe.sent"), ("seq", str(i).encode())]
            sent.append((key, f'{{"seq": {i}}}'.encode(), headers))
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in sent]
        metadata = [await f for f in futures]
    finally:
        await producer.stop()
    # one key, one partition: what a lead's events rely on
    by_key = {k: {m.partition for (kk, _, _), m in zip(sent, metadata, strict=True) if kk == k}
              for k, _, _ in sent}  # fmt: skip
    assert all(len(parts) == 1 for parts in by_key.values())

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=isolation.kafka_bootstrap,
        group_id=f"{isolation.topic_prefix}foundation",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list = []
    try:

        async def fetch() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                received.extend(records)
            return len(received) >= 50

        await wait_until(fetch, timeout=90, message="50 records consumed")
    finally:
        await consumer.stop()
    assert len(received) == 50
    for key in by_key:
        got = [(r.key, r.value, list(r.headers)) for r in received if r.key == key]
        want = [(k, v, h) for k, v, h in sent if k == key]
        assert got == want  # same key, value, headers, and the order they were sent in
