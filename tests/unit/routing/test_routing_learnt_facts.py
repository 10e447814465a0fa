"""Facts routing learns from intake and sla-monitor, decided without a database: a batch's
events of one lead folded in arrival order give what one-by-one handling would write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.events.batch import decide_each
from leadflow.events.catalogue.intake import (
    Contact,
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.sla import SlaBreached, SlaMet, SlaStarted
from leadflow.events.envelope import Envelope, new_id
from leadflow.routing.learnt import ClockChange, ContactFacts, SlaClocks

AT = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
LEAD = new_id()


def _captured(first: str, external_id: str | None = None) -> Envelope:
    payload = LeadCaptured(
        inquiry_id=new_id(),
        capture_method="import",
        contact=Contact(first_name=first, last_name="Lovelace", email="ada@example.com"),
        external_id=external_id,
        external_system="Salesforce" if external_id else None,
    )
    return Envelope.new(payload, lead_id=LEAD, occurred_at=AT)


def _updated(first: str) -> Envelope:
    payload = LeadProfileUpdated(changed_fields=["first_name"], contact=Contact(first_name=first))
    return Envelope.new(payload, lead_id=LEAD, occurred_at=AT)


def _inquiry(external_id: str) -> Envelope:
    payload = InquiryReceived(
        inquiry_id=new_id(),
        capture_method="import",
        external_id=external_id,
        external_system="hubspot",
    )
    return Envelope.new(payload, lead_id=LEAD, occurred_at=AT)


def _erased(at: datetime) -> Envelope:
    return Envelope.new(LeadErased(reason="request"), lead_id=LEAD, occurred_at=at)


def test_the_last_card_of_a_batch_wins_and_names_the_person() -> None:
    outcome = decide_each(ContactFacts(), {}, [_captured("Ada"), _updated("Augusta")], None)
    card = outcome.changed[LEAD].card
    assert card is not None and card["first_name"] == "Augusta"
    assert card["name"] == "Augusta"


def test_external_ids_are_kept_in_arrival_order() -> None:
    outcome = decide_each(ContactFacts(), {}, [_captured("Ada", "00Q1"), _inquiry("77")], None)
    assert outcome.changed[LEAD].new_ids == (("Salesforce", "00Q1"), ("hubspot", "77"))


def test_an_erasure_blanks_the_card_forgets_the_ids_and_no_later_card_returns() -> None:
    erased_at = AT + timedelta(minutes=5)
    events = [_captured("Ada", "00Q1"), _erased(erased_at), _updated("Augusta"), _inquiry("77")]
    change = decide_each(ContactFacts(), {}, events, None).changed[LEAD]
    assert change.erased_at == erased_at and change.forget_ids
    assert change.card is None
    assert change.new_ids == (("hubspot", "77"),)  # learnt after the erasure, as one by one


def _started(sla_id: str) -> Envelope:
    payload = SlaStarted(
        sla_id=sla_id,
        policy_id="accept-1h",
        started_by_event="lead.assigned",
        rep_id="ana",
        started_at=AT,
        due_at=AT + timedelta(hours=1),
    )
    return Envelope.new(payload, lead_id=LEAD)


def _met(sla_id: str) -> Envelope:
    payload = SlaMet(
        sla_id=sla_id,
        policy_id="accept-1h",
        met_by_event="lead.accepted",
        elapsed_seconds=60,
        elapsed_business_seconds=60,
        on_time=True,
    )
    return Envelope.new(payload, lead_id=LEAD)


def _breached(sla_id: str) -> Envelope:
    payload = SlaBreached(sla_id=sla_id, policy_id="accept-1h", due_at=AT)
    return Envelope.new(payload, lead_id=LEAD)


def test_a_status_before_its_clock_started_in_the_batch_is_for_the_clock_that_existed() -> None:
    events = [_met("old"), _started("new"), _breached("new")]
    change = decide_each(SlaClocks(), {}, events, None).changed[LEAD]
    assert change == ClockChange(
        starts={"new": {**change.starts["new"]}},
        early={"old": "met"},
        late={"new": "breached"},
    )
    assert change.starts["new"]["rep_id"] == "ana"
    assert change.starts["new"]["due_at"] == AT + timedelta(hours=1)
