"""Group commit of single inquiries: who shares a transaction, and when a second one starts.

The transaction and the batch work are stand-ins here: what is tested is the scheduling
(the SQL of a batch is covered by the integration tests through the real endpoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from leadflow.intake import batching
from leadflow.intake.batching import InquiryBatcher, Outcome, Pending
from leadflow.testing import one_loop_turn, wait_until


class FakeTransactions:
    """Records each transaction's batch; a transaction can be held open with ``hold``."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gates: list[asyncio.Event] = []
        self.started: list[float] = []  # loop time each transaction started

    def hold(self) -> asyncio.Event:
        gate = asyncio.Event()
        self.gates.append(gate)
        return gate

    async def __call__(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        self.started.append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            gate = self.gates.pop(0) if self.gates else None
            if gate is not None:
                await gate.wait()
            return await work(None)
        finally:
            self.in_flight -= 1


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> FakeTransactions:
    fake = FakeTransactions()

    async def process(uow: Any, batch: list[Pending]) -> list[Outcome]:
        fake.batches.append([p.item for p in batch])
        return [Outcome({"item": p.item}) for p in batch]

    monkeypatch.setattr(batching, "process", process)
    return fake


def pending(n: int) -> Pending:
    return Pending(item=n)  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool]) -> None:
    """Let the event loop run until ``predicate`` holds."""
    await wait_until(predicate, timeout=5, interval=0.001, message="condition never held")


async def test_an_idle_request_is_committed_at_once_in_its_own_transaction(
    transactions: FakeTransactions,
) -> None:
    batcher = InquiryBatcher(transactions, max_batch=8, concurrency=4)
    outcome = await asyncio.wait_for(batcher.submit(pending(1)), timeout=5)
    assert outcome.answer == {"item": 1}
    assert transactions.batches == [[1]]


async def test_requests_arriving_during_a_transaction_share_the_next_one(
    transactions: FakeTransactions,
) -> None:
    batcher = InquiryBatcher(transactions, max_batch=64, concurrency=4)
    gate = transactions.hold()
    first = asyncio.create_task(batcher.submit(pending(0)))
    await until(lambda: transactions.in_flight == 1)
    rest = [asyncio.create_task(batcher.submit(pending(n))) for n in range(1, 11)]
    await until(lambda: len(batcher._queue) == 10)
    assert transactions.in_flight == 1  # no second transaction for a partial batch
    gate.set()
    answers = await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5)
    assert [a.answer["item"] for a in answers] == list(range(11))
    assert transactions.batches == [[0], list(range(1, 11))]
    assert transactions.most_in_flight == 1


async def test_a_second_transaction_starts_while_a_full_batch_waits(
    transactions: FakeTransactions,
) -> None:
    batcher = InquiryBatcher(transactions, max_batch=4, concurrency=2)
    gate = transactions.hold()
    first = asyncio.create_task(batcher.submit(pending(0)))
    await until(lambda: transactions.in_flight == 1)
    full = [asyncio.create_task(batcher.submit(pending(n))) for n in range(1, 5)]
    # The full batch is committed while the first transaction is still open.
    await asyncio.wait_for(asyncio.gather(*full), timeout=5)
    assert transactions.batches == [[1, 2, 3, 4]]
    assert transactions.most_in_flight == 2
    gate.set()
    await asyncio.wait_for(first, timeout=5)
    assert transactions.batches == [[1, 2, 3, 4], [0]]


async def test_a_request_sent_right_after_an_answer_is_never_left_waiting(
    transactions: FakeTransactions,
) -> None:
    """A keep-alive client sends its next inquiry as soon as its answer arrives, which can be
    before the finished flusher task is gone; that request must still get a transaction."""
    batcher = InquiryBatcher(transactions, max_batch=8, concurrency=1)

    async def client() -> list[int]:
        seen: list[int] = []
        for _ in range(20):
            outcome = await batcher.submit(pending(len(transactions.batches)))
            seen.append(outcome.answer["item"])
        return seen

    answered = await asyncio.wait_for(client(), timeout=5)
    assert len(answered) == 20
    assert len(transactions.batches) == 20


async def overlapping_pair(batcher: InquiryBatcher, transactions: FakeTransactions) -> None:
    """Requests 0, then 1 and 2 while 0's transaction is open: the last transaction carried
    two inquiries (requests overlap)."""
    gate = transactions.hold()
    first = asyncio.create_task(batcher.submit(pending(0)))
    await until(lambda: transactions.in_flight == 1)
    pair = [asyncio.create_task(batcher.submit(pending(n))) for n in (1, 2)]
    await until(lambda: len(batcher._queue) == 2)
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, *pair), timeout=5)
    assert transactions.batches == [[0], [1, 2]]


async def test_while_requests_overlap_transactions_start_an_interval_apart_and_fill_up(
    transactions: FakeTransactions,
) -> None:
    interval = 0.2
    batcher = InquiryBatcher(transactions, max_batch=64, concurrency=4, interval=interval)
    await overlapping_pair(batcher, transactions)
    # The next request waits for the interval, and whatever arrives meanwhile joins it.
    later = [asyncio.create_task(batcher.submit(pending(n))) for n in (3, 4)]
    await one_loop_turn()
    late = asyncio.create_task(batcher.submit(pending(5)))
    answers = await asyncio.wait_for(asyncio.gather(*later, late), timeout=5)
    assert [a.answer["item"] for a in answers] == [3, 4, 5]
    assert transactions.batches[2:] == [[3, 4, 5]]
    assert transactions.started[2] - transactions.started[1] >= interval


async def test_a_client_sending_one_request_at_a_time_is_never_held_back(
    transactions: FakeTransactions,
) -> None:
    """Nothing overlaps a lone client's requests: each goes at once, whatever the interval."""
    batcher = InquiryBatcher(transactions, max_batch=8, concurrency=1, interval=60.0)
    for n in range(5):
        outcome = await asyncio.wait_for(batcher.submit(pending(n)), timeout=5)
        assert outcome.answer == {"item": n}
    assert transactions.batches == [[n] for n in range(5)]


async def test_a_full_batch_is_not_held_back_by_the_interval(
    transactions: FakeTransactions,
) -> None:
    batcher = InquiryBatcher(transactions, max_batch=3, concurrency=1, interval=60.0)
    await overlapping_pair(batcher, transactions)
    full = [asyncio.create_task(batcher.submit(pending(3)))]
    await until(lambda: batcher._running == 1)  # its flusher waits out the interval
    full += [asyncio.create_task(batcher.submit(pending(n))) for n in (4, 5)]
    answers = await asyncio.wait_for(asyncio.gather(*full), timeout=5)
    assert [a.answer["item"] for a in answers] == [3, 4, 5]
    assert transactions.batches[2:] == [[3, 4, 5]]
