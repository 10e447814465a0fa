"""Scoring past the close (issue 30), through the real broker and database: a won lead is a
customer whose engagement counts afresh from the win; a page view does not open an
expansion, a new inquiry does (expansion.opened, then an MQL of the expansion cycle); a
churned customer's hand-raise is a new-business win-back, not an expansion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from leadflow.events.catalogue.intake import InquiryReceived
from leadflow.events.catalogue.routing import CustomerChurned, DealWon, LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.events.testing import app_client, produce_events
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
from tests.integration.scoring.test_scoring_kafka import (
    T0,
    activity,
    captured,
    of_lead,
    routing,
    scoring_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def inquiry(lead_id: uuid.UUID, at: Any) -> Envelope:
    payload = InquiryReceived(inquiry_id=uuid.uuid4(), capture_method="web_form")
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


async def test_a_customers_new_inquiry_opens_an_expansion_that_qualifies_again(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(T0)
    app = create_app(settings_for(ScoringSettings), clock=clock)
    lead_id = uuid.uuid4()
    intake, routing_topic, scoring = (isolation.topic(t) for t in ("intake", "routing", "scoring"))

    def count(event_type: str, n: int) -> Callable[[list[Envelope]], bool]:
        return lambda evs: len(of_lead(evs, lead_id, event_type)) >= n

    async with app_client(app):
        await produce_events(
            kafka_bootstrap,
            intake,
            [captured(lead_id, T0), activity(lead_id, "demo_request", T0)],
        )
        await scoring_events(kafka_bootstrap, scoring, count("lead.qualified", 1))
        won_at = clock.advance(timedelta(days=10))
        await produce_events(
            kafka_bootstrap,
            routing_topic,
            [
                routing(lead_id, LeadAssigned(assignee_kind="rep", rep_id="a"), won_at),
                routing(lead_id, DealWon(amount=Decimal("5000"), rep_id="a"), won_at),
            ],
        )
        # A customer browsing is no new buying cycle (engagement counts from the win: a
        # page view is far below the MQL bar) ...
        browsed = clock.advance(timedelta(days=20))
        await produce_events(kafka_bootstrap, intake, [activity(lead_id, "page_view", browsed)])
        # ... a new inquiry is: the expansion opens, and qualifies on its own engagement.
        asked = clock.advance(timedelta(hours=1))
        await produce_events(kafka_bootstrap, intake, [inquiry(lead_id, asked)])
        events = await scoring_events(kafka_bootstrap, scoring, count("lead.qualified", 2))
        [opened] = of_lead(events, lead_id, "expansion.opened")
        assert opened.payload.trigger == "hand_raise"  # type: ignore[attr-defined]
        assert opened.payload.expansion_number == 1  # type: ignore[attr-defined]
        first, second = of_lead(events, lead_id, "lead.qualified")
        assert first.payload.cycle == "new_business"  # type: ignore[attr-defined]
        assert second.payload.cycle == "expansion"  # type: ignore[attr-defined]
        # engagement since the win only: the page view (1) and the inquiry (10), level 3;
        # the demo request before the win no longer counts. Fit A- → cell A3, an MQL.
        assert second.payload.engagement == 11.0  # type: ignore[attr-defined]
        assert second.payload.matrix_cell == "A3"  # type: ignore[attr-defined]
        ordered = [e.event_type for e in events if e.lead_id == lead_id]
        assert ordered.index("expansion.opened") < len(ordered) - 1 - ordered[::-1].index(
            "lead.qualified"
        )
        # No nurture enrolment for a customer's expansion, and no event for the page view.
        assert of_lead(events, lead_id, "nurture.enrolled") == []

        # The expansion is won, then the customer churns; its next hand-raise is a win-back.
        again = clock.advance(timedelta(days=5))
        await produce_events(
            kafka_bootstrap,
            routing_topic,
            [
                routing(lead_id, DealWon(amount=Decimal("700"), cycle="expansion"), again),
                routing(lead_id, CustomerChurned(reason_code="budget"), again),
            ],
        )
        back = clock.advance(timedelta(days=30))
        await produce_events(kafka_bootstrap, intake, [inquiry(lead_id, back)])
        events = await scoring_events(kafka_bootstrap, scoring, count("lead.qualified", 3))
        third = of_lead(events, lead_id, "lead.qualified")[2]
        assert third.payload.cycle == "new_business"  # type: ignore[attr-defined]
        assert len(of_lead(events, lead_id, "expansion.opened")) == 1
