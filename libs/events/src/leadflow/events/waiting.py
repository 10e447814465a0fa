"""Waiting on an ``asyncio.Event`` with a timeout, without losing a cancellation.

Every loop in the kernel sleeps "until woken or until the poll interval passes". Python
3.11's ``asyncio.wait_for`` swallows a cancellation that arrives while the awaited event
is already set but the waiter has not resumed yet (3.12 rebuilt it on ``asyncio.timeout``):
the cancelled task carries on as if nothing happened. A consumer's offset committer did
exactly that when a stop set the event it slept on and cancelled it a moment later; it
then waited for a commit request that never came, and the shutdown ran out its grace
period. ``asyncio.timeout`` delivers the cancellation whatever state the event is in.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True when it is set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
