"""``Timers.ensure_many``: schedule a key only when it is not there yet, in one statement —
a waiting timer keeps its due time, payload and attempts (notify's per-lead webhook queues
and per-person digests: the next message must not pull a backoff forward)."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.events.clock import ManualClock
from leadflow.events.envelope import new_id
from leadflow.events.timers import Timer

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]


async def test_ensure_adds_missing_keys_and_leaves_waiting_ones_alone(settings_for: Any) -> None:
    clock = ManualClock()
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False), clock)
    await kit.start()
    lead, now = new_id(), clock.now()
    backoff = now.replace(hour=15)
    try:
        async with kit.unit_of_work() as uow:
            await uow.timers.schedule("q:a", backoff, "probe", {"attempts": 3}, lead)
        async with kit.unit_of_work() as uow:
            added = await uow.timers.ensure_many(
                [
                    Timer("q:a", "probe", now.replace(hour=9), {}, lead),  # waiting: kept
                    Timer("q:b", "probe", now.replace(hour=10), {"v": 1}, lead),
                    Timer("q:b", "probe", now.replace(hour=11), {"v": 2}, lead),  # last wins
                ]
            )
            assert added == 1
            assert uow.timers.soonest == now.replace(hour=9)  # wakes the runner at worst early
            assert await uow.timers.ensure_many([]) == 0
        async with kit.connect() as tx:
            rows = await tx.fetch("SELECT key, due_at, payload FROM timers ORDER BY key")
        assert [(r["key"], r["due_at"].hour, r["payload"]) for r in rows] == [
            ("q:a", 15, {"attempts": 3}),
            ("q:b", 11, {"v": 2}),
        ]
    finally:
        await kit.stop()
