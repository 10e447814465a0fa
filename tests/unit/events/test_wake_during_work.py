"""A wake() that arrives while the projection runner steps (or the timer runner sweeps) is
not lost: the runner goes round again at once instead of sleeping until its next poll.

The lost wake was a latency bug: a consumer batch committed while the projection runner's
step read the log before it, and the batch waited a whole poll to be projected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from leadflow.events.clock import ManualClock
from leadflow.events.outbox import OutboxRelay
from leadflow.events.projection import ProjectionRunner
from leadflow.events.timer_runner import TimerRunner
from leadflow.testing import WatchedEvent, one_loop_turn, wait_until

LONG_POLL = 60.0  # a runner that sleeps until its poll would fail the deadline below


class Counted:
    """Counts calls; the first call wakes the runner mid-way (after an await)."""

    def __init__(self, wake: Callable[[], None], result: int = 0) -> None:
        self.calls = 0
        self.wake = wake
        self.result = result

    async def __call__(self, *_: Any) -> int:
        self.calls += 1
        await one_loop_turn()
        if self.calls == 1:
            self.wake()  # "a batch committed while we were reading"
        await one_loop_turn()
        return self.result


async def _second_call_soon(
    task_of: Callable[[], Any], stop: Callable[[], None], calls: Callable[[], int]
) -> float:
    started = time.perf_counter()
    task = asyncio.create_task(task_of())
    try:
        await wait_until(lambda: calls() >= 2, timeout=5)
    finally:
        stop()
        await asyncio.wait_for(task, timeout=5)
    return time.perf_counter() - started


class _Probe:
    name = "probe"

    async def apply(self, *_: Any) -> None:
        raise AssertionError("not stepped for real in this test")

    async def clear(self, *_: Any) -> None:
        raise AssertionError("not cleared in this test")


async def _no_events(*_: Any) -> list[Any]:
    return []


def projection_runner(batch: int = 2000) -> ProjectionRunner:
    """A runner whose steps the test replaces (no database)."""
    return ProjectionRunner(
        None,  # type: ignore[arg-type]
        [_Probe()],
        _no_events,
        _no_events,  # type: ignore[arg-type]
        service="test",
        poll_seconds=LONG_POLL,
        batch=batch,
    )


async def test_a_projection_wake_during_a_step_makes_the_runner_step_again_at_once() -> None:
    runner = projection_runner()
    step = Counted(runner.wake)
    runner.step = step  # type: ignore[method-assign, assignment]
    took = await _second_call_soon(runner.run, runner.stop, lambda: step.calls)
    assert took < LONG_POLL / 2


async def test_a_projection_step_short_of_a_full_batch_waits_for_a_wake() -> None:
    """No wake, batch not full: nothing is known to be waiting, so it sleeps (no empty
    transaction right after every batch)."""
    runner = projection_runner(batch=10)
    wake = runner._wake = WatchedEvent()
    step = Counted(lambda: None, result=3)
    runner.step = step  # type: ignore[method-assign, assignment]
    calls_before_the_wake = await _waits_after_partial_batches(
        runner, wake, step, runner.run(), full=10
    )
    assert calls_before_the_wake == 1


class _Woken(Protocol):
    def wake(self) -> None: ...

    def stop(self) -> None: ...


async def _waits_after_partial_batches(
    runner: _Woken, wake: WatchedEvent, step: Counted, work: Coroutine[Any, Any, None], full: int
) -> int:
    """Runs ``work`` while ``step`` returns a partial batch until it idles on its wake, then
    wakes it twice, the second time with a full batch (``full``), which must go round again
    without a wake (the deadlines fail otherwise). Returns the calls made before the first
    wake: one, when a partial batch waits for a wake."""
    task = asyncio.create_task(work)
    await wait_until(lambda: step.calls >= 1 and wake.waiting, timeout=5)
    calls_before_the_wake = step.calls
    runner.wake()
    await wait_until(lambda: step.calls >= 2, timeout=5)
    step.result = full
    runner.wake()
    await wait_until(lambda: step.calls >= 4, timeout=5)
    runner.stop()
    await asyncio.wait_for(task, timeout=5)
    return calls_before_the_wake


async def test_a_timer_wake_during_a_sweep_makes_the_runner_sweep_again_at_once() -> None:
    async def no_uow(*_: Any) -> Any:
        raise AssertionError("no sweep in this test")

    runner = TimerRunner(
        None,  # type: ignore[arg-type]
        {},
        ManualClock(),
        no_uow,
        service="test",
        poll_seconds=LONG_POLL,
    )
    sweep = Counted(runner.wake)
    runner.run_due = sweep  # type: ignore[method-assign]
    took = await _second_call_soon(runner.run, runner.stop, lambda: sweep.calls)
    assert took < LONG_POLL / 2


class _Conn:
    """The relay's connection as far as its depth gauge goes."""

    async def fetchval(self, *_: Any) -> int:
        return 0


async def test_an_outbox_batch_short_of_full_waits_for_a_wake_before_the_next_fetch() -> None:
    """After a partial batch the relay does not fetch again at once (an empty fetch after
    every batch doubled its statements); a wake or a full batch sends it round again."""
    relay = OutboxRelay(
        database_url="postgresql://unused/db",
        schema="test",
        bootstrap_servers="unused:9092",
        service="test",
        batch_size=10,
        poll_seconds=LONG_POLL,
    )
    wake = relay._wake = WatchedEvent()
    fetch = Counted(lambda: None, result=3)
    relay._publish_batch = fetch  # type: ignore[method-assign, assignment]
    drain = relay._drain_forever(_Conn(), None)
    calls_before_the_wake = await _waits_after_partial_batches(relay, wake, fetch, drain, full=10)
    assert calls_before_the_wake == 1
