"""Event → decision: intake events re-score their lead, routing events move qualification and
nurture state, durable timers cool leads down, send nurture touches and re-score after a
model publish. Decisions come from ``domain``; this module only loads, decides and appends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    ConsentChanged,
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
    LeadsMerged,
)
from leadflow.events.catalogue.routing import (
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadContacted,
    LeadReassigned,
    LeadRecycled,
    LeadRejected,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import (
    LeadDisqualified,
    LeadQualified,
    LeadScored,
    NurtureEnrolled,
    NurtureExited,
    NurtureTouchDue,
)
from leadflow.events.consumer import Handler, UnitOfWork
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.timers import Timer, TimerHandler
from leadflow.scoring import store
from leadflow.scoring.domain import (
    Activity,
    EnrolmentReason,
    LeadProfile,
    NurtureTrack,
    ScoreResult,
    ScoringModel,
    choose_track,
    materially_changed,
    next_reevaluation,
    normalise_activity_type,
    profile_after_inquiry,
    profile_from_captured,
    profile_updated,
    score,
    snapshot,
    touch_due_at,
)
from leadflow.scoring.store import LeadRow

REEVALUATE = "scoring.reevaluate"
NURTURE_TOUCH = "scoring.nurture_touch"
RESCORE_BATCH = "scoring.rescore_batch"
TOP_CONTRIBUTIONS = 5
ACTIVITY_WINDOW_HALF_LIVES = 12.0
RESCORE_BATCH_SIZE = 500


def reevaluate_key(lead_id: uuid.UUID) -> str:
    return f"reevaluate:{lead_id}"


def nurture_key(lead_id: uuid.UUID) -> str:
    return f"nurture:{lead_id}"


def job_key(job_id: uuid.UUID, batch: int = 0) -> str:
    return f"rescore-job:{job_id}:{batch}"


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


async def model_for(uow: UnitOfWork) -> ScoringModel:
    """The current model, looked up once per unit of work (a consumer batch shares one)."""
    cached = uow.__dict__.get("_scoring_model")
    if cached is None:
        cached = await store.current_model(uow.conn)
        uow.__dict__["_scoring_model"] = cached
    return cached


async def tracks_for(uow: UnitOfWork) -> list[NurtureTrack]:
    cached = uow.__dict__.get("_scoring_tracks")
    if cached is None:
        cached = await store.tracks(uow.conn)
        uow.__dict__["_scoring_tracks"] = cached
    return cached


@dataclass
class Evaluation:
    result: ScoreResult | None = None
    scored: bool = False
    qualified: bool = False
    disqualified: bool = False


async def score_lead(
    uow: UnitOfWork, lead: LeadRow, model: ScoringModel, now: datetime
) -> ScoreResult:
    window_start = now - timedelta(days=model.decay.half_life_days * ACTIVITY_WINDOW_HALF_LIVES)
    since = window_start
    if lead.engagement_since is not None and lead.engagement_since > since:
        since = lead.engagement_since
    acts = await store.activities(uow.conn, lead.lead_id, since)
    return score(lead.profile, acts, model, now, engagement_since=lead.engagement_since)


async def evaluate(
    uow: UnitOfWork,
    lead: LeadRow,
    *,
    model: ScoringModel | None = None,
    result: ScoreResult | None = None,
) -> Evaluation:
    """Re-score ``lead`` and append what changed: LeadScored when the score moved materially,
    LeadDisqualified / LeadQualified once, nurture enrolment or exit; then save the row."""
    outcome = Evaluation()
    if lead.status != "open":
        await store.save_lead(uow.conn, lead)
        return outcome
    now = uow.clock.now()
    model = model or await model_for(uow)
    if result is None:
        result = await score_lead(uow, lead, model, now)
    outcome.result = result
    lead_id = lead.lead_id
    payloads: list[EventPayload] = []

    if result.disqualified_by is not None and not lead.disqualified:
        payloads.append(
            LeadDisqualified(
                reason=result.disqualify_reason or result.disqualified_by,
                rule_id=result.disqualified_by,
                model_version=model.version,
            )
        )
        lead.set(disqualified=True, disqualify_reason=result.disqualify_reason)
        outcome.disqualified = True
        payloads.extend(await _exit_nurture(uow, lead, "disqualified"))

    if materially_changed(lead.score, result):
        payloads.append(
            LeadScored(
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                engagement_level=result.engagement_level,
                matrix_cell=result.matrix_cell,
                model_version=result.model_version,
                contributions=result.top_contributions(TOP_CONTRIBUTIONS),
                mql_ready=result.mql_ready,
            )
        )
        lead.set(score=score_summary(result), scored_at=now)
        outcome.scored = True

    if result.mql_ready and not lead.qualified and not lead.with_sales and not lead.disqualified:
        payloads.extend(await _exit_nurture(uow, lead, "qualified"))
        payloads.append(
            LeadQualified(
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                matrix_cell=result.matrix_cell,
                model_version=result.model_version,
                reasons=result.top_contributions(TOP_CONTRIBUTIONS),
                lead=snapshot(lead.profile, grade=result.grade, matrix_cell=result.matrix_cell),
            )
        )
        lead.set(qualified=True, qualified_at=now)
        outcome.qualified = True
    elif (
        not result.mql_ready
        and lead.nurture_status == "none"
        and not lead.qualified
        and not lead.with_sales
        and not lead.disqualified
        and lead.profile.marketing_opt_in is not False
    ):
        payloads.extend(await _enrol(uow, lead, "not_sales_ready", model=model))

    due = next_reevaluation(result, model, now)
    if due is None:
        if lead.reeval_at is not None:
            await uow.timers.cancel(reevaluate_key(lead_id))
            lead.set(reeval_at=None)
    elif lead.reeval_at is None or lead.reeval_at <= now or due < lead.reeval_at:
        # A later due time than the one already set is left alone: the earlier timer fires,
        # re-scores and sets the right time then. This saves a write per activity burst.
        await uow.timers.schedule(reevaluate_key(lead_id), due, REEVALUATE, {}, lead_id=lead_id)
        lead.set(reeval_at=due)

    if payloads:
        await uow.append(lead_id, payloads)
    await store.save_lead(uow.conn, lead)
    return outcome


async def _enrol(
    uow: UnitOfWork,
    lead: LeadRow,
    reason: EnrolmentReason,
    *,
    model: ScoringModel | None = None,
) -> list[EventPayload]:
    """Enrol in the first matching track; a paused enrolment resumes where it stopped."""
    now = uow.clock.now()
    if reason != "not_sales_ready" and lead.nurture_status == "paused" and lead.track_id:
        track = await store.track(uow.conn, lead.track_id)
        if track is not None and track.active and lead.nurture_step < len(track.steps):
            due = touch_due_at(track, lead.nurture_step, now)
            assert due is not None
            await _schedule_touch(uow, lead.lead_id, track.id, lead.nurture_step, due)
            lead.set(nurture_status="active", nurture_reason="resumed", nurture_next_due_at=due)
            return [
                NurtureEnrolled(
                    track_id=track.id, track_version=track.version, reason="resumed",
                    next_touch_due_at=due,
                )
            ]  # fmt: skip
    tracks = await tracks_for(uow)
    chosen = choose_track(lead.profile, tracks, reason, model)
    if chosen is None:
        return []
    due = touch_due_at(chosen, 0, now)
    assert due is not None
    await _schedule_touch(uow, lead.lead_id, chosen.id, 0, due)
    lead.set(
        nurture_status="active",
        track_id=chosen.id,
        track_version=chosen.version,
        nurture_step=0,
        nurture_reason=reason,
        nurture_next_due_at=due,
        enrolled_at=now,
    )
    return [
        NurtureEnrolled(
            track_id=chosen.id, track_version=chosen.version, reason=reason, next_touch_due_at=due
        )
    ]


async def _schedule_touch(
    uow: UnitOfWork, lead_id: uuid.UUID, track_id: str, step: int, due: datetime
) -> None:
    await uow.timers.schedule(
        nurture_key(lead_id),
        due,
        NURTURE_TOUCH,
        {"track_id": track_id, "step": step},
        lead_id=lead_id,
    )


async def _exit_nurture(uow: UnitOfWork, lead: LeadRow, reason: Any) -> list[EventPayload]:
    if lead.nurture_status not in {"active", "paused"} or lead.track_id is None:
        return []
    await uow.timers.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="exited", nurture_reason=reason, nurture_next_due_at=None)
    return [NurtureExited(track_id=lead.track_id, reason=reason)]


async def _pause_nurture(uow: UnitOfWork, lead: LeadRow) -> list[EventPayload]:
    """Sales is working the lead: stop touches, remember the step to resume at."""
    if lead.nurture_status != "active" or lead.track_id is None:
        return []
    await uow.timers.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="paused", nurture_next_due_at=None)
    return [NurtureExited(track_id=lead.track_id, reason="handed_to_sales")]


# -- intake -----------------------------------------------------------------------------------


async def on_lead_captured(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, LeadCaptured)
    lead = await store.upsert_lead(uow.conn, event.lead_id, profile_from_captured(payload))
    await _record_inquiry(uow, event, payload.inquiry_id, payload.capture_method, payload.rating)
    await evaluate(uow, lead)


async def on_inquiry_received(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, InquiryReceived)
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    lead.set(profile=profile_after_inquiry(lead.profile, payload))
    await _record_inquiry(uow, event, payload.inquiry_id, payload.capture_method, payload.rating)
    await evaluate(uow, lead)


async def _record_inquiry(
    uow: UnitOfWork, event: Envelope, inquiry_id: uuid.UUID, method: str, rating: str | None
) -> None:
    properties = {"capture_method": method}
    if rating:
        properties["rating"] = rating
    await store.add_activity(
        uow.conn,
        event.lead_id,
        f"inquiry:{inquiry_id}",
        Activity("inquiry", event.occurred_at, properties=properties),
    )


async def on_profile_updated(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, LeadProfileUpdated)
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    lead.set(profile=profile_updated(lead.profile, payload))
    await evaluate(uow, lead)


async def on_activity_recorded(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, ActivityRecorded)
    activity = Activity(
        activity_type=normalise_activity_type(payload.activity_type),
        occurred_at=event.occurred_at,
        url=payload.url,
        content_id=payload.content_id,
        campaign=payload.campaign,
        properties=dict(payload.properties),
    )
    await store.add_activity(
        uow.conn, event.lead_id, payload.activity_id or str(event.event_id), activity
    )
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    await evaluate(uow, lead)


async def on_leads_merged(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, LeadsMerged)
    survivor = await store.upsert_lead(uow.conn, event.lead_id)
    merged = await store.lock_lead(uow.conn, payload.merged_lead_id)
    await store.move_activities(uow.conn, payload.merged_lead_id, event.lead_id)
    if merged is not None:
        await uow.timers.cancel(reevaluate_key(merged.lead_id))
        await uow.timers.cancel(nurture_key(merged.lead_id))
        merged.set(status="merged", nurture_status="exited" if merged.track_id else "none",
                   reeval_at=None, nurture_next_due_at=None)  # fmt: skip
        await store.save_lead(uow.conn, merged)
        # The survivor inherits where the duplicate already got to: one MQL, one owner.
        survivor.set(
            qualified=survivor.qualified or merged.qualified,
            with_sales=survivor.with_sales or merged.with_sales,
        )
    await evaluate(uow, survivor)


async def on_consent_changed(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, ConsentChanged)
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    lead.set(profile=lead.profile.model_copy(update={"marketing_opt_in": payload.marketing_opt_in}))
    payloads = [] if payload.marketing_opt_in else await _exit_nurture(uow, lead, "opted_out")
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await evaluate(uow, lead)


async def on_lead_erased(event: Envelope, uow: UnitOfWork) -> None:
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    payloads = await _exit_nurture(uow, lead, "erased")
    await uow.timers.cancel(reevaluate_key(lead.lead_id))
    await store.delete_activities(uow.conn, lead.lead_id)
    lead.set(status="erased", profile=LeadProfile(), reeval_at=None)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await store.save_lead(uow.conn, lead)


# -- routing ----------------------------------------------------------------------------------


async def on_with_sales(event: Envelope, uow: UnitOfWork) -> None:
    """Assigned, accepted, worked: sales has the lead, so nurture pauses."""
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    payloads = await _pause_nurture(uow, lead)
    lead.set(with_sales=True)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await store.save_lead(uow.conn, lead)


async def on_back_to_marketing(event: Envelope, uow: UnitOfWork) -> None:
    """Rejected or recycled: back to nurture, and engagement counts afresh from now, so the
    lead must show new interest before it qualifies again."""
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    reason: EnrolmentReason = "rejected" if isinstance(event.payload, LeadRejected) else "recycled"
    lead.set(with_sales=False, qualified=False, engagement_since=event.occurred_at)
    if lead.status != "open":
        await store.save_lead(uow.conn, lead)
        return
    payloads: list[EventPayload] = []
    if not lead.disqualified and lead.profile.marketing_opt_in is not False:
        model = await model_for(uow)
        payloads = await _enrol(uow, lead, reason, model=model)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await evaluate(uow, lead)


async def on_outcome(event: Envelope, uow: UnitOfWork) -> None:
    """Won or lost: the lead leaves scoring; the outcome is kept for predictive training."""
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    payloads = await _exit_nurture(uow, lead, "completed")
    await uow.timers.cancel(reevaluate_key(lead.lead_id))
    outcome = "won" if isinstance(event.payload, DealWon) else "lost"
    lead.set(status=outcome, outcome=outcome, with_sales=False, reeval_at=None)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await store.save_lead(uow.conn, lead)


# -- timers -----------------------------------------------------------------------------------


async def on_reevaluate(timer: Timer, uow: UnitOfWork) -> None:
    """Decay without new events: a cold lead drops out of MQL-readiness on time."""
    if timer.lead_id is None:
        return
    lead = await store.lock_lead(uow.conn, timer.lead_id)
    if lead is None:
        return
    lead.set(reeval_at=None)
    await evaluate(uow, lead)


async def on_nurture_touch(timer: Timer, uow: UnitOfWork) -> None:
    if timer.lead_id is None:
        return
    lead = await store.lock_lead(uow.conn, timer.lead_id)
    step = int(timer.payload.get("step", -1))
    if (
        lead is None
        or lead.nurture_status != "active"
        or lead.track_id != timer.payload.get("track_id")
        or lead.nurture_step != step
    ):
        return  # stale: the enrolment moved on since this timer was set
    track = await store.track(uow.conn, str(lead.track_id))
    payloads: list[EventPayload] = []
    if track is None or not track.active or step >= len(track.steps):
        payloads.append(NurtureExited(track_id=lead.track_id, reason="completed"))
        lead.set(nurture_status="completed", nurture_next_due_at=None)
    else:
        touch = track.steps[step]
        payloads.append(
            NurtureTouchDue(
                track_id=track.id, step=step, content_id=touch.content_id,
                channel=touch.channel, due_at=timer.due_at,
            )
        )  # fmt: skip
        # The cadence counts from when the touch was due, so a late firing does not drift.
        due = touch_due_at(track, step + 1, timer.due_at)
        if due is None:
            payloads.append(NurtureExited(track_id=track.id, reason="completed"))
            lead.set(nurture_status="completed", nurture_step=step + 1, nurture_next_due_at=None)
        else:
            due = max(due, timer.due_at + timedelta(microseconds=1))
            await _schedule_touch(uow, lead.lead_id, track.id, step + 1, due)
            lead.set(nurture_step=step + 1, nurture_next_due_at=due)
    await uow.append(lead.lead_id, payloads)
    await store.save_lead(uow.conn, lead)


async def on_rescore_batch(timer: Timer, uow: UnitOfWork) -> None:
    """One batch of a model-publish re-score; re-schedules itself until every open lead is
    done, so the job survives restarts and progress is visible between batches."""
    job_id = uuid.UUID(str(timer.payload["job_id"]))
    batch_size = int(timer.payload.get("batch_size", RESCORE_BATCH_SIZE))
    job = await store.lock_job(uow.conn, job_id)
    if job is None or job["status"] != "running":
        return
    model = await store.current_model(uow.conn)
    if model.version != job["model_version"]:
        await store.update_job(uow.conn, job_id, status="superseded", finished_at=uow.clock.now())
        return
    ids = await store.open_lead_ids(uow.conn, job["cursor"], batch_size)
    leads = await store.lock_leads(uow.conn, ids)
    changed = qualified = disqualified = 0
    for lead in leads:
        outcome = await evaluate(uow, lead, model=model)
        changed += outcome.scored
        qualified += outcome.qualified
        disqualified += outcome.disqualified
    await uow.flush()
    updates: dict[str, Any] = {
        "processed": job["processed"] + len(leads),
        "changed": job["changed"] + changed,
        "qualified": job["qualified"] + qualified,
        "disqualified": job["disqualified"] + disqualified,
        "cursor": ids[-1] if ids else job["cursor"],
    }
    if len(ids) < batch_size:
        updates.update(status="done", finished_at=uow.clock.now())
    else:
        # The next batch is a new timer key, due at once (a manual clock in tests may never
        # move, and re-using this key at the same due time would be deleted as fired).
        batch_no = int(timer.payload.get("batch", 0)) + 1
        await uow.timers.schedule(
            job_key(job_id, batch_no),
            min(timer.due_at, uow.clock.now()),
            RESCORE_BATCH,
            {**timer.payload, "batch": batch_no},
        )
    await store.update_job(uow.conn, job_id, **updates)


HANDLERS: dict[type[EventPayload] | str, Handler] = {
    LeadCaptured: on_lead_captured,
    InquiryReceived: on_inquiry_received,
    LeadProfileUpdated: on_profile_updated,
    ActivityRecorded: on_activity_recorded,
    LeadsMerged: on_leads_merged,
    ConsentChanged: on_consent_changed,
    LeadErased: on_lead_erased,
    LeadAssigned: on_with_sales,
    LeadReassigned: on_with_sales,
    LeadAccepted: on_with_sales,
    LeadContacted: on_with_sales,
    LeadSalesQualified: on_with_sales,
    OpportunityOpened: on_with_sales,
    LeadRejected: on_back_to_marketing,
    LeadRecycled: on_back_to_marketing,
    DealWon: on_outcome,
    DealLost: on_outcome,
}

TIMER_HANDLERS: dict[str, TimerHandler] = {
    REEVALUATE: on_reevaluate,
    NURTURE_TOUCH: on_nurture_touch,
    RESCORE_BATCH: on_rescore_batch,
}
