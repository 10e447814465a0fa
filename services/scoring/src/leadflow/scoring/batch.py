"""Scoring's batch handler: the I/O around its pure decisions (``leadflow.scoring.decisions``).

Per consumer batch (the kernel's ``on_batch``): ``context`` reads what every decision reads
(the model, tracks, predictive model, the customers of the accounts the batch's new people
belong to), ``load`` creates and locks the batch's leads and reads their activities in the
decay window, ``decide`` is pure, ``save`` writes the changed leads, added activities and
training outcomes with one statement and then qualifies the accounts whose people moved
(``account.qualified``, the batch-level step). The kernel owns order, causation, timers and
wake-ups. Timer handlers and the merge and erasure handlers run the same path through
``run_decision``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from leadflow.events.batch import Appended, Decision
from leadflow.events.catalogue.intake import LeadCaptured
from leadflow.events.catalogue.scoring import AccountQualified
from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope
from leadflow.events.sql import Tx
from leadflow.scoring import store
from leadflow.scoring.accounts import PersonScore, account_score
from leadflow.scoring.decisions.evaluate import window_start
from leadflow.scoring.decisions.events import SALES_FEEDBACK, decide
from leadflow.scoring.domain import ScoreResult, ScoringModel
from leadflow.scoring.facts import live_score
from leadflow.scoring.predictive import LinearModel
from leadflow.scoring.state import LeadRow, ScoredLead, ScoringContext


class ScoringBatch:
    """``BatchHandler[ScoredLead, ScoringContext]`` for every event scoring consumes."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> ScoringContext:
        return await read_context(tx, events, now=self.clock.now())

    async def load(
        self, tx: Tx, lead_ids: Sequence[uuid.UUID], ctx: ScoringContext
    ) -> dict[uuid.UUID, ScoredLead]:
        """The leads (created where missing, locked) and their activities in the decay
        window; a lead whose batch is only sales feedback on a frozen snapshot has nothing
        to score, so its activities are not read."""
        rows = await store.lock_batch_leads(tx, lead_ids)
        wanted = [
            lead_id
            for lead_id, row in rows.items()
            if lead_id not in ctx.sales_only or row.snapshot is None
        ]
        acts = {}
        if wanted:
            earliest = min(window_start(rows[i], ctx.model, ctx.now) for i in wanted)
            acts = await store.activities_of(tx, wanted, earliest)
        return {
            lead_id: ScoredLead(row, acts.get(lead_id, []), activities_read=lead_id in acts)
            for lead_id, row in rows.items()
        }

    def decide(
        self, state: ScoredLead | None, event: Envelope, ctx: ScoringContext
    ) -> Decision[ScoredLead]:
        return decide(state, event, ctx)

    async def save(
        self, tx: Tx, changed: Mapping[uuid.UUID, ScoredLead], ctx: ScoringContext
    ) -> Sequence[Appended]:
        states = list(changed.values())
        await store.save_batch(tx, states)
        moved: dict[str, uuid.UUID] = {}
        for state in states:
            if not state.account_moved:
                continue  # its profile is not read (``state.LeadRow.profile``)
            account_id = state.row.profile.account_id
            if account_id is not None:
                moved[account_id] = state.lead_id
        return await qualify_accounts(tx, moved, ctx) if moved else ()


async def read_context(tx: Tx, events: Sequence[Envelope], *, now: datetime) -> ScoringContext:
    """What a batch of ``events`` is decided with, read once (the model and tracks come from
    caches checked by one statement)."""
    model, predictive_version, tracks = await store.batch_versions(tx)
    predictive: LinearModel | None = None
    if predictive_version is not None:
        weights = await store.predictive_weights(tx, predictive_version)
        if weights is not None:
            predictive = LinearModel.from_json(weights, predictive_version)
    customers = await _customers_of_new_people(tx, events)
    by_lead: dict[uuid.UUID, bool] = {}
    for event in events:
        feedback = isinstance(event.payload, SALES_FEEDBACK)
        by_lead[event.lead_id] = by_lead.get(event.lead_id, True) and feedback
    return ScoringContext(
        now=now,
        model=model,
        tracks=tuple(tracks),
        predictive=predictive,
        customers=customers,
        sales_only=frozenset(lead_id for lead_id, only in by_lead.items() if only),
    )


async def _customers_of_new_people(
    tx: Tx, events: Sequence[Envelope]
) -> dict[str, frozenset[uuid.UUID]]:
    """Whether a new person's account is a customer, asked once for the batch: a question per
    ``lead.captured`` made every capture a round trip, which cost the pipeline a third of its
    leads per second."""
    accounts = {
        e.payload.account.account_id
        for e in events
        if isinstance(e.payload, LeadCaptured)
        and not e.payload.historical
        and e.payload.account is not None
        and e.payload.account.account_id is not None
    }
    if not accounts:
        return {}
    found = await store.customers_of_accounts(tx, sorted(accounts))
    return {account: frozenset(leads) for account, leads in found.items()}


async def qualify_accounts(
    tx: Tx, moved: Mapping[str, uuid.UUID], ctx: ScoringContext
) -> list[Appended]:
    """``account.qualified`` for each account in ``moved`` that is not yet an MQA and now
    is, rolled up from its people's last published scores (``accounts.account_score``), on
    the stream of the lead that moved it."""
    members = await store.account_members(tx, sorted(moved))
    appended: list[Appended] = []
    for account_id, rows in sorted(members.items()):
        people = [
            PersonScore(str(lead_id), float(score["fit"]), float(score["engagement"]), dq)
            for lead_id, score, dq, _, _ in rows
            if score is not None
        ]
        result = account_score(people, ctx.model)
        if not result.qualified:
            continue
        tipping = moved[account_id]
        if not await store.mark_account_qualified(tx, account_id, tipping, ctx.now):
            continue
        appended.append(
            Appended(
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
                        model_version=ctx.model.version,
                    )
                ],
            )
        )
    return appended


async def score_lead(tx: Tx, lead: LeadRow, model: ScoringModel, now: datetime) -> ScoreResult:
    """A stored lead's live score at ``now`` (``GET /v1/leads/{id}/score``, account scores)."""
    acts = await store.activities(tx, lead.lead_id, window_start(lead, model, now))
    return live_score(lead.profile, acts, model, now, lead.engagement_since)
