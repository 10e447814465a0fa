"""A scoring consumer batch costs the same few statements whatever its size.

The batch's reads (the model versions and tracks' stamp in one statement, its leads created
and locked in one, their activities in the decay window in one) and its writes (the
kernel's timers in one, changed leads, added activities and outcomes in one) are set-based;
every round trip counts, since a batch's time on two shared cores is mostly its round trips
waiting their turn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.events.kit import ServiceKit
from leadflow.scoring.app import create_app
from leadflow.scoring.domain import LeadProfile
from leadflow.scoring.settings import ScoringSettings
from leadflow.scoring.state import LeadRow
from leadflow.scoring.store import lock_batch_leads, lock_leads, save_leads, upsert_lead
from leadflow.testing import StatementLog, app_client, wait_until
from tests.integration.scoring.test_scoring_api import T0, activity, captured, kit_of

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def client(settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(ScoringSettings, run_consumers=False)
    async with app_client(create_app(settings, clock=ManualClock(T0))) as c:
        yield c


async def as_one_batch(kit: ServiceKit, events: Sequence[Envelope]) -> None:
    """What the consumer runner does with one ``getmany`` batch (inbox claim aside)."""
    async with kit.unit_of_work() as uow:
        for e in events:
            uow.causation = e
            await kit.handlers[type(e.payload)](e, uow)


def leads_with_activity(n: int) -> list[Envelope]:
    events: list[Envelope] = []
    for _ in range(n):
        lead = uuid.uuid4()
        events += [captured(lead), activity(lead, "webinar_attended")]
    return events


async def test_a_batch_costs_the_same_few_statements_whatever_its_size(
    client: httpx.AsyncClient,
) -> None:
    kit = kit_of(client)
    await as_one_batch(kit, leads_with_activity(1))  # the model cache warm, as in a service
    with StatementLog(kit.db) as log:
        await as_one_batch(kit, leads_with_activity(1))
        small = list(log.statements)
        log.statements.clear()
        await as_one_batch(kit, leads_with_activity(40))
        large = list(log.statements)
    # BEGIN; model versions + tracks' stamp; leads created and locked; activities in the
    # window; timers (the kernel's, one statement); leads + activities (+ outcomes) in one
    # write; stream versions; event log + outbox + notify in one append; COMMIT.
    assert len(large) == len(small), large
    assert len(large) <= 9, [" ".join(s.split())[:70] for s in large]
    [saved] = [s for s in large if "INSERT INTO activities" in s]
    assert "UPDATE leads" in saved
    assert len([s for s in large if "INSERT INTO timers" in s]) == 1


async def test_sales_feedback_on_frozen_leads_reads_no_activities(
    client: httpx.AsyncClient,
) -> None:
    """Sales taking a lead freezes its snapshot once (which reads its activities); later
    feedback on it (accepted, contacted...) has nothing to score, so its batch skips the
    activities read. (The leads here were never scored: nothing froze them before.)"""
    kit = kit_of(client)
    leads = [uuid.uuid4() for _ in range(3)]
    assigned = [
        Envelope.new(LeadAssigned(assignee_kind="rep", rep_id="rep-1"), lead_id=lead)
        for lead in leads
    ]
    accepted = [Envelope.new(LeadAccepted(rep_id="rep-1"), lead_id=lead) for lead in leads]
    with StatementLog(kit.db) as log:
        await as_one_batch(kit, assigned)  # snapshots taken now
        freezing = list(log.statements)
        log.statements.clear()
        await as_one_batch(kit, accepted)
        frozen = list(log.statements)

    def reads_activities(statements: Sequence[str]) -> bool:
        return any("FROM activities" in s and "INSERT" not in s for s in statements)

    assert reads_activities(freezing)
    assert not reads_activities(frozen)
    assert len(frozen) < len(freezing)
    async with kit.connect() as conn:
        rows = await conn.fetch(
            "SELECT with_sales, snapshot IS NOT NULL FROM leads WHERE lead_id = ANY(:ids)",
            ids=leads,
        )
        assert sorted(tuple(r) for r in rows) == [(True, True)] * 3


async def test_a_batch_writes_each_lead_s_changed_columns_only(client: httpx.AsyncClient) -> None:
    """One statement writes leads that changed different columns: each row takes its own
    changes (a change to NULL included) and keeps what it did not change, so an unchanged
    profile or snapshot is not serialised and parsed again."""
    kit = kit_of(client)
    a, b = uuid.uuid4(), uuid.uuid4()
    async with kit.unit_of_work() as uow:
        await upsert_lead(uow.tx, a, LeadProfile(company="Acme", title="CTO"))
        await upsert_lead(uow.tx, b, LeadProfile(company="Globex"))
        first, second = sorted(await lock_leads(uow.tx, [a, b]), key=lambda r: r.lead_id != a)
        second.set(reeval_at=T0, snapshot={"fit": 10.0})
        await save_leads(uow.tx, [first, second])
    async with kit.unit_of_work() as uow:
        first, second = sorted(await lock_leads(uow.tx, [a, b]), key=lambda r: r.lead_id != a)
        first.set(with_sales=True)
        first.profile = LeadProfile(company="not saved: never marked as changed")
        second.set(profile=LeadProfile(company="Globex", title="VP Sales"), reeval_at=None)
        await save_leads(uow.tx, [first, second])
    async with kit.connect() as conn:
        rows = {
            r.lead_id: r
            for r in await conn.fetch(
                "SELECT lead_id, with_sales, profile->>'company' AS company, "
                "profile->>'title' AS title, reeval_at, snapshot FROM leads "
                "WHERE lead_id = ANY(:ids)",
                ids=[a, b],
            )
        }
    assert (rows[a].with_sales, rows[a].company, rows[a].title) == (True, "Acme", "CTO")
    assert (rows[b].with_sales, rows[b].company, rows[b].title) == (False, "Globex", "VP Sales")
    assert rows[b].reeval_at is None and rows[b].snapshot == {"fit": 10.0}


async def row_versions(kit: ServiceKit, leads: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with kit.connect() as conn:
        rows = await conn.fetch(
            "SELECT lead_id, xmin::text AS v FROM leads WHERE lead_id = ANY(:ids)", ids=leads
        )
    return {r["lead_id"]: r["v"] for r in rows}


async def test_loading_a_batch_locks_the_leads_that_exist_without_writing_them(
    client: httpx.AsyncClient,
) -> None:
    """A batch that changes nothing of a lead (a re-score page, mostly) leaves its row as it
    was: the lead is locked, not upserted (an upsert wrote a new row version per lead)."""
    kit = kit_of(client)
    old, new = uuid.uuid4(), uuid.uuid4()
    async with kit.unit_of_work() as uow:
        await lock_batch_leads(uow.tx, [old])
    before = await row_versions(kit, [old])
    async with kit.unit_of_work() as uow:
        rows = await lock_batch_leads(uow.tx, [new, old, new])
        assert sorted(rows) == sorted([old, new])
        assert all(isinstance(r, LeadRow) and r.status == "open" for r in rows.values())
        async with kit.connect() as other:  # the old lead is locked until this batch ends
            with pytest.raises(Exception, match="could not obtain lock"):
                await other.fetch(
                    "SELECT 1 FROM leads WHERE lead_id = :id FOR UPDATE NOWAIT", id=old
                )
    assert (await row_versions(kit, [old])) == before
    assert set(await row_versions(kit, [old, new])) == {old, new}


async def test_a_lead_another_batch_creates_meanwhile_is_loaded_and_locked(
    client: httpx.AsyncClient,
) -> None:
    """Two transactions creating the same lead: the second waits for the first; once that
    commits, the lead is neither new to the second (its insert is a conflict) nor in the
    snapshot its statement started with, and is read by the upsert that follows."""
    kit = kit_of(client)
    contested, other = uuid.uuid4(), uuid.uuid4()
    pid: list[int] = []

    async def second_batch() -> dict[uuid.UUID, LeadRow]:
        async with kit.unit_of_work() as uow:
            pid.append(int(await uow.tx.fetchval("SELECT pg_backend_pid()")))
            return await lock_batch_leads(uow.tx, [other, contested])

    async def waits_for_a_lock() -> bool:
        if not pid:
            return False
        async with kit.connect() as conn:
            state = await conn.fetchval(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid", pid=pid[0]
            )
        return bool(state == "Lock")

    async with kit.unit_of_work() as uow:
        first = await lock_batch_leads(uow.tx, [contested])
        first[contested].set(with_sales=True)
        await save_leads(uow.tx, [first[contested]])
        waiting = asyncio.create_task(second_batch())
        await wait_until(waits_for_a_lock, message="the second batch waits for the first")
    rows = await asyncio.wait_for(waiting, 60)
    assert sorted(rows) == sorted([other, contested])
    assert rows[contested].with_sales  # the first batch's committed row, not a blank one
