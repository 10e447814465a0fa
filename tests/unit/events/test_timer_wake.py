"""The timer runner is woken after a commit only for a timer that falls due before its
next poll: a sweep is a transaction, and most timers are hours away."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from leadflow.events.clock import ManualClock
from leadflow.events.timer_runner import TimerRunner
from leadflow.events.timers import Timers


def runner(clock: ManualClock) -> TimerRunner:
    async def no_uow(*_: Any) -> Any:
        raise AssertionError("no sweep in this test")

    return TimerRunner(None, {}, clock, no_uow, service="test", poll_seconds=0.5)  # type: ignore[arg-type]


def test_a_timer_due_before_the_next_poll_wakes_the_runner() -> None:
    clock = ManualClock()
    for due in (
        clock.now() - timedelta(hours=1),
        clock.now(),
        clock.now() + timedelta(seconds=0.4),
    ):
        timers = runner(clock)
        timers.wake_for(due)
        assert timers._wake.is_set(), due


def test_nothing_scheduled_or_a_timer_due_after_the_next_poll_leaves_it_asleep() -> None:
    clock = ManualClock()
    for due in (None, clock.now() + timedelta(seconds=0.6), clock.now() + timedelta(days=3)):
        timers = runner(clock)
        timers.wake_for(due)
        assert not timers._wake.is_set(), due


def test_a_unit_of_work_remembers_the_soonest_timer_written_through_it() -> None:
    """Timers written by a service's own SQL are noted too, so they wake the runner."""
    clock = ManualClock()
    now = clock.now()
    timers = Timers(None)  # type: ignore[arg-type]
    assert timers.soonest is None
    timers.note_scheduled([])
    assert timers.soonest is None
    timers.note_scheduled([now + timedelta(hours=2), now + timedelta(minutes=5)])
    timers.note_scheduled(iter([now + timedelta(hours=1)]))
    assert timers.soonest == now + timedelta(minutes=5)
