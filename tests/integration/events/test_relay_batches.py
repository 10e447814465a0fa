"""The outbox relay sends its rows as record batches per partition: each record still goes
to the partition Kafka's default (murmur2) partitioner gives its key, a lead's events
arrive in stream order even when its partition needs more than one batch, and each record
is stamped with the time it was sent."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from aiokafka.partitioner import DefaultPartitioner

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.envelope import Envelope, new_id, topic_for
from leadflow.events.outbox import MAX_BATCH_BYTES
from leadflow.testing import consume_records

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_records_keep_their_partition_order_and_send_time(settings_for, isolation) -> None:
    kit = make_kit(settings_for(ProbeSettings))
    leads = [new_id() for _ in range(8)]
    blob = "x" * 30_000
    big_events = MAX_BATCH_BYTES // len(blob) + 5  # more than one batch of its partition
    await kit.start()
    try:
        sent_after = time.time()
        async with kit.unit_of_work() as uow:
            for i in range(big_events):
                await uow.append(
                    leads[0],
                    ActivityRecorded(
                        activity_id=f"big{i}", activity_type="download", properties={"b": blob}
                    ),
                )
            for n in range(200):
                await uow.append(
                    leads[n % len(leads)],
                    ActivityRecorded(activity_id=f"a{n}", activity_type="page_view"),
                )
        total = big_events + 200
        records = await consume_records(
            isolation.kafka_bootstrap,
            topic_for("scoring", isolation.topic_prefix),
            until=lambda got: len(got) >= total,
        )
        received_by = time.time()
    finally:
        await kit.stop()

    assert len(records) == total
    partitions = list(range(kit.topic_partitions))
    versions: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        assert sent_after * 1000 - 1 <= record.timestamp <= received_by * 1000 + 1
        event = Envelope.from_record(record.key, record.value, list(record.headers))
        versions[record.key].append(event.stream_version)
    for lead in leads:
        got = versions[str(lead).encode()]
        assert got == list(range(1, len(got) + 1))  # every event, in stream order
    assert len(versions[str(leads[0]).encode()]) == big_events + 200 // len(leads)
