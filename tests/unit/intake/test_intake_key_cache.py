"""The API-key cache: requests that miss together share one lookup; a revocation (clear)
is never undone by a lookup that started before it."""

from __future__ import annotations

import asyncio

from leadflow.intake.security import ApiKey, KeyCache
from leadflow.testing import wait_until

KEY = ApiKey("k1", "web", frozenset({"inquiries"}), None, revoked=False)
REVOKED = ApiKey("k1", "web", frozenset({"inquiries"}), None, revoked=True)


async def test_requests_that_miss_together_share_one_lookup() -> None:
    cache = KeyCache(ttl=60)
    loads = 0
    release = asyncio.Event()

    async def load() -> ApiKey | None:
        nonlocal loads
        loads += 1
        await release.wait()
        return KEY

    entered = 0

    async def request() -> ApiKey | None:
        nonlocal entered
        entered += 1  # runs on into lookup() before any other task does
        return await cache.lookup("h", load)

    waiting = [asyncio.create_task(request()) for _ in range(32)]
    await wait_until(lambda: entered == 32, timeout=5, interval=0.001)
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), timeout=5) == [KEY] * 32
    assert loads == 1
    # ...and the answer is cached for the next request.
    assert await cache.lookup("h", load) == KEY
    assert loads == 1


async def test_one_cancelled_request_does_not_cancel_the_shared_lookup() -> None:
    cache = KeyCache(ttl=60)
    release = asyncio.Event()

    async def load() -> ApiKey | None:
        await release.wait()
        return KEY

    loads = 0

    async def counted() -> ApiKey | None:
        nonlocal loads
        loads += 1
        return await load()

    first = asyncio.create_task(cache.lookup("h", counted))
    second = asyncio.create_task(cache.lookup("h", counted))
    await wait_until(lambda: loads == 1, timeout=5, interval=0.001)  # the shared lookup runs
    first.cancel()
    release.set()
    assert await asyncio.wait_for(second, timeout=5) == KEY


async def test_a_lookup_that_started_before_a_revocation_is_not_cached() -> None:
    cache = KeyCache(ttl=60)
    release = asyncio.Event()
    answers = [KEY, REVOKED]  # the database before and after the revocation

    async def load() -> ApiKey | None:
        answer = answers.pop(0)
        if answer is KEY:
            await release.wait()
        return answer

    stale = asyncio.create_task(cache.lookup("h", load))
    await wait_until(lambda: len(answers) == 1, timeout=5, interval=0.001)  # it is loading
    cache.clear()  # the key was revoked on this replica
    assert await cache.lookup("h", load) == REVOKED
    release.set()
    assert await asyncio.wait_for(stale, timeout=5) == KEY
    assert cache.get("h") == (True, REVOKED)
