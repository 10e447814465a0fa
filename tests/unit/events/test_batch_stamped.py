"""A decision whose events did not all happen at once (``leadflow.events.batch.Stamped``):
each event keeps its own time and the decision's order, every one caused by the event
decided. No database: ``Outcome`` is what the kernel appends afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.events.batch import Decision, Outcome, Stamped
from leadflow.events.catalogue.scoring import LeadScored
from leadflow.events.envelope import Envelope, new_id

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def scored(n: int) -> LeadScored:
    return LeadScored(
        fit=n, engagement=0, grade="B", engagement_level=2, matrix_cell="B2", model_version=1
    )


def test_stamped_events_keep_their_own_time_and_the_decision_order() -> None:
    lead = new_id()
    cause = Envelope.new(scored(0), lead_id=lead, occurred_at=T0)
    later = T0 + timedelta(minutes=5)
    decision: Decision[int] = Decision(
        state=1,
        events=[scored(1), Stamped(scored(2), T0), Stamped(scored(3), later), scored(4)],
        occurred_at=T0,
    )
    out: Outcome[int] = Outcome()
    out.record(lead, cause, decision)
    # Runs of one time are appended together; order is the decision's.
    assert [
        ([p.fit for p in payloads if isinstance(p, LeadScored)], c, when)
        for _, payloads, c, when in out.appends
    ] == [([1, 2], cause, T0), ([3], cause, later), ([4], cause, T0)]


def test_a_decision_without_stamps_is_one_append_at_its_time() -> None:
    lead = new_id()
    out: Outcome[int] = Outcome()
    out.record(lead, None, Decision(events=[scored(1), scored(2)]))
    assert [(len(p), when) for _, p, _, when in out.appends] == [(2, None)]
    out.record(lead, None, Decision(state=2))
    assert len(out.appends) == 1
