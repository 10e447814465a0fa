"""Event → decision: intake events re-score their lead, routing events move qualification and
nurture state, durable timers cool leads down, send nurture touches and re-score after a
model publish. Decisions come from ``domain``; this module only loads, decides and appends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from leadflow.events import Handler, TimerHandler, UnitOfWork
from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    ConsentChanged,
    DoNotContactChanged,
    HistoricalDealLost,
    HistoricalDealWon,
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
    LeadsMerged,
)
from leadflow.events.catalogue.routing import (
    CustomerChurned,
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
    AccountQualified,
    ExpansionOpened,
    FeatureWeight,
    LeadDisqualified,
    LeadQualified,
    LeadReinstated,
    LeadScored,
    NurtureEnrolled,
    NurtureExited,
    NurtureTouchDue,
)
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.timers import Timer
from leadflow.scoring import store
from leadflow.scoring.accounts import PersonScore, account_score
from leadflow.scoring.domain import (
    FORGET_AFTER_HALF_LIVES,
    Activity,
    EnrolmentReason,
    LeadProfile,
    NurtureTrack,
    ScoreResult,
    ScoringModel,
    choose_track,
    materially_changed,
    next_reevaluation,
    profile_after_inquiry,
    profile_from_captured,
    profile_updated,
    snapshot,
    touch_due_at,
)
from leadflow.scoring.expansion import (
    CHURNED,
    CUSTOMER,
    colleague_opens,
    expansion_trigger,
    is_hand_raise,
    is_win_back,
)
from leadflow.scoring.facts import inquiry_activity, live_score, recorded_activity
from leadflow.scoring.predictive import (
    LinearModel,
    Prediction,
    lead_features,
    scrub_snapshot,
    snapshot_of,
)
from leadflow.scoring.store import LeadRow

REEVALUATE = "scoring.reevaluate"
NURTURE_TOUCH = "scoring.nurture_touch"
RESCORE_BATCH = "scoring.rescore_batch"
TOP_CONTRIBUTIONS = 5
RESCORE_BATCH_SIZE = 500
YIELD_EVERY = 25


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


@dataclass
class _Versions:
    """What a unit of work scores with, read once: a consumer batch decides every event with
    one model (the document kind's cache makes the read itself one index probe)."""

    model: ScoringModel | None = None
    predictive_version: int | None = None
    predictive: LinearModel | None = None
    predictive_read: bool = False
    tracks: list[NurtureTrack] | None = None


async def _versions(uow: UnitOfWork) -> _Versions:
    versions = uow.local(_Versions)
    if versions.model is None:
        versions.model, versions.predictive_version = await store.current_versions(uow.conn)
    return versions


async def model_for(uow: UnitOfWork) -> ScoringModel:
    """The current model, looked up once per unit of work."""
    model = (await _versions(uow)).model
    assert model is not None
    return model


async def tracks_for(uow: UnitOfWork) -> list[NurtureTrack]:
    versions = uow.local(_Versions)
    if versions.tracks is None:
        versions.tracks = await store.tracks(uow.conn)
    return versions.tracks


async def predictive_for(uow: UnitOfWork) -> LinearModel | None:
    """The promoted predictive model (weights only), looked up once per unit of work."""
    versions = await _versions(uow)
    if not versions.predictive_read:
        version = versions.predictive_version
        if version is not None:
            weights = await store.predictive_weights(uow.conn, version)
            if weights is not None:
                versions.predictive = LinearModel.from_json(weights, version)
        versions.predictive_read = True
    return versions.predictive


class Effects:
    """Where a decision's side effects go. Immediate (API commands, timers): straight to the
    database. Batched (the consumer): timers, lead rows and outcomes are collected and written
    with a few set-based statements at the end of the batch, and activities come from the
    batch's one preloaded read."""

    def __init__(
        self,
        uow: UnitOfWork,
        acts: dict[uuid.UUID, list[Activity]] | None = None,
        preloaded: set[uuid.UUID] | None = None,
    ) -> None:
        self.uow = uow
        self.batched = acts is not None
        self.acts: dict[uuid.UUID, list[Activity]] = acts or {}
        # Leads whose activities the batch read up front (``acts`` has those that have any);
        # another lead's are read when asked for (None: every lead of the batch was read).
        self.preloaded = preloaded
        self.timers: dict[str, Timer | None] = {}  # key -> schedule, or None: cancel
        self.leads: dict[uuid.UUID, LeadRow] = {}
        self.outcomes: list[dict[str, Any]] = []
        # Accounts whose people's published scores moved: account id -> the lead that moved
        # last (the stream ``account.qualified`` goes on if the account qualifies).
        self.accounts: dict[str, uuid.UUID] = {}
        # The customers (lead ids) of the accounts the batch's new people belong to, read
        # once up front; None: not read, asked of the database per lead (API commands).
        self.customers: dict[str, set[uuid.UUID]] | None = None

    async def schedule(
        self, key: str, due: datetime, kind: str, payload: dict[str, Any], lead_id: uuid.UUID
    ) -> None:
        if not self.batched:
            await self.uow.timers.schedule(key, due, kind, payload, lead_id=lead_id)
            return
        self.timers[key] = Timer(key, kind, due, payload, lead_id)

    async def cancel(self, key: str) -> None:
        if not self.batched:
            await self.uow.timers.cancel(key)
            return
        self.timers[key] = None

    async def save(self, lead: LeadRow) -> None:
        if not self.batched:
            await store.save_lead(self.uow.conn, lead)
            return
        self.leads[lead.lead_id] = lead

    async def outcome(self, row: dict[str, Any]) -> None:
        if not self.batched:
            await store.insert_outcomes(self.uow.conn, [row])
            return
        self.outcomes.append(row)

    async def activities(self, lead: LeadRow, since: datetime) -> list[Activity]:
        if not self.batched:
            return await store.activities(self.uow.conn, lead.lead_id, since)
        if self.preloaded is not None and lead.lead_id not in self.preloaded:
            return (await store.activities_of(self.uow.conn, [lead.lead_id], since))[lead.lead_id]
        return [a for a in self.acts.get(lead.lead_id, []) if a.occurred_at >= since]

    async def account_moved(self, lead: LeadRow) -> None:
        """The lead's published score moved: its account may have become an MQA."""
        account_id = lead.profile.account_id
        if account_id is None:
            return
        self.accounts[account_id] = lead.lead_id
        if not self.batched:
            await qualify_accounts(self.uow, self.accounts)
            self.accounts = {}

    async def write(self) -> None:
        """The batch's timers, leads and outcomes with one statement; then the accounts
        whose people moved (one read, on the rows just written)."""
        cancel = [k for k, t in self.timers.items() if t is None]
        schedule = [t for t in self.timers.values() if t is not None]
        self.uow.timers.note_scheduled(t.due_at for t in schedule)
        await store.write_batch(
            self.uow.conn, list(self.leads.values()), self.outcomes, cancel, schedule
        )
        self.timers, self.leads, self.outcomes = {}, {}, []
        if self.accounts:
            await qualify_accounts(self.uow, self.accounts)
            self.accounts = {}


async def qualify_accounts(uow: UnitOfWork, moved: Mapping[str, uuid.UUID]) -> None:
    """Emit ``account.qualified`` for each account in ``moved`` that is not yet an MQA and
    now is, rolled up from its people's last published scores (``accounts.account_score``)."""
    members = await store.account_members(uow.conn, sorted(moved))
    if not members:
        return
    model = await model_for(uow)
    now = uow.clock.now()
    for account_id, rows in sorted(members.items()):
        people = [
            PersonScore(str(lead_id), float(score["fit"]), float(score["engagement"]), dq)
            for lead_id, score, dq, _, _ in rows
            if score is not None
        ]
        result = account_score(people, model)
        if not result.qualified:
            continue
        tipping = moved[account_id]
        if not await store.mark_account_qualified(uow.conn, account_id, tipping, now):
            continue
        await uow.append(
            tipping,
            [
                AccountQualified(
                    account_id=account_id,
                    account_domain=rows[0][3],
                    registered=any(r[4] for r in rows),
                    fit=result.fit,
                    engagement=result.engagement,
                    grade=result.grade,
                    matrix_cell=result.matrix_cell,
                    engaged_people=result.engaged_people,
                    people=[r[0] for r in rows],
                    model_version=model.version,
                )
            ],
        )


def _window_start(lead: LeadRow, model: ScoringModel, now: datetime) -> datetime:
    """The oldest activity that can still count (``domain.score`` forgets older ones)."""
    since = now - timedelta(days=model.decay.half_life_days * FORGET_AFTER_HALF_LIVES)
    if lead.engagement_since is not None and lead.engagement_since > since:
        since = lead.engagement_since
    return since


async def score_lead(
    uow: UnitOfWork,
    lead: LeadRow,
    model: ScoringModel,
    now: datetime,
    fx: Effects | None = None,
) -> ScoreResult:
    fx = fx or Effects(uow)
    acts = await fx.activities(lead, _window_start(lead, model, now))
    return live_score(lead.profile, acts, model, now, lead.engagement_since)


@dataclass
class Evaluation:
    result: ScoreResult | None = None
    scored: bool = False
    qualified: bool = False
    disqualified: bool = False


def _as_of(uow: UnitOfWork) -> datetime:
    """When the fact behind a snapshot happened: the causing event's time, never the future."""
    now = uow.clock.now()
    cause = uow.causation
    return min(cause.occurred_at, now) if cause is not None else now


async def freeze(
    uow: UnitOfWork,
    fx: Effects,
    lead: LeadRow,
    *,
    result: ScoreResult | None = None,
    model: ScoringModel | None = None,
) -> None:
    """Snapshot what is known now (features, rule score) unless this cycle is frozen already:
    called at qualification and when sales first acts, so no later field leaks in."""
    if lead.snapshot is not None:
        return
    at = _as_of(uow)
    model = model or await model_for(uow)
    acts = [a for a in await fx.activities(lead, _window_start(lead, model, at))
            if a.occurred_at <= at]  # fmt: skip
    if result is None:
        result = live_score(lead.profile, acts, model, at, lead.engagement_since)
    features = lead_features(lead.profile, acts, result, model)
    lead.set(snapshot=snapshot_of(result, features), snapshot_at=at)


async def record_outcome(
    uow: UnitOfWork, fx: Effects, lead: LeadRow, outcome: str, reason_code: str | None
) -> None:
    """An outcome becomes a training example with the snapshot of this sales cycle."""
    await freeze(uow, fx, lead)
    cause = uow.causation
    assert lead.snapshot is not None and lead.snapshot_at is not None
    await fx.outcome(
        {
            "event_id": cause.event_id if cause is not None else uuid.uuid4(),
            "lead_id": lead.lead_id,
            "outcome": outcome,
            "reason_code": reason_code,
            "occurred_at": cause.occurred_at if cause is not None else uow.clock.now(),
            "snapshot": lead.snapshot,
            "snapshot_at": lead.snapshot_at,
        }
    )


async def evaluate(
    uow: UnitOfWork,
    lead: LeadRow,
    *,
    model: ScoringModel | None = None,
    result: ScoreResult | None = None,
    fx: Effects | None = None,
) -> Evaluation:
    """Re-score ``lead`` and append what changed: LeadScored when the score moved materially,
    LeadDisqualified / LeadQualified once, nurture enrolment or exit; then save the row."""
    fx = fx or Effects(uow)
    outcome = Evaluation()
    if lead.status != "open":
        await fx.save(lead)
        return outcome
    now = uow.clock.now()
    model = model or await model_for(uow)
    acts: list[Activity] | None = None
    if result is None:
        acts = await fx.activities(lead, _window_start(lead, model, now))
        result = live_score(lead.profile, acts, model, now, lead.engagement_since)
    outcome.result = result
    lead_id = lead.lead_id
    payloads: list[EventPayload] = []

    predictive = await predictive_for(uow)
    prediction: Prediction | None = None
    if predictive is not None:
        if acts is None:
            acts = await fx.activities(lead, _window_start(lead, model, now))
        prediction = predictive.predict(lead_features(lead.profile, acts, result, model))

    if result.disqualified_by is not None and not lead.disqualified:
        payloads.append(
            LeadDisqualified(
                reason=result.disqualify_reason or result.disqualified_by,
                rule_id=result.disqualified_by,
                model_version=model.version,
            )
        )
        await record_outcome(uow, fx, lead, "disqualified", result.disqualified_by)
        lead.set(disqualified=True, disqualify_reason=result.disqualify_reason)
        outcome.disqualified = True
        payloads.extend(await _exit_nurture(fx, lead, "disqualified"))

    summary = score_summary(result)
    if prediction is not None and predictive is not None:
        summary["predicted_conversion"] = round(prediction.probability, 4)
        summary["predictive_model_version"] = predictive.version
    if materially_changed(lead.score, result) or _prediction_moved(lead.score, prediction):
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
                predicted_conversion=summary.get("predicted_conversion"),
                predictive_model_version=predictive.version if prediction and predictive else None,
                top_features=[FeatureWeight(feature=n, weight=w)
                              for n, w in (prediction.top_features if prediction else [])],
            )
        )  # fmt: skip
        lead.set(score=summary, scored_at=now)
        outcome.scored = True

    if result.mql_ready and not lead.qualified and not lead.with_sales and not lead.disqualified:
        payloads.extend(await _exit_nurture(fx, lead, "qualified"))
        payloads.append(
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
        lead.set(qualified=True, qualified_at=now)
        await freeze(uow, fx, lead, model=model)
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
        payloads.extend(await _enrol(uow, fx, lead, "not_sales_ready", model=model))

    due = next_reevaluation(result, model, now)
    if due is None:
        if lead.reeval_at is not None:
            await fx.cancel(reevaluate_key(lead_id))
            lead.set(reeval_at=None)
    elif lead.reeval_at is None or lead.reeval_at <= now or due < lead.reeval_at:
        # A later due time than the one already set is left alone: the earlier timer fires,
        # re-scores and sets the right time then. This saves a write per activity burst.
        await fx.schedule(reevaluate_key(lead_id), due, REEVALUATE, {}, lead_id)
        lead.set(reeval_at=due)

    if payloads:
        await uow.append(lead_id, payloads)
    await fx.save(lead)
    if outcome.scored or outcome.qualified:
        await fx.account_moved(lead)
    return outcome


def _prediction_moved(old: dict[str, Any] | None, prediction: Prediction | None) -> bool:
    """A prediction that moved by 5 points or more is news; drift below that is not."""
    if prediction is None:
        return False
    before = (old or {}).get("predicted_conversion")
    return before is None or abs(float(before) - prediction.probability) >= 0.05


async def _enrol(
    uow: UnitOfWork,
    fx: Effects,
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
            await _schedule_touch(fx, lead.lead_id, track.id, lead.nurture_step, due)
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
    await _schedule_touch(fx, lead.lead_id, chosen.id, 0, due)
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
    fx: Effects, lead_id: uuid.UUID, track_id: str, step: int, due: datetime
) -> None:
    await fx.schedule(
        nurture_key(lead_id), due, NURTURE_TOUCH, {"track_id": track_id, "step": step}, lead_id
    )


async def _exit_nurture(fx: Effects, lead: LeadRow, reason: Any) -> list[EventPayload]:
    if lead.nurture_status not in {"active", "paused"} or lead.track_id is None:
        return []
    await fx.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="exited", nurture_reason=reason, nurture_next_due_at=None)
    return [NurtureExited(track_id=lead.track_id, reason=reason)]


async def _pause_nurture(fx: Effects, lead: LeadRow) -> list[EventPayload]:
    """Sales is working the lead: stop touches, remember the step to resume at."""
    if lead.nurture_status != "active" or lead.track_id is None:
        return []
    await fx.cancel(nurture_key(lead.lead_id))
    lead.set(nurture_status="paused", nurture_next_due_at=None)
    return [NurtureExited(track_id=lead.track_id, reason="handed_to_sales")]


# -- the consumer batch -----------------------------------------------------------------------

LeadOp = Callable[[Envelope, UnitOfWork, Effects, LeadRow], Awaitable[None]]


@dataclass
class _Batch:
    ops: list[tuple[Envelope, LeadOp, str | None]] = field(default_factory=list)
    activities: list[tuple[uuid.UUID, str, Activity]] = field(default_factory=list)


def _queue(
    uow: UnitOfWork, event: Envelope, op: LeadOp, activity: tuple[str, Activity] | None = None
) -> None:
    """Defer a lead's event to the end of the consumer batch, where all of the batch's leads
    are locked, read and written with a handful of statements instead of several per event."""
    batch = uow.batch(_Batch, _Batch, partial(_run_ops, uow))
    key = None
    if activity is not None:
        key = activity[0]
        batch.activities.append((event.lead_id, activity[0], activity[1]))
    batch.ops.append((event, op, key))


async def drain(uow: UnitOfWork) -> None:
    """Run the queued ops now: called first by any handler that works outside the batch
    (merge, erasure) so nothing overtakes an earlier event."""
    await uow.flush_batch(_Batch)


async def _run_ops(uow: UnitOfWork, batch: _Batch) -> None:
    """Run the queued ops in arrival order (at flush, or earlier through ``drain``)."""
    if not batch.ops:
        return
    conn = uow.conn
    new, leads, versions = await store.prepare_batch(
        conn, batch.activities, [e.lead_id for e, _, _ in batch.ops]
    )
    # The unit of work's first look at the versions is the one it keeps (a drain earlier in
    # the same unit of work may have read them already).
    kept = uow.local(_Versions)
    if kept.model is None:
        kept.model, kept.predictive_version = versions
    model = await model_for(uow)
    now = uow.clock.now()
    # Activities are read for the leads whose ops may score them: a batch of sales feedback
    # on leads already frozen (most of them) needs none, and saves the read.
    wanted = {
        event.lead_id
        for event, op, _ in batch.ops
        if not (op is _with_sales and leads[event.lead_id].snapshot is not None)
    }
    loaded: dict[uuid.UUID, list[Activity]] = {}
    if wanted:
        earliest = min(_window_start(leads[lead_id], model, now) for lead_id in wanted)
        loaded = await store.activities_of(conn, list(wanted), earliest)
    fresh = {(lead_id, key): act for lead_id, key, act in batch.activities}
    acts = {
        lead_id: [a for a in items if (lead_id, a.activity_id) not in new]
        for lead_id, items in loaded.items()
    }
    fx = Effects(uow, acts, preloaded=wanted)
    fx.customers = await _customers_of_new_people(uow, batch)
    causation = uow.causation
    try:
        for n, (event, op, key) in enumerate(batch.ops, start=1):
            if n % YIELD_EVERY == 0:
                # The batch's decisions are CPU only (effects are deferred): let the loop run
                # Kafka heartbeats and the outbox relay now and then.
                await asyncio.sleep(0)
            if key is not None and (event.lead_id, key) in new:
                fx.acts.setdefault(event.lead_id, []).append(fresh[(event.lead_id, key)])
                new.discard((event.lead_id, key))  # one event adds it once
            uow.causation = event
            await op(event, uow, fx, leads[event.lead_id])
    finally:
        uow.causation = causation
    await fx.write()


async def _customers_of_new_people(uow: UnitOfWork, batch: _Batch) -> dict[str, set[uuid.UUID]]:
    """Whether a new person's account is a customer, asked once for the batch: a question per
    ``lead.captured`` made every capture a round trip (and a flush of the batch's pending
    reads), which cost the pipeline a third of its leads per second."""
    accounts = {
        event.payload.account.account_id
        for event, op, _ in batch.ops
        if op is _captured
        and isinstance(event.payload, LeadCaptured)
        and not event.payload.historical
        and event.payload.account is not None
        and event.payload.account.account_id is not None
    }
    if not accounts:
        return {}
    return await store.customers_of_accounts(uow.conn, sorted(accounts))


# -- intake -----------------------------------------------------------------------------------


async def on_lead_captured(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, LeadCaptured)
    _queue(uow, event, _captured, inquiry_activity(
        payload.inquiry_id, event.occurred_at, payload.capture_method, payload.rating))  # fmt: skip


# A lead imported as history is never open here: nothing qualifies, enrols or re-scores it
# (so routing, sla-monitor and notify never hear of it); its outcome makes it an example.
HISTORY = "history"


async def _captured(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    assert isinstance(event.payload, LeadCaptured)
    lead.set(profile=profile_from_captured(event.payload))
    if event.payload.historical:
        lead.set(status=HISTORY)
        await fx.save(lead)
        return
    await _colleague_interest(uow, fx, lead)
    await evaluate(uow, lead, fx=fx)


async def _colleague_interest(uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """A new person at a customer account: their hand-raise opens an expansion cycle of the
    account (``expansion.opened`` with ``colleague``), qualified and routed as one."""
    account_id = lead.profile.account_id
    if account_id is None or not colleague_opens(lead.status, lead.cycle, lead.expansions, True):
        return  # the cheap checks first: most leads are no colleague of a customer
    if fx.customers is not None:
        if not fx.customers.get(account_id, set()) - {lead.lead_id}:
            return
    elif not await store.is_customer_account(uow.conn, account_id, lead.lead_id):
        return
    lead.set(cycle="expansion", expansions=1)
    model = await model_for(uow)
    await uow.append(
        lead.lead_id,
        ExpansionOpened(
            trigger="hand_raise",
            account_id=account_id,
            account_domain=lead.profile.account_domain,
            expansion_number=1,
            colleague=True,
            model_version=model.version,
        ),
    )


async def on_inquiry_received(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, InquiryReceived)
    _queue(uow, event, _inquiry, inquiry_activity(
        payload.inquiry_id, event.occurred_at, payload.capture_method, payload.rating))  # fmt: skip


async def _inquiry(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    assert isinstance(event.payload, InquiryReceived)
    lead.set(profile=profile_after_inquiry(lead.profile, event.payload))
    if event.payload.historical:
        await fx.save(lead)  # history informs the profile; it qualifies nobody
        return
    await _customer_interest(uow, fx, lead, "inquiry")
    await evaluate(uow, lead, fx=fx)


async def on_profile_updated(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _profile_updated)


async def _profile_updated(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    assert isinstance(event.payload, LeadProfileUpdated)
    lead.set(profile=profile_updated(lead.profile, event.payload))
    await evaluate(uow, lead, fx=fx)


async def on_activity_recorded(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, ActivityRecorded)
    _queue(uow, event, _evaluate_op, recorded_activity(payload, event.occurred_at, event.event_id))


async def _evaluate_op(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    assert isinstance(event.payload, ActivityRecorded)
    await _customer_interest(uow, fx, lead, event.payload.activity_type)
    await evaluate(uow, lead, fx=fx)


async def _customer_interest(
    uow: UnitOfWork, fx: Effects, lead: LeadRow, activity_type: str | None
) -> None:
    """A customer's new interest may open an expansion cycle (``expansion.opened``: the
    rules are ``leadflow.scoring.expansion``); a churned customer's hand-raise is a win-back
    (a new-business cycle). Either way the lead is open again, so ``evaluate`` that follows
    qualifies it (a new cycle: a new snapshot, a new assignment) or lets it wait."""
    if lead.status not in (CUSTOMER, CHURNED):
        return
    if is_win_back(lead.status, activity_type):
        lead.set(status="open", cycle="new_business", qualified=False, with_sales=False,
                 snapshot=None, snapshot_at=None)  # fmt: skip
        return
    model = await model_for(uow)
    result: ScoreResult | None = None
    if activity_type is None or not is_hand_raise(activity_type):
        result = await score_lead(uow, lead, model, uow.clock.now(), fx)
    trigger = expansion_trigger(lead.status, activity_type, result.mql_ready if result else None)
    if trigger is None:
        return
    number = lead.expansions + 1
    lead.set(status="open", cycle="expansion", expansions=number, qualified=False,
             with_sales=False, snapshot=None, snapshot_at=None)  # fmt: skip
    await uow.append(
        lead.lead_id,
        ExpansionOpened(
            trigger=trigger,
            account_id=lead.profile.account_id,
            account_domain=lead.profile.account_domain,
            expansion_number=number,
            engagement=result.engagement if result else None,
            model_version=model.version,
        ),
    )


async def on_leads_merged(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, LeadsMerged)
    await drain(uow)
    fx = Effects(uow)
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
    await evaluate(uow, survivor, fx=fx)


async def on_consent_changed(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _consent_changed)


async def _consent_changed(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """Marketing e-mail consent governs nurture e-mail only: an opt-out ends the nurture
    track, an opt-in lets a lead that left it for that reason be enrolled again. Neither
    touches qualification or sales (that is do-not-contact's business)."""
    payload = event.payload
    assert isinstance(payload, ConsentChanged)
    lead.set(profile=lead.profile.model_copy(update={"marketing_opt_in": payload.marketing_opt_in}))
    payloads = [] if payload.marketing_opt_in else await _exit_nurture(fx, lead, "opted_out")
    reopened = lead.nurture_status == "exited" and lead.nurture_reason == "opted_out"
    if payload.marketing_opt_in and reopened:
        lead.set(nurture_status="none")
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await evaluate(uow, lead, fx=fx)


async def on_do_not_contact_changed(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _do_not_contact_changed)


async def _do_not_contact_changed(
    event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow
) -> None:
    """No contact at all: the built-in ``do_not_contact`` rule disqualifies the lead (routing
    takes it out of the rep's queue, sla-monitor stops its clocks). Lifted: a lead whose
    disqualification no longer holds is reinstated at ``inquiry`` and re-evaluated, so it
    qualifies (and is routed again) or nurtures like any other lead."""
    payload = event.payload
    assert isinstance(payload, DoNotContactChanged)
    lead.set(profile=lead.profile.model_copy(update={"do_not_contact": payload.do_not_contact}))
    if not payload.do_not_contact and lead.disqualified and lead.status == "open":
        model = await model_for(uow)
        result = await score_lead(uow, lead, model, uow.clock.now(), fx)
        if result.disqualified_by is None:
            await uow.append(
                lead.lead_id,
                LeadReinstated(
                    reason="do_not_contact_lifted",
                    rule_id="do_not_contact",
                    model_version=model.version,
                ),
            )
            lead.set(disqualified=False, disqualify_reason=None, qualified=False,
                     with_sales=False, snapshot=None, snapshot_at=None)  # fmt: skip
            if lead.nurture_status == "exited":
                lead.set(nurture_status="none")
            await evaluate(uow, lead, model=model, result=result, fx=fx)
            return
    await evaluate(uow, lead, fx=fx)


async def on_lead_erased(event: Envelope, uow: UnitOfWork) -> None:
    await drain(uow)
    fx = Effects(uow)
    lead = await store.upsert_lead(uow.conn, event.lead_id)
    payloads = await _exit_nurture(fx, lead, "erased")
    await uow.timers.cancel(reevaluate_key(lead.lead_id))
    await store.delete_activities(uow.conn, lead.lead_id)
    await store.scrub_outcome_snapshots(uow.conn, lead.lead_id, scrub_snapshot)
    lead.set(
        status="erased",
        profile=LeadProfile(),
        reeval_at=None,
        snapshot=scrub_snapshot(lead.snapshot),
    )
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await store.save_lead(uow.conn, lead)


# -- routing ----------------------------------------------------------------------------------


async def on_with_sales(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _with_sales)


async def _with_sales(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """Assigned, accepted, worked: sales has the lead, so nurture pauses and the predictive
    snapshot is frozen (if qualification did not already freeze it)."""
    payloads = await _pause_nurture(fx, lead)
    lead.set(with_sales=True)
    await freeze(uow, fx, lead)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await fx.save(lead)


async def on_back_to_marketing(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _back_to_marketing)


async def _back_to_marketing(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """Rejected or recycled: back to nurture, and engagement counts afresh from now, so the
    lead must show new interest before it qualifies again. A rejection is an outcome (with
    sales' reason); either way the next cycle gets a fresh snapshot."""
    rejected = isinstance(event.payload, LeadRejected)
    if rejected:
        assert isinstance(event.payload, LeadRejected)
        await record_outcome(uow, fx, lead, "rejected", event.payload.reason_code)
    reason: EnrolmentReason = "rejected" if rejected else "recycled"
    lead.set(with_sales=False, qualified=False, engagement_since=event.occurred_at,
             snapshot=None, snapshot_at=None)  # fmt: skip
    if lead.status != "open":
        await fx.save(lead)
        return
    payloads: list[EventPayload] = []
    if not lead.disqualified and lead.profile.marketing_opt_in is not False:
        model = await model_for(uow)
        payloads = await _enrol(uow, fx, lead, reason, model=model)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await evaluate(uow, lead, fx=fx)


async def on_outcome(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _outcome)


async def _outcome(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """Won or lost: the lead leaves scoring; the outcome is kept for predictive training
    (imported history too: its snapshot is the lead as the file described it). A win makes
    a customer whose engagement counts afresh from the win (what earned this deal does not
    open the next); a lost expansion leaves a customer a customer (the lifecycle's rule)."""
    payload = event.payload
    won = isinstance(payload, DealWon | HistoricalDealWon)
    reason = payload.reason_code if isinstance(payload, DealLost | HistoricalDealLost) else None
    await record_outcome(uow, fx, lead, "won" if won else "lost", reason)
    payloads = await _exit_nurture(fx, lead, "completed")
    await fx.cancel(reevaluate_key(lead.lead_id))
    outcome = "won" if won else "lost"
    customer = won or (lead.cycle == "expansion" and lead.status == "open")
    lead.set(status=CUSTOMER if customer else outcome, outcome=outcome, with_sales=False,
             reeval_at=None)  # fmt: skip
    if won:
        lead.set(engagement_since=event.occurred_at)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await fx.save(lead)


async def on_customer_churned(event: Envelope, uow: UnitOfWork) -> None:
    _queue(uow, event, _churned)


async def _churned(event: Envelope, uow: UnitOfWork, fx: Effects, lead: LeadRow) -> None:
    """The CRM says the customer left: customer status ends, and with it any open expansion
    (nothing re-scores or qualifies it); a later hand-raise is a win-back."""
    if lead.status != CUSTOMER and not (lead.status == "open" and lead.cycle == "expansion"):
        await fx.save(lead)
        return
    payloads = await _exit_nurture(fx, lead, "completed")
    await fx.cancel(reevaluate_key(lead.lead_id))
    lead.set(status=CHURNED, with_sales=False, reeval_at=None)
    if payloads:
        await uow.append(lead.lead_id, payloads)
    await fx.save(lead)


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
                subject=touch.subject, body=touch.body,
            )
        )  # fmt: skip
        # The cadence counts from when the touch was due, so a late firing does not drift.
        due = touch_due_at(track, step + 1, timer.due_at)
        if due is None:
            payloads.append(NurtureExited(track_id=track.id, reason="completed"))
            lead.set(nurture_status="completed", nurture_step=step + 1, nurture_next_due_at=None)
        else:
            due = max(due, timer.due_at + timedelta(microseconds=1))
            await _schedule_touch(Effects(uow), lead.lead_id, track.id, step + 1, due)
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
    now = uow.clock.now()
    earliest = min((_window_start(lead, model, now) for lead in leads), default=now)
    fx = Effects(uow, await store.activities_of(uow.conn, ids, earliest))
    for lead in leads:
        outcome = await evaluate(uow, lead, model=model, fx=fx)
        changed += outcome.scored
        qualified += outcome.qualified
        disqualified += outcome.disqualified
    await fx.write()
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
    DoNotContactChanged: on_do_not_contact_changed,
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
    HistoricalDealWon: on_outcome,
    HistoricalDealLost: on_outcome,
    CustomerChurned: on_customer_churned,
}

TIMER_HANDLERS: dict[str, TimerHandler] = {
    REEVALUATE: on_reevaluate,
    NURTURE_TOUCH: on_nurture_touch,
    RESCORE_BATCH: on_rescore_batch,
}
