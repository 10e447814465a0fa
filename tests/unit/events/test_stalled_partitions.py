"""A consumer restarts when an assigned partition has records waiting and its position does
not move for longer than the bound, although the runner keeps fetching (a wedged fetcher:
seen with aiokafka 0.14 after the broker in the consumer's client.rack restarted)."""

from __future__ import annotations

from aiokafka import TopicPartition

from leadflow.events.consumer import stalled_partitions

TP = TopicPartition("leadflow.intake", 1)
OTHER = TopicPartition("leadflow.intake", 2)


def test_a_partition_with_lag_and_no_progress_past_the_bound_is_stalled() -> None:
    progress: dict[TopicPartition, tuple[int, float]] = {}
    assert stalled_partitions(progress, {TP: (10, 20)}, 0.0, 30.0) == []
    assert stalled_partitions(progress, {TP: (10, 25)}, 29.0, 30.0) == []
    assert stalled_partitions(progress, {TP: (10, 25)}, 31.0, 30.0) == [TP]


def test_moving_or_caught_up_partitions_start_over() -> None:
    progress: dict[TopicPartition, tuple[int, float]] = {}
    stalled_partitions(progress, {TP: (10, 20), OTHER: (5, 5)}, 0.0, 30.0)
    # TP moved, OTHER is caught up (no lag): neither is stalled, however long it has been
    assert stalled_partitions(progress, {TP: (11, 20), OTHER: (5, 5)}, 40.0, 30.0) == []
    assert stalled_partitions(progress, {TP: (11, 20), OTHER: (5, 5)}, 60.0, 30.0) == []
    assert stalled_partitions(progress, {TP: (11, 20), OTHER: (5, 5)}, 71.0, 30.0) == [TP]


def test_a_partition_that_catches_up_then_lags_again_counts_from_then() -> None:
    progress: dict[TopicPartition, tuple[int, float]] = {}
    stalled_partitions(progress, {TP: (10, 10)}, 0.0, 30.0)  # caught up
    stalled_partitions(progress, {TP: (10, 10)}, 50.0, 30.0)  # still caught up
    assert stalled_partitions(progress, {TP: (10, 12)}, 52.0, 30.0) == []  # records arrive
    assert stalled_partitions(progress, {TP: (10, 12)}, 79.0, 30.0) == []  # 29 s since 50
    assert stalled_partitions(progress, {TP: (10, 12)}, 81.0, 30.0) == [TP]


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    progress: dict[TopicPartition, tuple[int, float]] = {}
    stalled_partitions(progress, {TP: (10, 20)}, 0.0, 30.0)
    assert stalled_partitions(progress, {}, 10.0, 30.0) == []
    assert progress == {}
