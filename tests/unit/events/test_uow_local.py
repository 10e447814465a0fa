"""``UnitOfWork.local``: one typed instance per unit of work, made on first use (what scoring
keeps its model versions in for a batch), and a new unit of work starts without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from leadflow.events.clock import SystemClock
from leadflow.events.uow import UnitOfWork


@dataclass
class Seen:
    reads: int = 0


def unit_of_work() -> UnitOfWork:
    # No statement runs here: ``local`` never touches the connection or the store.
    return UnitOfWork(cast(Any, None), cast(Any, None), SystemClock())


def test_local_is_one_instance_per_unit_of_work() -> None:
    first = unit_of_work()
    first.local(Seen).reads += 1
    first.local(Seen).reads += 1
    assert first.local(Seen) == Seen(reads=2)
    assert unit_of_work().local(Seen) == Seen(reads=0)
