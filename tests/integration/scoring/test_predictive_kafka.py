"""The closed loop through the real broker and database: outcomes on ``leadflow.routing``
become training examples whose features were frozen when sales took the lead; a model trained
through the API is promoted and then predicts on every ``LeadScored``; sales rejections
surface as suggested rule changes with backtests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    Contact,
    LeadCaptured,
    QualificationAnswers,
)
from leadflow.events.catalogue.routing import DealLost, DealWon, LeadAssigned, LeadRejected
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.kit import ServiceKit
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
from leadflow.testing import app_client, consume_topic, produce_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}


def kit_of(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client._transport.app.state.kit  # type: ignore[attr-defined]
    return kit


def captured(
    lead_id: uuid.UUID, at: datetime, *, minutes: int, source: str, buyer: bool = False
) -> Envelope:
    """A mid-fit lead; ``buyer`` makes it an A-grade VP who qualifies on capture."""
    answers = QualificationAnswers(
        company_size="1000+", compelling_event="renewal", authority="yes", budget="80k"
    )
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="import",
        contact=Contact(
            title="VP Marketing" if buyer else "Marketing Manager",
            department="Marketing",
            country="DE",
        ),
        answers=answers if buyer else QualificationAnswers(),
        rating="hot" if buyer else None,  # engagement clearly above the level-3 floor
        attributes={
            "total_time_spent_on_website": str(minutes * 60),
            "lead_source": source,
            "lead_quality": "High in Relevance",  # sales-entered: must never be a feature
        },
    )
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


def event(lead_id: uuid.UUID, payload: EventPayload, at: datetime) -> Envelope:
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


async def rows(client: httpx.AsyncClient, sql: str, **params: Any) -> list[Any]:
    async with kit_of(client).connect() as conn:
        return list(await conn.fetch(sql, **params))


async def test_outcomes_train_a_promoted_model_that_predicts_on_lead_scored(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    start = datetime.now(UTC) - timedelta(days=10)
    app = create_app(settings_for(ScoringSettings))
    leads: list[tuple[uuid.UUID, bool]] = []
    intake: list[Envelope] = []
    routing: list[Envelope] = []
    for i in range(80):
        lead_id, won = uuid.uuid4(), i % 2 == 0
        at = start + timedelta(hours=i)
        # Winners linger on the site; one in eight breaks the pattern (noise).
        engaged = won != (i % 8 == 1)
        intake.append(captured(lead_id, at, minutes=25 if engaged else 1,
                               source="reference" if i % 3 == 0 else "google"))  # fmt: skip
        routing.append(event(lead_id, LeadAssigned(assignee_kind="rep", rep_id="r1"),
                             at + timedelta(minutes=30)))  # fmt: skip
        # Activity after sales took the lead must not reach the frozen snapshot.
        intake.append(event(lead_id, ActivityRecorded(activity_id=f"late-{i}",
                                                      activity_type="demo_request"),
                            at + timedelta(minutes=40)))  # fmt: skip
        outcome: EventPayload = (
            DealWon(amount=Decimal("900"))
            if won
            else LeadRejected(reason_code="wrong_fit")
            if i % 4 == 1
            else DealLost(reason_code="no_decision")
        )
        routing.append(event(lead_id, outcome, at + timedelta(hours=1)))
        leads.append((lead_id, won))
    async with app_client(app) as client:
        r = await client.post("/v1/scoring/predictive/train", headers=AUTH)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "outcomes"
        assert (await client.get("/v1/scoring/predictive/report", headers=AUTH)).status_code == 404

        # intake first (capture), then assignment, then the late activity, then the outcome
        await produce_events(kafka_bootstrap, isolation.topic("intake"), intake[0::2])
        await wait_until(lambda: _count(client, "leads", 80), message="leads captured")
        await produce_events(kafka_bootstrap, isolation.topic("routing"), routing[0::2])
        await wait_until(
            lambda: _count(client, "leads WHERE snapshot IS NOT NULL", 80), message="frozen"
        )
        await produce_events(kafka_bootstrap, isolation.topic("intake"), intake[1::2])
        await wait_until(lambda: _count(client, "activities WHERE activity_key LIKE 'late-%'", 80))
        await produce_events(kafka_bootstrap, isolation.topic("routing"), routing[1::2])
        await wait_until(lambda: _count(client, "outcomes", 80), message="outcomes recorded")

        snapshots = await rows(client, "SELECT snapshot FROM outcomes")
        features = set().union(*(s[0]["features"] for s in snapshots))
        assert "activity.demo_request" not in features  # recorded after the hand-off
        assert not [f for f in features if "lead_quality" in f]
        assert "attr.total_time_spent_on_website" in features

        r = await client.post(
            "/v1/scoring/predictive/train", headers={**AUTH, "X-Trained-By": "ops"}
        )
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["promoted"] is True and first["version"] == 1
        assert first["metrics"]["auc"] > 0.8
        report = (await client.get("/v1/scoring/predictive/report", headers=AUTH)).json()
        assert report["serving_version"] == 1
        assert report["rule_model_auc"] == first["metrics"]["rule_model"]["auc"]
        assert report["calibration"] and report["versions"][0]["trained_by"] == "ops"
        assert report["versions"][0]["artifact_bytes"] > 0

        # A new lead is scored with the promoted model: probability and top features.
        fresh = uuid.uuid4()
        await produce_events(
            kafka_bootstrap,
            isolation.topic("intake"),
            [captured(fresh, datetime.now(UTC), minutes=30, source="reference", buyer=True)],
        )
        events = await consume_topic(
            kafka_bootstrap,
            isolation.topic("scoring"),
            until=lambda evs: any(
                e.lead_id == fresh and e.event_type == "lead.qualified" for e in evs
            ),
            timeout=90,
        )
        qualified: Any = next(
            e.payload for e in events if e.lead_id == fresh and e.event_type == "lead.qualified"
        )
        assert qualified.predictive_model_version == 1
        assert 0.0 <= qualified.predicted_conversion <= 1.0
        scored = next(e for e in events if e.lead_id == fresh and e.event_type == "lead.scored")
        payload: Any = scored.payload
        assert payload.predictive_model_version == 1
        assert payload.predicted_conversion > 0.5
        assert payload.top_features
        assert any("total_time" in f.feature for f in payload.top_features)
        # GET score shows the prediction the last lead.scored event carried
        last = [e.payload for e in events if e.lead_id == fresh and e.event_type == "lead.scored"]
        shown = (await client.get(f"/v1/leads/{fresh}/score", headers=AUTH)).json()
        assert shown["predicted_conversion"] == last[-1].predicted_conversion  # type: ignore[attr-defined]
        assert shown["predictive_model_version"] == 1

        suggestions = (
            await client.get("/v1/scoring/suggestions?min_support=5", headers=AUTH)
        ).json()
        assert suggestions["rejected"] == 20
        assert suggestions["won"] == 40
        for rule in suggestions["rules"]:
            if rule["rejected"]:
                assert set(rule["reasons"]) == {"wrong_fit"}
        for s in suggestions["suggestions"]:
            assert s["change"]["points"]["to"] < s["change"]["points"]["from"]
            assert "open_leads_backtest" in s and "outcome_backtest" in s


async def _count(client: httpx.AsyncClient, table_where: str, expected: int) -> bool:
    found = await rows(client, f"SELECT count(*) FROM {table_where}")
    return int(found[0][0]) >= expected
