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

from leadflow.events.catalogue.intake import AccountMatch, Contact, InquiryReceived
from leadflow.events.catalogue.routing import CustomerChurned, DealWon, LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.scoring.test_scoring_kafka import (
    T0,
    activity,
    captured,
    of_lead,
    routing,
    scoring_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}


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

    async with app_client(app) as client:
        await produce_events(
            kafka_bootstrap,
            intake,
            [captured(lead_id, T0), activity(lead_id, "demo_request", T0)],
        )

        async def status(expected: str) -> bool:
            r = await client.get(f"/v1/leads/{lead_id}/score", headers=AUTH)
            return r.status_code == 200 and r.json()["status"] == expected

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
        await wait_until(lambda: status("won"), timeout=90, message="scoring took the win")
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
        await wait_until(lambda: status("churned"), timeout=90, message="scoring took the churn")
        back = clock.advance(timedelta(days=30))
        await produce_events(kafka_bootstrap, intake, [inquiry(lead_id, back)])
        events = await scoring_events(kafka_bootstrap, scoring, count("lead.qualified", 3))
        third = of_lead(events, lead_id, "lead.qualified")[2]
        assert third.payload.cycle == "new_business"  # type: ignore[attr-defined]
        assert len(of_lead(events, lead_id, "expansion.opened")) == 1


def _at_acme(lead_id: uuid.UUID, at: Any, email: str) -> Envelope:
    envelope = captured(lead_id, at)
    payload = envelope.payload.model_copy(  # type: ignore[union-attr]
        update={
            "contact": Contact(email=email, title="VP Marketing", department="Marketing",
                               company="Acme"),
            "account": AccountMatch(account_id="acme", domain="acme.com", name="Acme",
                                    registered=True),
        }
    )  # fmt: skip
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


async def test_a_colleague_at_a_customer_account_opens_an_expansion(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(T0)
    app = create_app(settings_for(ScoringSettings), clock=clock)
    customer, colleague = uuid.uuid4(), uuid.uuid4()
    intake, scoring = isolation.topic("intake"), isolation.topic("scoring")
    async with app_client(app) as client:
        await produce_events(kafka_bootstrap, intake, [_at_acme(customer, T0, "cfo@acme.com")])
        await scoring_events(
            kafka_bootstrap, scoring, lambda evs: bool(of_lead(evs, customer, "lead.qualified"))
        )
        won_at = clock.advance(timedelta(days=3))
        await produce_events(
            kafka_bootstrap,
            isolation.topic("routing"),
            [routing(customer, DealWon(amount=Decimal("9000"), rep_id="a"), won_at)],
        )

        async def is_customer() -> bool:
            r = await client.get(f"/v1/leads/{customer}/score", headers=AUTH)
            return r.status_code == 200 and r.json()["status"] == "won"

        await wait_until(is_customer, timeout=90, message="scoring took the win")
        # The colleague's first hand-raise comes a day later: the account is a customer.
        later = clock.advance(timedelta(days=1))
        await produce_events(kafka_bootstrap, intake, [_at_acme(colleague, later, "it@acme.com")])
        events = await scoring_events(
            kafka_bootstrap, scoring, lambda evs: bool(of_lead(evs, colleague, "lead.qualified"))
        )
        [opened] = of_lead(events, colleague, "expansion.opened")
        assert opened.payload.colleague is True  # type: ignore[attr-defined]
        assert (opened.payload.account_id, opened.payload.trigger) == ("acme", "hand_raise")  # type: ignore[attr-defined]
        [qualified] = of_lead(events, colleague, "lead.qualified")
        assert qualified.payload.cycle == "expansion"  # type: ignore[attr-defined]
        # the customer's own first qualification was new business, and opened nothing
        [first] = of_lead(events, customer, "lead.qualified")
        assert first.payload.cycle == "new_business"  # type: ignore[attr-defined]
        assert of_lead(events, customer, "expansion.opened") == []
