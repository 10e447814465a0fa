"""The projection runner's one-pass modes (step_many / rebuild_many / ProjectionGroup) on a
real Postgres: each batch is read once, checkpoints move together, groups stay in step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from leadflow.events.projection import Projection, ProjectionRunner
from leadflow.events.sql import Tx

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]


@dataclass(frozen=True)
class Ev:
    position: int


class Log:
    """An in-memory log of ``n`` events that counts how often it is read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reads = 0

    async def source(self, conn: Tx, after: int, limit: int) -> Sequence[Any]:
        self.reads += 1
        return [Ev(p) for p in range(after + 1, min(after + limit, self.n) + 1)]

    async def head(self, conn: Tx) -> int:
        return self.n


@dataclass
class Counting:
    """A projection that remembers the positions it was given."""

    name: str
    seen: list[int] = field(default_factory=list)
    group: Any = None

    async def apply(self, conn: Tx, events: Sequence[Any]) -> None:
        self.seen.extend(e.position for e in events)

    async def clear(self, conn: Tx) -> None:
        self.seen.clear()


@dataclass
class Group:
    """Feeds every member from one pass; counts its calls and clears."""

    name: str = "g"
    calls: int = 0
    clears: int = 0

    async def apply(self, conn: Tx, members: Sequence[Projection], events: Sequence[Any]) -> None:
        self.calls += 1
        for m in members:
            assert isinstance(m, Counting)
            m.seen.extend(e.position for e in events)

    async def clear(self, conn: Tx) -> None:
        self.clears += 1


@pytest.fixture
async def kit(settings_for: Any, isolation: Any) -> Any:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        yield kit
    finally:
        await kit.stop()


async def positions(kit: Any, names: Sequence[str]) -> dict[str, int]:
    async with kit.connect() as conn:
        rows = await conn.fetch(
            "SELECT name, position FROM projection_checkpoints WHERE name = ANY(:ns)",
            ns=list(names),
        )
        return {str(n): int(p) for n, p in rows}


async def test_rebuild_many_reads_each_batch_once_for_all_projections(kit: Any) -> None:
    log = Log(25)
    a, b, c = Counting("pa"), Counting("pb"), Counting("pc")
    runner = ProjectionRunner(
        kit.db, [a, b, c], log.source, log.head, service="t", rebuild_batch=10
    )
    progress = await runner.rebuild_many(["pa", "pb", "pc"])
    assert log.reads == 4  # 10 + 10 + 5, then the empty read that ends the pass
    assert a.seen == b.seen == c.seen == list(range(1, 26))
    assert {p.state for p in progress.values()} == {"done"}
    assert [progress[n].processed for n in ("pa", "pb", "pc")] == [25, 25, 25]
    assert await positions(kit, ["pa", "pb", "pc"]) == {"pa": 25, "pb": 25, "pc": 25}


async def test_step_many_gives_each_projection_only_events_after_its_checkpoint(kit: Any) -> None:
    log = Log(12)
    a, b = Counting("qa"), Counting("qb")
    runner = ProjectionRunner(kit.db, [a, b], log.source, log.head, service="t")
    assert await runner.step("qa", 5) == 5  # qa alone moves to 5
    assert await runner.step_many(["qa", "qb"], 100) == 12
    assert a.seen == list(range(1, 13))  # 1..5 alone, then 6..12: nothing twice
    assert b.seen == list(range(1, 13))
    assert await positions(kit, ["qa", "qb"]) == {"qa": 12, "qb": 12}
    assert await runner.step_many(["qa", "qb"], 100) == 0


async def test_a_group_moves_together_and_rebuilding_one_member_rebuilds_the_group(
    kit: Any,
) -> None:
    log = Log(30)
    group = Group()
    a, b, solo = Counting("ga", group=group), Counting("gb", group=group), Counting("solo")
    runner = ProjectionRunner(
        kit.db, [a, b, solo], log.source, log.head, service="t", batch=20, rebuild_batch=20
    )
    assert await runner.step("ga", 20) == 20  # stepping one member steps the group
    assert await positions(kit, ["ga", "gb"]) == {"ga": 20, "gb": 20}
    assert group.calls == 1 and a.seen == b.seen == list(range(1, 21))
    assert solo.seen == []  # not in the group: untouched
    await runner.catch_up()
    assert a.seen == b.seen == solo.seen == list(range(1, 31))

    progress = await runner.rebuild("gb")
    assert progress.state == "done" and progress.processed == 30 and progress.total == 30
    assert runner.progress["ga"].state == "done"
    assert group.clears == 1
    assert a.seen == b.seen == list(range(1, 31))  # cleared and replayed, once
    assert solo.seen == list(range(1, 31))
    assert await positions(kit, ["ga", "gb", "solo"]) == {"ga": 30, "gb": 30, "solo": 30}


async def test_a_group_out_of_step_is_replayed_from_the_start(kit: Any) -> None:
    log = Log(8)
    group = Group()
    a, b = Counting("oa", group=group), Counting("ob", group=group)
    runner = ProjectionRunner(kit.db, [a, b], log.source, log.head, service="t")
    async with kit.db.transaction() as conn:  # as left by an older runner: members apart
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES ('oa', 3), ('ob', 6)"
        )
    assert await runner.step("oa", 100) == 8
    assert group.clears == 1
    assert a.seen == b.seen == list(range(1, 9))
    assert await positions(kit, ["oa", "ob"]) == {"oa": 8, "ob": 8}
