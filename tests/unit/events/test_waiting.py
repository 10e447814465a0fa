"""A task waiting on an event with a timeout can always be cancelled.

On Python 3.11, ``asyncio.wait_for(event.wait(), timeout)`` loses a cancellation that
arrives in the few loop turns between the event being set and the waiter resuming: the task
carries on. A consumer's offset committer hit that window when a stop set the event it
slept on and cancelled it a moment later, and the shutdown ran out its grace period
waiting for it (a CI failure: "left after 15.4s, grace is 15.0s")."""

from __future__ import annotations

import asyncio

import pytest

from leadflow.events.waiting import wait_event
from leadflow.testing import WatchedEvent, one_loop_turn, wait_until

TURNS_BEFORE_CANCEL = range(8)
# covers every loop turn of the old window (turns 1-3)


@pytest.mark.parametrize("turns", TURNS_BEFORE_CANCEL)
async def test_a_cancel_arriving_as_the_event_is_set_is_not_lost(turns: int) -> None:
    event = asyncio.Event()
    never = asyncio.Event()

    async def committer() -> None:
        event.set()  # the stop is set just before the wait, as a shutdown does
        await wait_event(event, 30)
        await never.wait()  # the committer's next wait: a lost cancel hangs here

    task = asyncio.create_task(committer())
    for _ in range(turns):
        await one_loop_turn()  # the window is counted in turns
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, f"the cancel after {turns} turns was lost (task still waiting)"
    assert task.cancelled()


async def test_a_cancel_while_waiting_is_delivered() -> None:
    event = WatchedEvent()
    task = asyncio.create_task(wait_event(event, 30))
    await wait_until(lambda: event.waiting, timeout=5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()


async def test_returns_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 30) is True
    assert await wait_event(event, 0) is True  # already set: no wait at all
