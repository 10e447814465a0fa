"""The net timer changes a batch writes: what sequential schedule/cancel calls would leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.events.timers import Timer
from leadflow.sla_monitor.store import BatchWrites

T0 = datetime(2026, 3, 9, 10, tzinfo=UTC)


def timer(key: str, minutes: int = 0) -> Timer:
    return Timer(key, "sla.breach", T0 + timedelta(minutes=minutes), {"sla_id": key}, None)


def test_timers_of_a_clock_started_and_ended_in_the_same_batch_never_reach_the_table() -> None:
    w = BatchWrites()
    w.schedule_timer(timer("new:breach"))
    w.cancel_timer("new:breach", stored=False)
    w.cancel_timer("new:esc", stored=False)
    assert w.schedule == {} and w.cancel == set()


def test_cancelling_a_stored_clock_deletes_its_timer() -> None:
    w = BatchWrites()
    w.cancel_timer("old:breach", stored=True)
    assert w.cancel == {"old:breach"} and w.schedule == {}


def test_rescheduling_after_a_cancel_keeps_the_latest_schedule_only() -> None:
    w = BatchWrites()
    w.cancel_timer("old:esc", stored=True)
    w.schedule_timer(timer("old:esc", 5))
    w.schedule_timer(timer("old:esc", 10))
    assert w.cancel == set()
    assert w.schedule["old:esc"].due_at == T0 + timedelta(minutes=10)
    w.cancel_timer("old:esc", stored=True)
    assert w.schedule == {} and w.cancel == {"old:esc"}
