"""Ingest writes a consumer batch at once: each event logged once, in order, and personal
fields kept aside only for leads that are not erased, whatever the order within a batch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.analytics.app import create_kit
from leadflow.analytics.handlers import EventLogIngest, log_entry, write_log
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.batch import on_batch
from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import Contact, LeadCaptured, LeadErased, LeadProfileUpdated
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import Envelope, new_id
from leadflow.testing import wait_until

pytestmark = [pytest.mark.postgres]


def captured(lead: uuid.UUID, email: str) -> Envelope:
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(email=email),
        source=SourceInfo(channel="web_form"),
    )
    return Envelope.new(payload, lead_id=lead)


def updated(lead: uuid.UUID, email: str) -> Envelope:
    payload = LeadProfileUpdated(changed_fields=["email"], contact=Contact(email=email))
    return Envelope.new(payload, lead_id=lead)


def erased(lead: uuid.UUID) -> Envelope:
    return Envelope.new(LeadErased(reason="request"), lead_id=lead)


# What the kit registers for every event type: the batch handler's per-event collector.
record_event = on_batch(EventLogIngest())


async def test_a_batch_is_logged_once_in_order_and_erasure_wins_over_personal_fields(
    settings_for: Any,
) -> None:
    kit = create_kit(settings_for(AnalyticsSettings, run_consumers=False))
    await kit.start()
    try:
        kept, gone, late = new_id(), new_id(), new_id()
        first = [
            captured(kept, "kept@example.com"),
            captured(gone, "gone@example.com"),
            erased(gone),
            updated(gone, "still-gone@example.com"),  # after its erasure, same batch
            captured(late, "late@example.com"),
        ]
        async with kit.unit_of_work() as uow:
            for event in first:
                await record_event(event, uow)
        second = [erased(late), updated(late, "late-again@example.com")]
        async with kit.unit_of_work() as uow:
            for event in [*first, *second]:  # the first batch redelivered with the second
                await record_event(event, uow)
        third = [updated(gone, "back-again@example.com")]  # erased two batches ago
        async with kit.unit_of_work() as uow:
            await record_event(third[0], uow)

        async with kit.connect() as tx:
            log = await tx.fetch("SELECT event_id FROM lead_event_log ORDER BY global_position")
            personal = await tx.fetch("SELECT lead_id, fields FROM lead_personal")
            erased_leads = {r[0] for r in await tx.fetch("SELECT lead_id FROM erased_leads")}
            stored = await tx.fetchval(
                "SELECT payload FROM lead_event_log WHERE event_id = :e", e=first[0].event_id
            )
        assert [r[0] for r in log] == [e.event_id for e in [*first, *second, *third]]
        assert erased_leads == {gone, late}
        assert [(r[0], r[1]["contact"]["email"]) for r in personal] == [(kept, "kept@example.com")]
        assert "contact" not in stored  # the log itself never holds personal fields
    finally:
        await kit.stop()


async def test_a_batch_is_logged_in_the_order_its_events_were_recorded(
    settings_for: Any,
) -> None:
    """Routing's assignment consumed in the same batch as, but ahead of, the scoring
    qualification that caused it (another topic) is logged after it, so the funnel folds
    qualified-then-assigned, not an assignment of an inquiry."""
    kit = create_kit(settings_for(AnalyticsSettings, run_consumers=False))
    await kit.start()
    try:
        lead = new_id()
        t0 = datetime.now(UTC)
        first = captured(lead, "causal@example.com")
        cause = Envelope.new(
            LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1),
            lead_id=lead,
            causation=first,
        )
        effect = Envelope.new(
            LeadAssigned(assignee_kind="rep", rep_id="rep-1"), lead_id=lead, causation=cause
        )
        recorded = [
            e.with_position(1, t0 + timedelta(milliseconds=ms))
            for e, ms in ((first, 0), (cause, 40), (effect, 90))
        ]
        arrival = [recorded[2], recorded[0], recorded[1]]  # routing's partition came first
        async with kit.unit_of_work() as uow:
            for event in arrival:
                await record_event(event, uow)
        async with kit.connect() as tx:
            log = await tx.fetch("SELECT event_type FROM lead_event_log ORDER BY global_position")
            assert [r[0] for r in log] == ["lead.captured", "lead.qualified", "lead.assigned"]
    finally:
        await kit.stop()


async def test_writers_of_the_log_take_turns_so_positions_become_visible_in_order(
    settings_for: Any,
) -> None:
    """A batch's statement takes the writers' lock before it draws any position: a second
    writer waits for the first to commit, so a projection that read up to a position never
    finds a smaller one committed after it."""
    kit = create_kit(settings_for(AnalyticsSettings, run_consumers=False))
    await kit.start()
    try:
        first, second = new_id(), new_id()
        second_pid: list[int] = []
        first_written, release = asyncio.Event(), asyncio.Event()

        async def first_writer() -> None:
            async with kit.transaction() as tx:
                await write_log(tx, [log_entry(captured(first, "first@example.com"), 0)])
                first_written.set()
                await release.wait()

        async def second_writer() -> None:
            async with kit.transaction() as tx:
                second_pid.append(int(await tx.fetchval("SELECT pg_backend_pid()")))
                await write_log(tx, [log_entry(captured(second, "second@example.com"), 0)])

        holding = asyncio.create_task(first_writer())
        await first_written.wait()
        waiting = asyncio.create_task(second_writer())

        async def second_waits_for_the_lock() -> bool:
            if not second_pid:
                return False
            async with kit.connect() as probe:
                blocked = await probe.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE pid = :pid "
                    "AND locktype = 'advisory' AND NOT granted",
                    pid=second_pid[0],
                )
            return bool(blocked)

        await wait_until(second_waits_for_the_lock, message="second writer waiting")
        assert not waiting.done()
        release.set()
        await holding
        await waiting
        async with kit.connect() as tx:
            rows = await tx.fetch("SELECT lead_id FROM lead_event_log ORDER BY global_position")
            assert [r[0] for r in rows] == [first, second]
    finally:
        await kit.stop()
