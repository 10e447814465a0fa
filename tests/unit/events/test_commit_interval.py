"""Kafka offsets of applied batches are committed at most once per commit interval: the
batches applied meanwhile coalesce into one commit (each commit is a broker write)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import TopicPartition

from leadflow.events.consumer import ConsumerRunner
from leadflow.testing import WatchedEvent, wait_until

TP = TopicPartition("leadflow.intake", 0)


@dataclass
class Record:
    offset: int


class RecordingConsumer:
    def __init__(self) -> None:
        self.commits: list[tuple[float, dict[TopicPartition, int]]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append((time.perf_counter(), dict(offsets)))


def runner(interval: float) -> tuple[ConsumerRunner, RecordingConsumer]:
    r = ConsumerRunner(
        db=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        clock=None,  # type: ignore[arg-type]
        bootstrap_servers="unused:9092",
        topics=[TP.topic],
        group_id="test",
        handlers={},
        service="test",
        commit_interval_seconds=interval,
    )
    r._stop = WatchedEvent()
    consumer = RecordingConsumer()
    r._consumer = consumer
    return r, consumer


@contextlib.asynccontextmanager
async def committing(r: ConsumerRunner) -> AsyncIterator[None]:
    """The runner's background committer, running for the block."""
    committer = asyncio.create_task(r._commit_in_background())
    try:
        yield
    finally:
        committer.cancel()
        await asyncio.gather(committer, return_exceptions=True)


def applied(r: ConsumerRunner, last_offset: int) -> None:
    r._mark_applied({TP: [Record(last_offset)]})


async def test_batches_applied_within_the_interval_are_committed_together_after_it() -> None:
    interval = 0.6
    r, consumer = runner(interval)
    async with committing(r):
        applied(r, 9)
        await wait_until(lambda: len(consumer.commits) == 1, timeout=5)
        applied(r, 19)
        applied(r, 29)
        # The committer waits out its interval (on the stop event) with both batches applied.
        await wait_until(lambda: r._stop.waiting, timeout=5)  # type: ignore[attr-defined]
        assert len(consumer.commits) == 1  # still inside the interval
        await wait_until(lambda: len(consumer.commits) == 2, timeout=5)
        (first_at, first), (second_at, second) = consumer.commits
        assert first == {TP: 10}
        assert second == {TP: 30}  # both later batches, in one commit
        assert second_at - first_at >= interval * 0.9


async def test_with_no_interval_every_batch_is_committed_as_it_is_applied() -> None:
    r, consumer = runner(0)
    async with committing(r):
        for n, last in enumerate((9, 19, 29), start=1):
            applied(r, last)
            await wait_until(lambda n=n: len(consumer.commits) == n, timeout=5)  # type: ignore[misc]
        assert [c for _, c in consumer.commits] == [{TP: 10}, {TP: 20}, {TP: 30}]


async def test_stopping_ends_the_wait_and_commits_what_was_applied() -> None:
    r, consumer = runner(60.0)
    async with committing(r):
        applied(r, 9)
        await wait_until(lambda: len(consumer.commits) == 1, timeout=5)
        applied(r, 19)
        r.stop()  # the committer stops waiting out its 60 s and commits the second batch
        await wait_until(lambda: len(consumer.commits) == 2, timeout=5)
        assert consumer.commits[-1][1] == {TP: 20}
