"""The outbox's cached partitioner puts every key where Kafka's default partitioner would."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given
from hypothesis import strategies as st

from leadflow.events.outbox import KeyPartitionCache, murmur2


def test_cached_partitions_match_the_default_partitioner_for_every_key_and_count() -> None:
    cache = KeyPartitionCache(max_keys=50)
    default = DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(200)]
    for partitions in (1, 3, 6, 12):
        every = list(range(partitions))
        for key in keys + keys:  # the second round is answered from the cache (or refilled)
            assert cache(key, every, every) == default(key, every, every)


def test_keyless_records_go_to_an_available_partition() -> None:
    cache = KeyPartitionCache()
    assert {cache(None, [0, 1, 2], [1]) for _ in range(20)} == {1}


@given(st.binary(max_size=80))
def test_murmur2_equals_the_reference_implementation(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)
