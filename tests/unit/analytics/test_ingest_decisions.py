"""The ingest's decisions without a database: what each consumed event adds to the log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from leadflow.analytics.handlers import (
    EventLogIngest,
    IngestBatch,
    causal_order,
    log_entry,
)
from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import Contact, LeadCaptured, LeadErased
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import Envelope

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LEAD = uuid.UUID("01890000-0000-7000-8000-000000000001")


def captured(email: str | None = "ann@example.com", lead: uuid.UUID = LEAD) -> Envelope:
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(email=email),
        source=SourceInfo(channel="web_form"),
    )
    return Envelope.new(payload, lead_id=lead)


def test_the_log_entry_keeps_personal_fields_apart_from_the_payload() -> None:
    entry = log_entry(captured("ann@example.com"), 3)
    assert "contact" not in entry.payload
    assert entry.payload["capture_method"] == "web_form"
    assert entry.personal["contact"]["email"] == "ann@example.com"
    assert entry.arrival == 3
    assert not entry.erases


def test_an_erasure_is_an_entry_that_erases_and_holds_nothing_personal() -> None:
    entry = log_entry(Envelope.new(LeadErased(reason="request"), lead_id=LEAD), 0)
    assert entry.erases
    assert entry.personal == {}


def test_decide_threads_a_leads_entries_in_arrival_order() -> None:
    ingest = EventLogIngest()
    first, second = captured(), Envelope.new(LeadErased(reason="request"), lead_id=LEAD)
    ctx = IngestBatch({first.event_id: 0, second.event_id: 1})
    after_first = ingest.decide(None, first, ctx).state
    assert after_first is not None
    after_second = ingest.decide(after_first, second, ctx).state
    assert after_second is not None
    assert [e.envelope.event_id for e in after_second] == [first.event_id, second.event_id]
    assert [e.arrival for e in after_second] == [0, 1]
    decision = ingest.decide(None, first, ctx)
    assert not decision.events and not decision.schedule and not decision.cancel


def test_nothing_is_loaded_the_log_is_append_only() -> None:
    ingest = EventLogIngest()
    ctx = IngestBatch({})
    assert asyncio.run(ingest.load(None, [LEAD], ctx)) == {}  # type: ignore[arg-type]


def test_a_batch_is_logged_in_recording_order_whatever_the_arrival() -> None:
    """Routing's assignment that arrived before the qualification that caused it (another
    topic) is logged after it."""
    first = captured().with_position(1, T0)
    cause = Envelope.new(
        LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1),
        lead_id=LEAD,
    ).with_position(1, T0 + timedelta(milliseconds=40))
    effect = Envelope.new(
        LeadAssigned(assignee_kind="rep", rep_id="rep-1"), lead_id=LEAD
    ).with_position(1, T0 + timedelta(milliseconds=90))
    arrived = [effect, first, cause]
    entries = [log_entry(e, i) for i, e in enumerate(arrived)]
    assert [e.envelope.event_type for e in causal_order(entries)] == [
        "lead.captured",
        "lead.qualified",
        "lead.assigned",
    ]


def test_events_recorded_together_keep_their_arrival_order() -> None:
    a = captured(lead=uuid.UUID(int=2)).with_position(1, T0)
    b = captured(lead=uuid.UUID(int=1)).with_position(1, T0)
    entries = [log_entry(b, 0), log_entry(a, 1)]
    assert [e.envelope.event_id for e in causal_order(entries)] == [b.event_id, a.event_id]
