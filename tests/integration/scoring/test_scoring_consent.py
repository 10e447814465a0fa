"""Scoring keeps marketing e-mail consent and do-not-contact apart, through the real broker:
an e-mail opt-out ends nurture but leaves an MQL with sales; a do-not-contact disqualifies
it; lifting the do-not-contact reinstates it and it qualifies again (a new routing cycle)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from leadflow.events.catalogue.intake import ConsentChanged, DoNotContactChanged
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
from leadflow.testing import app_client, consume_topic, produce_events
from tests.integration.scoring.test_scoring_kafka import activity, captured, of_lead

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_opt_out_keeps_the_mql_and_do_not_contact_disqualifies_until_lifted(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(T0)
    app = create_app(settings_for(ScoringSettings), clock=clock)
    lead_id = uuid.uuid4()
    intake, scoring = isolation.topic("intake"), isolation.topic("scoring")

    def on_lead(payload: Any) -> Envelope:
        return Envelope.new(payload, lead_id=lead_id, occurred_at=T0)

    async with app_client(app):
        await produce_events(
            kafka_bootstrap,
            intake,
            [
                captured(lead_id, T0),
                activity(lead_id, "demo_request", T0),
                activity(lead_id, "webinar_attended", T0),
            ],
        )
        await consume_topic(
            kafka_bootstrap,
            scoring,
            until=lambda evs: bool(of_lead(evs, lead_id, "lead.qualified")),
        )
        await produce_events(
            kafka_bootstrap,
            isolation.topic("routing"),
            [on_lead(LeadAssigned(assignee_kind="rep", rep_id="rep-1", method="round_robin"))],
        )
        opt_out = on_lead(ConsentChanged(marketing_opt_in=False, source="preference-center"))
        no_contact = on_lead(DoNotContactChanged(do_not_contact=True, reason="asked"))
        await produce_events(kafka_bootstrap, intake, [opt_out, no_contact])
        events = await consume_topic(
            kafka_bootstrap,
            scoring,
            until=lambda evs: bool(of_lead(evs, lead_id, "lead.disqualified")),
        )
        [disqualified] = of_lead(events, lead_id, "lead.disqualified")
        # the opt-out (handled first, same partition) did not disqualify: the do-not-contact did
        assert disqualified.causation_id == no_contact.event_id
        assert disqualified.payload.rule_id == "do_not_contact"  # type: ignore[attr-defined]

        lifted = on_lead(DoNotContactChanged(do_not_contact=False))
        await produce_events(kafka_bootstrap, intake, [lifted])
        events = await consume_topic(
            kafka_bootstrap,
            scoring,
            until=lambda evs: len(of_lead(evs, lead_id, "lead.qualified")) == 2,
        )
        [reinstated] = of_lead(events, lead_id, "lead.reinstated")
        assert reinstated.causation_id == lifted.event_id
        assert reinstated.payload.reason == "do_not_contact_lifted"  # type: ignore[attr-defined]
        requalified = of_lead(events, lead_id, "lead.qualified")[1]
        assert requalified.causation_id == lifted.event_id
        assert requalified.stream_version > reinstated.stream_version
        # no nurture e-mail for the opted-out lead at any point
        assert not of_lead(events, lead_id, "nurture.enrolled")


async def test_marketing_consent_ends_and_reopens_nurture_without_touching_qualification(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(T0)
    app = create_app(settings_for(ScoringSettings), clock=clock)
    lead_id = uuid.uuid4()
    intake, scoring = isolation.topic("intake"), isolation.topic("scoring")

    def on_lead(payload: Any) -> Envelope:
        return Envelope.new(payload, lead_id=lead_id, occurred_at=T0)

    async with app_client(app):
        # a good fit, not sales-ready yet: nurtured
        await produce_events(kafka_bootstrap, intake, [captured(lead_id, T0, title="Manager")])
        await consume_topic(
            kafka_bootstrap,
            scoring,
            until=lambda evs: bool(of_lead(evs, lead_id, "nurture.enrolled")),
        )
        out = on_lead(ConsentChanged(marketing_opt_in=False, source="unsubscribe"))
        back = on_lead(ConsentChanged(marketing_opt_in=True, source="preference-center"))
        await produce_events(kafka_bootstrap, intake, [out, back])
        events = await consume_topic(
            kafka_bootstrap,
            scoring,
            until=lambda evs: len(of_lead(evs, lead_id, "nurture.enrolled")) == 2,
        )
        [exited] = of_lead(events, lead_id, "nurture.exited")
        assert exited.causation_id == out.event_id
        assert exited.payload.reason == "opted_out"  # type: ignore[attr-defined]
        again = of_lead(events, lead_id, "nurture.enrolled")[1]
        assert again.causation_id == back.event_id
        assert not of_lead(events, lead_id, "lead.disqualified")
