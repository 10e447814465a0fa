"""What scoring's durable timers decide: decay re-evaluation and the next nurture touch.

A model publish's re-score decides ``rescored`` per lead. The timer handlers
(``leadflow.scoring.handlers``) run these through the kernel's ``run_decision``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leadflow.events.batch import Decision
from leadflow.events.catalogue.scoring import NurtureExited, NurtureTouchDue
from leadflow.scoring.decisions.draft import Draft
from leadflow.scoring.decisions.evaluate import Evaluation, evaluate, schedule_touch
from leadflow.scoring.domain import touch_due_at
from leadflow.scoring.state import ScoredLead, ScoringContext


def reevaluate(state: ScoredLead, ctx: ScoringContext) -> Decision[ScoredLead]:
    """Decay without new events: a cold lead drops out of MQL-readiness on time."""
    d = Draft.of(state)
    d.lead.set(reeval_at=None)
    evaluate(d, ctx)
    return d.decision()


def rescored(state: ScoredLead, ctx: ScoringContext) -> tuple[Decision[ScoredLead], Evaluation]:
    """One lead of a model publish's re-score, and what it came to (the job counts it)."""
    d = Draft.of(state)
    outcome = evaluate(d, ctx)
    return d.decision(), outcome


def nurture_touch(
    state: ScoredLead, ctx: ScoringContext, track_id: str | None, step: int, due_at: datetime
) -> Decision[ScoredLead]:
    """The touch ``step`` of ``track_id`` is due: send it and set the next one, or finish
    the track. A timer the enrolment has moved on from (stale) decides nothing."""
    lead = state.row
    if lead.nurture_status != "active" or lead.track_id != track_id or lead.nurture_step != step:
        return Decision()
    d = Draft.of(state)
    lead = d.lead
    track = ctx.track(lead.track_id)  # active tracks only: a retired one ends here
    if track is None or step >= len(track.steps):
        d.append(NurtureExited(track_id=lead.track_id, reason="completed"))
        lead.set(nurture_status="completed", nurture_next_due_at=None)
        return d.decision()
    touch = track.steps[step]
    d.append(
        NurtureTouchDue(
            track_id=track.id, step=step, content_id=touch.content_id, channel=touch.channel,
            due_at=due_at, subject=touch.subject, body=touch.body,
        )
    )  # fmt: skip
    # The cadence counts from when the touch was due, so a late firing does not drift.
    due = touch_due_at(track, step + 1, due_at)
    if due is None:
        d.append(NurtureExited(track_id=track.id, reason="completed"))
        lead.set(nurture_status="completed", nurture_step=step + 1, nurture_next_due_at=None)
    else:
        due = max(due, due_at + timedelta(microseconds=1))
        schedule_touch(d, track.id, step + 1, due)
        lead.set(nurture_step=step + 1, nurture_next_due_at=due)
    return d.decision()
