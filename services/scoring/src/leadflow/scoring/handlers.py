"""Scoring's consumer and timer handlers: which events the batch handler decides, and the few
handlers that do I/O of their own around a decision (a merge moves activities, an erasure
deletes them, a model publish re-scores the open leads a page at a time).

Decisions are pure (``leadflow.scoring.decisions``); the I/O around them is
``leadflow.scoring.batch``; the kernel (``leadflow.events.batch``) runs them.
"""

from __future__ import annotations

import uuid
from typing import Any

from leadflow.events import Handler, TimerHandler, UnitOfWork
from leadflow.events.batch import Outcome, flush_batches, on_batch, run_decision
from leadflow.events.catalogue.intake import LeadErased, LeadsMerged
from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.timers import Timer
from leadflow.scoring import store
from leadflow.scoring.batch import ScoringBatch
from leadflow.scoring.decisions.draft import (
    NURTURE_TOUCH,
    REEVALUATE,
    RESCORE_BATCH,
    job_key,
    nurture_key,
    reevaluate_key,
)
from leadflow.scoring.decisions.events import RULES, erased, merged_away, merged_into
from leadflow.scoring.decisions.timers import nurture_touch, reevaluate, rescored
from leadflow.scoring.predictive import scrub_snapshot
from leadflow.scoring.state import ScoredLead, ScoringContext

__all__ = [
    "NURTURE_TOUCH",
    "REEVALUATE",
    "RESCORE_BATCH",
    "create_handlers",
    "job_key",
    "nurture_key",
    "reevaluate_key",
]

RESCORE_BATCH_SIZE = 500


def _state(state: ScoredLead | None, lead_id: uuid.UUID) -> ScoredLead:
    return state if state is not None else ScoredLead.new(lead_id)


def create_handlers(
    clock: Clock,
) -> tuple[dict[type[EventPayload] | str, Handler], dict[str, TimerHandler]]:
    """The consumer handlers (by event type) and timer handlers (by kind) of a kit whose
    clock is ``clock``."""
    scoring = ScoringBatch(clock)
    batched = on_batch(scoring)

    async def on_leads_merged(event: Envelope, uow: UnitOfWork) -> None:
        payload = event.payload
        assert isinstance(payload, LeadsMerged)
        await flush_batches(uow)
        merged = await store.lock_lead(uow.tx, payload.merged_lead_id)
        if merged is not None:
            await run_decision(
                uow, scoring, merged.lead_id, lambda s, _c: merged_away(_state(s, merged.lead_id))
            )
        await store.move_activities(uow.tx, payload.merged_lead_id, event.lead_id)

        def survivor(s: ScoredLead | None, ctx: ScoringContext) -> Any:
            return merged_into(_state(s, event.lead_id), ctx, event, merged)

        await run_decision(uow, scoring, event.lead_id, survivor, event=event)

    async def on_lead_erased(event: Envelope, uow: UnitOfWork) -> None:
        await flush_batches(uow)
        lead_id = event.lead_id
        await run_decision(uow, scoring, lead_id, lambda s, _c: erased(_state(s, lead_id)))
        await store.delete_activities(uow.tx, lead_id)
        await store.scrub_outcome_snapshots(uow.tx, lead_id, scrub_snapshot)

    async def on_reevaluate(timer: Timer, uow: UnitOfWork) -> None:
        lead_id = timer.lead_id
        if lead_id is not None:
            await run_decision(
                uow, scoring, lead_id, lambda s, c: reevaluate(_state(s, lead_id), c)
            )

    async def on_nurture_touch(timer: Timer, uow: UnitOfWork) -> None:
        lead_id = timer.lead_id
        if lead_id is None:
            return
        track_id, step = timer.payload.get("track_id"), int(timer.payload.get("step", -1))

        def touch(s: ScoredLead | None, ctx: ScoringContext) -> Any:
            return nurture_touch(_state(s, lead_id), ctx, track_id, step, timer.due_at)

        await run_decision(uow, scoring, lead_id, touch)

    async def on_rescore_batch(timer: Timer, uow: UnitOfWork) -> None:
        await rescore_batch(scoring, timer, uow)

    handlers: dict[type[EventPayload] | str, Handler] = dict.fromkeys(RULES, batched)
    handlers[LeadsMerged] = on_leads_merged
    handlers[LeadErased] = on_lead_erased
    timer_handlers: dict[str, TimerHandler] = {
        REEVALUATE: on_reevaluate,
        NURTURE_TOUCH: on_nurture_touch,
        RESCORE_BATCH: on_rescore_batch,
    }
    return handlers, timer_handlers


async def rescore_batch(scoring: ScoringBatch, timer: Timer, uow: UnitOfWork) -> None:
    """One page of a model-publish re-score; re-schedules itself until every open lead is
    done, so the job survives restarts and progress is visible between pages."""
    job_id = uuid.UUID(str(timer.payload["job_id"]))
    batch_size = int(timer.payload.get("batch_size", RESCORE_BATCH_SIZE))
    job = await store.lock_job(uow.tx, job_id)
    if job is None or job["status"] != "running":
        return
    ctx = await scoring.context(uow.tx, [])
    if ctx.model.version != job["model_version"]:
        await store.update_job(uow.tx, job_id, status="superseded", finished_at=ctx.now)
        return
    ids = await store.open_lead_ids(uow.tx, job["cursor"], batch_size)
    states = await scoring.load(uow.tx, ids, ctx)
    outcome: Outcome[ScoredLead] = Outcome(states=dict(states))
    changed = qualified = disqualified = 0
    for lead_id in ids:
        decision, evaluation = rescored(states[lead_id], ctx)
        outcome.record(lead_id, None, decision)
        changed += evaluation.scored
        qualified += evaluation.qualified
        disqualified += evaluation.disqualified
    for lead_id, payloads, _cause, occurred_at in outcome.appends:
        await uow.append(lead_id, payloads, occurred_at=occurred_at)
    await uow.timers.cancel_many(list(outcome.cancel))
    await uow.timers.schedule_many(list(outcome.schedule.values()))
    for extra in await scoring.save(uow.tx, outcome.changed, ctx):
        await uow.append(extra.lead_id, extra.payloads, occurred_at=extra.occurred_at)
    await uow.flush()
    updates: dict[str, Any] = {
        "processed": job["processed"] + len(ids),
        "changed": job["changed"] + changed,
        "qualified": job["qualified"] + qualified,
        "disqualified": job["disqualified"] + disqualified,
        "cursor": ids[-1] if ids else job["cursor"],
    }
    if len(ids) < batch_size:
        updates.update(status="done", finished_at=uow.clock.now())
    else:
        # The next page is a new timer key, due at once (a manual clock in tests may never
        # move, and re-using this key at the same due time would be deleted as fired).
        batch_no = int(timer.payload.get("batch", 0)) + 1
        await uow.timers.schedule(
            job_key(job_id, batch_no),
            min(timer.due_at, uow.clock.now()),
            RESCORE_BATCH,
            {**timer.payload, "batch": batch_no},
        )
    await store.update_job(uow.tx, job_id, **updates)
