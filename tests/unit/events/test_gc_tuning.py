"""A started service moves its startup objects out of the cycle collector's way."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from leadflow.events.gc_tuning import settle_gc
from leadflow.events.kit import ServiceKit
from leadflow.events.settings import ServiceSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_settle_freezes_what_exists_and_spaces_young_collections(restored_gc: None) -> None:
    older = gc.get_threshold()[1:]
    gc.unfreeze()
    survivor = {"kept": [1, 2, 3]}
    settle_gc(12_345)
    assert gc.get_threshold() == (12_345, *older)
    assert gc.get_freeze_count() > 0
    # Frozen objects are not tracked by any generation any more, so no collection walks them.
    assert not any(o is survivor for o in gc.get_objects())
    assert gc.isenabled()


def test_cycles_made_after_settling_are_still_collected(restored_gc: None) -> None:
    settle_gc(10_000)

    class Node:
        partner: object = None

    a, b = Node(), Node()
    a.partner, b.partner = b, a
    del a, b
    assert gc.collect() >= 2


def test_zero_leaves_the_collector_as_it_was(restored_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    settle_gc(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_a_kit_settles_the_collector_once_started(restored_gc: None) -> None:
    settings = ServiceSettings(run_consumers=False, gc_young_threshold=4_321)
    kit = ServiceKit(settings)
    await kit.start()
    try:
        assert gc.get_threshold()[0] == 4_321
        assert gc.get_freeze_count() > 0
    finally:
        await kit.stop()
