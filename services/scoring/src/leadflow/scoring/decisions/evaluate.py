"""Re-scoring a lead and what follows from it, as pure functions of (state, context): the
published score, disqualification, qualification, nurture enrolment and exit, the predictive
snapshot and training outcomes, and when decay should look at the lead again.

Every way into scoring ends here: the consumer's events, the decay and nurture timers, a
model publish's re-score and the merge of two leads all call ``evaluate`` on a ``Draft``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflow.events.catalogue.scoring import (
    FeatureWeight,
    LeadDisqualified,
    LeadQualified,
    LeadScored,
    NurtureEnrolled,
    NurtureExited,
)
from leadflow.events.envelope import Envelope
from leadflow.scoring.decisions.draft import (
    NURTURE_TOUCH,
    REEVALUATE,
    Draft,
    nurture_key,
    reevaluate_key,
)
from leadflow.scoring.domain import (
    FORGET_AFTER_HALF_LIVES,
    Activity,
    EnrolmentReason,
    ScoreResult,
    ScoringModel,
    age_in_days,
    choose_track,
    materially_changed,
    next_reevaluation,
    snapshot,
    touch_due_at,
)
from leadflow.scoring.facts import live_score
from leadflow.scoring.predictive import Prediction, lead_features, snapshot_of
from leadflow.scoring.state import LeadRow, OutcomeRecord, ScoredLead, ScoringContext

TOP_CONTRIBUTIONS = 5


def score_summary(result: ScoreResult) -> dict[str, Any]:
    """What we remember of the last published score (compared to decide on a new event)."""
    return {
        "fit": result.fit,
        "engagement": result.engagement,
        "grade": result.grade,
        "engagement_level": result.engagement_level,
        "matrix_cell": result.matrix_cell,
        "mql_ready": result.mql_ready,
        "model_version": result.model_version,
    }


def window_start(lead: LeadRow, model: ScoringModel, now: datetime) -> datetime:
    """The oldest activity that can still count (``domain.score`` forgets older ones)."""
    since = now - timedelta(days=model.decay.half_life_days * FORGET_AFTER_HALF_LIVES)
    if lead.engagement_since is not None and lead.engagement_since > since:
        since = lead.engagement_since
    return since


def activities_at(state: ScoredLead, model: ScoringModel, at: datetime) -> list[Activity]:
    """The lead's activities that can count at ``at``."""
    since = window_start(state.row, model, at)
    return [a for a in state.activities if a.occurred_at >= since]


def score_now(state: ScoredLead, ctx: ScoringContext) -> ScoreResult:
    """The lead's live score at the batch's time."""
    lead = state.row
    acts = activities_at(state, ctx.model, ctx.now)
    return live_score(lead.profile, acts, ctx.model, ctx.now, lead.engagement_since)


def as_of(event: Envelope | None, ctx: ScoringContext) -> datetime:
    """When the fact behind a snapshot happened: the deciding event's time, never the future
    (a timer's decision: the batch's time)."""
    return min(event.occurred_at, ctx.now) if event is not None else ctx.now


@dataclass
class Evaluation:
    result: ScoreResult | None = None
    scored: bool = False
    qualified: bool = False
    disqualified: bool = False


def freeze(
    d: Draft, ctx: ScoringContext, at: datetime, *, scored_now: ScoreResult | None = None
) -> None:
    """Snapshot what is known at ``at`` (features, rule score) unless this cycle is frozen
    already: at qualification and when sales first acts, so no later field leaks in.

    ``scored_now``: the lead's score at the batch's time, as its state is now. ``at`` is the
    deciding event's time, milliseconds earlier as a rule: when the same activities count at
    both instants and none of them is a day older at one than at the other, the score at
    ``at`` is that one (decay moves in whole days) and is not computed again."""
    lead = d.lead
    if lead.snapshot is not None:
        return
    model = ctx.model
    acts = [a for a in activities_at(d.state, model, at) if a.occurred_at <= at]
    result = scored_now
    if result is None or not same_score_at(
        acts, activities_at(d.state, model, ctx.now), at, ctx.now
    ):
        result = live_score(lead.profile, acts, model, at, lead.engagement_since)
    features = lead_features(lead.profile, acts, result, model)
    lead.set(snapshot=snapshot_of(result, features), snapshot_at=at)


def same_score_at(
    acts_at: list[Activity], acts_now: list[Activity], at: datetime, now: datetime
) -> bool:
    """Whether ``score`` gives the same figures at ``at`` as at ``now``: the same activities
    count at both (``acts_at``, ``acts_now``) and each is as many whole days old at both
    (age in whole days is all that decay and forgetting read of the instant)."""
    if len(acts_at) != len(acts_now):
        return False
    for a, b in zip(acts_at, acts_now, strict=True):
        if a is not b or age_in_days(at - a.occurred_at) != age_in_days(now - a.occurred_at):
            return False
    return True


def record_outcome(
    d: Draft,
    ctx: ScoringContext,
    event: Envelope | None,
    outcome: str,
    reason: str | None,
    *,
    scored_now: ScoreResult | None = None,
) -> None:
    """An outcome becomes a training example with the snapshot of this sales cycle. One
    decided without an event (a timer's disqualification) is named after the lead, the
    outcome and the time, so deciding it again records it once. ``scored_now``: as
    ``freeze``'s."""
    at = as_of(event, ctx)
    freeze(d, ctx, at, scored_now=scored_now)
    lead = d.lead
    assert lead.snapshot is not None and lead.snapshot_at is not None
    if event is not None:
        event_id, occurred_at = event.event_id, event.occurred_at
    else:
        event_id = uuid.uuid5(lead.lead_id, f"{outcome}:{ctx.now.isoformat()}")
        occurred_at = ctx.now
    d.state.outcomes.append(
        OutcomeRecord(
            event_id=event_id,
            lead_id=lead.lead_id,
            outcome=outcome,
            reason_code=reason,
            occurred_at=occurred_at,
            snapshot=lead.snapshot,
            snapshot_at=lead.snapshot_at,
        )
    )


def evaluate(
    d: Draft,
    ctx: ScoringContext,
    event: Envelope | None = None,
    *,
    result: ScoreResult | None = None,
) -> Evaluation:
    """Re-score the lead and decide what changed: ``lead.scored`` when the score moved
    materially, ``lead.disqualified`` / ``lead.qualified`` once, nurture enrolment or exit,
    the decay timer."""
    lead = d.lead
    outcome = Evaluation()
    if lead.status != "open":
        return outcome
    now, model = ctx.now, ctx.model
    acts: list[Activity] | None = None
    if result is None:
        acts = activities_at(d.state, model, now)
        result = live_score(lead.profile, acts, model, now, lead.engagement_since)
    outcome.result = result
    lead_id = lead.lead_id

    predictive = ctx.predictive
    prediction: Prediction | None = None
    if predictive is not None:
        if acts is None:
            acts = activities_at(d.state, model, now)
        prediction = predictive.predict(lead_features(lead.profile, acts, result, model))

    if result.disqualified_by is not None and not lead.disqualified:
        d.append(
            LeadDisqualified(
                reason=result.disqualify_reason or result.disqualified_by,
                rule_id=result.disqualified_by,
                model_version=model.version,
            )
        )
        record_outcome(d, ctx, event, "disqualified", result.disqualified_by, scored_now=result)
        lead.move("lead.disqualified")
        lead.set(disqualify_reason=result.disqualify_reason)
        outcome.disqualified = True
        exit_nurture(d, "disqualified")

    summary = score_summary(result)
    if prediction is not None and predictive is not None:
        summary["predicted_conversion"] = round(prediction.probability, 4)
        summary["predictive_model_version"] = predictive.version
    if materially_changed(lead.score, result) or prediction_moved(lead.score, prediction):
        d.append(
            LeadScored(
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                engagement_level=result.engagement_level,
                matrix_cell=result.matrix_cell,
                model_version=result.model_version,
                contributions=result.top_contributions(TOP_CONTRIBUTIONS),
                mql_ready=result.mql_ready,
                predicted_conversion=summary.get("predicted_conversion"),
                predictive_model_version=predictive.version if prediction and predictive else None,
                top_features=[FeatureWeight(feature=n, weight=w)
                              for n, w in (prediction.top_features if prediction else [])],
            )
        )  # fmt: skip
        lead.set(score=summary, scored_at=now)
        outcome.scored = True

    if result.mql_ready and not lead.qualified and not lead.with_sales and not lead.disqualified:
        exit_nurture(d, "qualified")
        d.append(
            LeadQualified(
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                matrix_cell=result.matrix_cell,
                model_version=result.model_version,
                reasons=result.top_contributions(TOP_CONTRIBUTIONS),
                lead=snapshot(lead.profile, grade=result.grade, matrix_cell=result.matrix_cell),
                predicted_conversion=summary.get("predicted_conversion"),
                predictive_model_version=predictive.version if prediction and predictive else None,
                cycle="expansion" if lead.cycle == "expansion" else "new_business",
            )
        )
        lead.move("lead.qualified")
        lead.set(qualified_at=now)
        freeze(d, ctx, as_of(event, ctx), scored_now=result)
        outcome.qualified = True
    elif (
        not result.mql_ready
        and lead.nurture_status == "none"
        and not lead.qualified
        and not lead.with_sales
        and not lead.disqualified
        and lead.profile.marketing_opt_in is not False
        and lead.cycle
        != "expansion"  # a customer's expansion waits; prospects' nurture is not for it
    ):
        enrol(d, ctx, "not_sales_ready")

    due = next_reevaluation(result, model, now)
    if due is None:
        if lead.reeval_at is not None:
            d.cancel(reevaluate_key(lead_id))
            lead.set(reeval_at=None)
    elif lead.reeval_at is None or lead.reeval_at <= now or due < lead.reeval_at:
        # A later due time than the one already set is left alone: the earlier timer fires,
        # re-scores and sets the right time then. This saves a write per activity burst.
        d.schedule(reevaluate_key(lead_id), due, REEVALUATE, {})
        lead.set(reeval_at=due)

    if (outcome.scored or outcome.qualified) and lead.profile.account_id is not None:
        d.state.account_moved = True  # its account may have become an MQA (saving asks)
    return outcome


def prediction_moved(old: dict[str, Any] | None, prediction: Prediction | None) -> bool:
    """A prediction that moved by 5 points or more is news; drift below that is not."""
    if prediction is None:
        return False
    before = (old or {}).get("predicted_conversion")
    return before is None or abs(float(before) - prediction.probability) >= 0.05


def enrol(d: Draft, ctx: ScoringContext, reason: EnrolmentReason) -> None:
    """Enrol in the first matching track; a paused enrolment resumes where it stopped."""
    now, lead = ctx.now, d.lead
    if reason != "not_sales_ready" and lead.nurture_status == "paused" and lead.track_id:
        track = ctx.track(lead.track_id)
        if track is not None and track.active and lead.nurture_step < len(track.steps):
            due = touch_due_at(track, lead.nurture_step, now)
            assert due is not None
            schedule_touch(d, track.id, lead.nurture_step, due)
            lead.set(nurture_status="active", nurture_reason="resumed", nurture_next_due_at=due)
            lead.move("nurture.enrolled")
            d.append(
                NurtureEnrolled(
                    track_id=track.id, track_version=track.version, reason="resumed",
                    next_touch_due_at=due,
                )
            )  # fmt: skip
            return
    chosen = choose_track(lead.profile, ctx.tracks, reason, ctx.model)
    if chosen is None:
        return
    due = touch_due_at(chosen, 0, now)
    assert due is not None
    schedule_touch(d, chosen.id, 0, due)
    lead.set(
        nurture_status="active",
        track_id=chosen.id,
        track_version=chosen.version,
        nurture_step=0,
        nurture_reason=reason,
        nurture_next_due_at=due,
        enrolled_at=now,
    )
    lead.move("nurture.enrolled")
    d.append(
        NurtureEnrolled(
            track_id=chosen.id, track_version=chosen.version, reason=reason, next_touch_due_at=due
        )
    )


def schedule_touch(d: Draft, track_id: str, step: int, due: datetime) -> None:
    d.schedule(
        nurture_key(d.lead.lead_id), due, NURTURE_TOUCH, {"track_id": track_id, "step": step}
    )


def exit_nurture(d: Draft, reason: Any) -> None:
    lead = d.lead
    if lead.nurture_status not in {"active", "paused"} or lead.track_id is None:
        return
    d.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="exited", nurture_reason=reason, nurture_next_due_at=None)
    d.append(NurtureExited(track_id=lead.track_id, reason=reason))


def pause_nurture(d: Draft) -> None:
    """Sales is working the lead: stop touches, remember the step to resume at."""
    lead = d.lead
    if lead.nurture_status != "active" or lead.track_id is None:
        return
    d.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="paused", nurture_next_due_at=None)
    d.append(NurtureExited(track_id=lead.track_id, reason="handed_to_sales"))
