"""The batch handler's pure part (``leadflow.events.batch``): a batch's decisions are folded
exactly as if each event had been decided in its own transaction — each lead's state
threaded through its events in arrival order, every appended event caused by the event
decided, and the last word on a timer key winning. No database: ``decide_each`` and
``Outcome`` are what the kernel writes afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.batch import Appended, Decision, Outcome, decide_each, lead_ids_of
from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.catalogue.scoring import LeadScored
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.timers import Timer

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Tally:
    n: int = 0
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Ctx:
    now: datetime


def scored(n: int) -> LeadScored:
    return LeadScored(
        fit=n, engagement=0, grade="B", engagement_level=2, matrix_cell="B2", model_version=1
    )


class Counting:
    """Counts each lead's activities; every second one is news (an event) and moves the
    lead's timer; a ``stop`` activity cancels it."""

    async def context(self, tx: Any, events: Sequence[Envelope]) -> Ctx:
        return Ctx(T0)

    async def load(
        self, tx: Any, lead_ids: Sequence[uuid.UUID], ctx: Ctx
    ) -> dict[uuid.UUID, Tally]:
        return {}

    def decide(self, state: Tally | None, event: Envelope, ctx: Ctx) -> Decision[Tally]:
        assert isinstance(event.payload, ActivityRecorded)
        seq = int(event.payload.properties["seq"])
        before = state or Tally()
        after = Tally(before.n + 1, (*before.seqs, seq))
        key = f"tally:{event.lead_id}"
        if event.payload.activity_type == "stop":
            return Decision(state=after, cancel=[key])
        if event.payload.activity_type == "look":
            return Decision()  # nothing changes
        timer = Timer(key, "probe", ctx.now + timedelta(minutes=seq), {"seq": seq}, event.lead_id)
        news = [scored(after.n)] if after.n % 2 == 0 else []
        return Decision(state=after, events=news, schedule=[timer], occurred_at=event.occurred_at)

    async def save(
        self, tx: Any, changed: Mapping[uuid.UUID, Tally], ctx: Ctx
    ) -> Sequence[Appended]:
        return ()


def act(lead: uuid.UUID, seq: int, kind: str = "page_view") -> Envelope:
    return Envelope.new(
        ActivityRecorded(activity_id=f"a{seq}", activity_type=kind, properties={"seq": str(seq)}),
        lead_id=lead,
        occurred_at=T0 + timedelta(seconds=seq),
    )


def test_each_lead_state_is_threaded_through_its_events_in_arrival_order() -> None:
    a, b = new_id(), new_id()
    events = [act(a, 1), act(b, 2), act(a, 3), act(a, 4), act(b, 5)]
    out = decide_each(Counting(), {b: Tally(10, (0,))}, events, Ctx(T0))
    assert out.states == {a: Tally(3, (1, 3, 4)), b: Tally(12, (0, 2, 5))}
    assert out.changed == out.states
    assert list(out.changed) == [a, b]  # in the order they first changed


def test_every_appended_event_names_the_event_decided_as_its_cause() -> None:
    a, b = new_id(), new_id()
    events = [act(a, 1), act(a, 2), act(b, 3), act(b, 4), act(a, 5), act(a, 6)]
    out = decide_each(Counting(), {}, events, Ctx(T0))
    fits = [
        [p.fit for p in payloads if isinstance(p, LeadScored)] for _, payloads, _, _ in out.appends
    ]
    assert [
        (lead, fit, cause) for (lead, _, cause, _), fit in zip(out.appends, fits, strict=True)
    ] == [
        (a, [2], events[1]),
        (b, [2], events[3]),
        (a, [4], events[5]),
    ]
    assert [when for *_, when in out.appends] == [e.occurred_at for e in events[1::2]]
    assert out.last_event == {a: events[5], b: events[3]}


def test_the_last_word_on_a_timer_key_wins() -> None:
    a, b, c = new_id(), new_id(), new_id()
    events = [act(a, 1), act(b, 2), act(a, 3, "stop"), act(b, 4), act(c, 5, "stop"), act(c, 6)]
    out = decide_each(Counting(), {}, events, Ctx(T0))
    assert list(out.cancel) == [f"tally:{a}"]
    assert [(t.key, t.payload) for t in out.schedule.values()] == [
        (f"tally:{b}", {"seq": 4}),
        (f"tally:{c}", {"seq": 6}),  # scheduled after its cancel: scheduled
    ]
    assert out.schedule[f"tally:{c}"].due_at == T0 + timedelta(minutes=6)


def test_a_decisions_cancel_applies_before_its_schedule() -> None:
    out: Outcome[Tally] = Outcome()
    lead, timer = new_id(), Timer("k", "probe", T0)
    out.record(lead, None, Decision(cancel=["k"], schedule=[timer]))
    assert (list(out.cancel), list(out.schedule.values())) == ([], [timer])


def test_a_decision_without_a_state_leaves_the_lead_unchanged() -> None:
    a, b = new_id(), new_id()
    out = decide_each(
        Counting(), {a: Tally(1, (0,))}, [act(a, 1, "look"), act(b, 2, "look")], Ctx(T0)
    )
    assert out.states == {a: Tally(1, (0,))}
    assert out.changed == {}
    assert (out.appends, out.schedule, out.cancel) == ([], {}, {})


def test_the_states_handed_in_are_not_modified() -> None:
    a = new_id()
    loaded = {a: Tally(1, (0,))}
    decide_each(Counting(), loaded, [act(a, 1)], Ctx(T0))
    assert loaded == {a: Tally(1, (0,))}


def test_deciding_in_chunks_equals_deciding_at_once() -> None:
    """The kernel gives the event loop a turn between chunks of a batch: same outcome."""
    leads = [new_id() for _ in range(3)]
    events = [act(leads[i % 3], i) for i in range(40)]
    whole = decide_each(Counting(), {}, events, Ctx(T0))
    chunked: Outcome[Tally] = Outcome()
    for start in range(0, len(events), 7):
        decide_each(Counting(), {}, events[start : start + 7], Ctx(T0), chunked)
    assert chunked == whole


def test_a_decision_that_raises_fails_the_batch() -> None:
    """The batch is then rolled back and the consumer decides its events one by one."""

    class Failing(Counting):
        def decide(self, state: Tally | None, event: Envelope, ctx: Ctx) -> Decision[Tally]:
            raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        decide_each(Failing(), {}, [act(new_id(), 1)], Ctx(T0))


def test_the_batch_leads_are_each_listed_once_in_first_arrival_order() -> None:
    a, b, c = new_id(), new_id(), new_id()
    assert lead_ids_of([act(b, 1), act(a, 2), act(b, 3), act(c, 4), act(a, 5)]) == [b, a, c]
