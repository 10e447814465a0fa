"""Reports agree with each other on a second scripted history (real Kafka + Postgres):
money per currency, open pipeline only, one row per rep and per campaign, queues apart from
reps, the reps report under the channel/campaign filters, campaign costs entered once.

| lead | first touch (channel / campaign) | what happens |
|---|---|---|
| M1 | web_form / spring | webinar touch (spring); MQL; waits in queue "unassigned" (team na); |
|    |                   | r1 takes it; SQL; opp 1000 EUR; won 1000 EUR |
| M2 | badge_scan / spring | MQL; assigned r1 (t1), a day later; accepted; opp 500 USD, open |
| M3 | web_form / autumn | MQL; assigned r2 (t2); accepted; opp 300 USD; won 300 USD |
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import ActivityRecorded, Contact, LeadCaptured
from leadflow.events.catalogue.routing import (
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.clock import ManualClock
from leadflow.events.db import plain_url
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.testing import app_client, wait_until
from leadflow.testing.between import write_after_statement
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LEADS = {name: uuid.UUID(int=0x100 + i) for i, name in enumerate(["M1", "M2", "M3"])}


def _captured(name: str, channel: str, campaign: str) -> LeadCaptured:
    return LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="badge_scan" if channel == "badge_scan" else "web_form",
        contact=Contact(email=f"{name.lower()}@example.com"),
        source=SourceInfo(channel=channel, campaign=campaign),
    )


def _mql() -> LeadQualified:
    return LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1)


def _opp(amount: str, currency: str) -> OpportunityOpened:
    return OpportunityOpened(opportunity_id="o", amount=Decimal(amount), currency=currency)


def history() -> list[tuple[str, float, EventPayload]]:
    return [
        ("M1", 0, _captured("M1", "web_form", "spring")),
        (
            "M1",
            2,
            ActivityRecorded(
                activity_id="w1",
                activity_type="webinar",
                campaign="spring",
                properties={"channel": "webinar"},
            ),
        ),
        ("M1", 3, _mql()),
        (
            "M1",
            3,
            LeadAssigned(
                assignee_kind="queue", queue_id="unassigned", team_id="na", method="queue"
            ),
        ),
        ("M1", 4, LeadAccepted(rep_id="r1")),
        ("M1", 5, LeadSalesQualified(rep_id="r1")),
        ("M1", 6, _opp("1000", "EUR")),
        ("M1", 7, DealWon(opportunity_id="o", amount=Decimal("1000"), currency="EUR")),
        ("M2", 24, _captured("M2", "badge_scan", "spring")),
        ("M2", 25, _mql()),
        ("M2", 25, LeadAssigned(assignee_kind="rep", rep_id="r1", team_id="t1", method="direct")),
        ("M2", 26, LeadAccepted(rep_id="r1")),
        ("M2", 27, LeadSalesQualified(rep_id="r1")),
        ("M2", 28, _opp("500", "USD")),
        ("M3", 0, _captured("M3", "web_form", "autumn")),
        ("M3", 1, _mql()),
        ("M3", 1, LeadAssigned(assignee_kind="rep", rep_id="r2", team_id="t2", method="direct")),
        ("M3", 2, LeadAccepted(rep_id="r2")),
        ("M3", 3, LeadSalesQualified(rep_id="r2")),
        ("M3", 4, _opp("300", "USD")),
        ("M3", 5, DealWon(opportunity_id="o", amount=Decimal("300"), currency="USD")),
    ]


@pytest.fixture
async def loaded(settings_for: Any, isolation: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(T0 + timedelta(days=3)))
    scripted = [
        Envelope.new(p, lead_id=LEADS[lead], occurred_at=T0 + timedelta(hours=hours))
        for lead, hours, p in history()
    ]
    # Reports need a credential: every read of this client carries the admin token.
    async with app_client(app, headers=ADMIN) as client:
        await sc.load(isolation, scripted)
        await wait_until(lambda: sc.caught_up(client), timeout=60, message="projections caught up")
        yield client


async def test_money_per_currency_pipeline_open_only_and_costs_entered_once(
    loaded: httpx.AsyncClient,
) -> None:
    cost = {
        "campaign": "spring",
        "channel": "web_form",
        "period_start": "2025-03-01",
        "period_end": "2025-03-31",
        "amount": 100,
        "currency": "EUR",
    }
    assert (await loaded.post("/v1/campaign-costs", json=cost, headers=ADMIN)).status_code == 201
    again = await loaded.post("/v1/campaign-costs", json=cost, headers=ADMIN)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    overlapping = {**cost, "period_start": "2025-03-15", "period_end": "2025-04-15"}
    assert (
        await loaded.post("/v1/campaign-costs", json=overlapping, headers=ADMIN)
    ).status_code == 409
    # The same campaign's cost in another currency is another figure, not a duplicate.
    usd = {**cost, "amount": 50, "currency": "USD"}
    assert (await loaded.post("/v1/campaign-costs", json=usd, headers=ADMIN)).status_code == 201
    assert len((await loaded.get("/v1/campaign-costs")).json()["rows"]) == 2

    body = (await loaded.get("/v1/sources", params={"group_by": "campaign"})).json()
    spring = next(r for r in body["rows"] if r["source"] == "spring")
    assert (spring["inquiries"], spring["opportunities"], spring["won"]) == (2, 2, 1)
    assert spring["money"] == [
        {
            "currency": "EUR",
            "pipeline": 0.0,  # won: no longer open
            "won_revenue": 1000.0,
            "won_deals": 1,
            "cost": 100.0,
            "cost_per_lead": 50.0,
            "roi": 9.0,
        },
        {
            "currency": "USD",
            "pipeline": 500.0,  # M2's opportunity is still open
            "won_revenue": 0.0,
            "won_deals": 0,
            "cost": 50.0,
            "cost_per_lead": 25.0,
            "roi": -1.0,
        },
    ]
    csv = (await loaded.get("/v1/sources", params={"group_by": "campaign", "format": "csv"})).text
    header, *lines = csv.strip().splitlines()
    assert "currency" in header.split(",")
    assert sum(1 for line in lines if line.startswith("spring,")) == 2  # a line per currency

    # Attribution: M1's two spring touches (web_form, webinar) are one campaign row.
    attribution = (await loaded.get("/v1/attribution", params={"model": "linear"})).json()
    assert attribution["rows"] == [
        {"campaign": "spring", "currency": "EUR", "revenue": 1000.0, "deals": 1.0},
        {"campaign": "autumn", "currency": "USD", "revenue": 300.0, "deals": 1.0},
    ]
    assert attribution["totals"] == [
        {"currency": "EUR", "revenue": 1000.0},
        {"currency": "USD", "revenue": 300.0},
    ]

    # A plan needs the goal's currency once two were won; in EUR the average deal is 1000.
    ambiguous = await loaded.get("/v1/plan", params={"revenue": 5000})
    assert ambiguous.status_code == 422
    assert ambiguous.json()["errors"][0]["field"] == "currency"
    plan = (await loaded.get("/v1/plan", params={"revenue": 5000, "currency": "EUR"})).json()
    assert (plan["currency"], plan["plan"]["avg_deal"], plan["plan"]["won"]) == ("EUR", 1000.0, 5)

    page = (await loaded.get("/")).text
    assert 'data-currency="EUR">1,000 EUR<' in page
    assert 'data-currency="USD">300 USD<' in page


async def test_reps_one_row_each_queues_apart_and_the_segment_filters_apply(
    loaded: httpx.AsyncClient,
) -> None:
    body = (await loaded.get("/v1/reps")).json()
    rows = {r["rep_id"]: r for r in body["rows"]}
    assert sorted(rows) == ["r1", "r2"]  # the queue is not a rep; r1 is one row
    r1 = rows["r1"]
    # r1 took M1 from the queue and won it: the win is r1's, in EUR.
    assert (r1["team_id"], r1["assigned"], r1["accepted"], r1["won"]) == ("t1", 1, 2, 1)
    assert r1["money"] == [{"currency": "EUR", "won_revenue": 1000.0}]
    assert body["queues"] == [{"queue_id": "unassigned", "team_id": "na", "assigned": 1}]
    assert rows["r2"]["money"] == [{"currency": "USD", "won_revenue": 300.0}]

    autumn = (await loaded.get("/v1/reps", params={"campaign": "autumn"})).json()
    assert [r["rep_id"] for r in autumn["rows"]] == ["r2"] and autumn["queues"] == []
    badge = (await loaded.get("/v1/reps", params={"channel": "badge_scan"})).json()
    assert [(r["rep_id"], r["assigned"], r["accepted"]) for r in badge["rows"]] == [("r1", 1, 1)]


async def test_a_report_reads_one_moment_while_a_projection_batch_commits(
    loaded: httpx.AsyncClient, isolation: Any
) -> None:
    """The reps report reads ``rep_daily`` twice: money per currency, then the counts. A
    projection batch that commits between the two must not show half of itself: CI once saw
    a rep's win counted with its money missing, each statement with its own snapshot. Here a
    second win for r2 (200 USD) commits right after the report's first statement; the report
    shows the moment it started (one win, 300 USD), and the next report shows both."""
    schema = isolation.schema_for(AnalyticsSettings)
    writer = await asyncpg.connect(plain_url(isolation.database_url))

    async def second_win() -> None:  # what a batch folding r2's next win writes, in USD
        await writer.execute(
            f'INSERT INTO "{schema}".rep_daily (day, rep_id, team_id, queue_id, channel, '
            "campaign, currency, assigned, accepted, rejected, recycled, sqls, "
            "opportunities, won, lost, won_revenue) VALUES ('2025-03-10', 'r2', 't2', "
            "'(none)', 'web_form', 'autumn', 'USD', 0, 0, 0, 0, 0, 0, 1, 0, 200)"
        )

    try:
        # between the report's first statement (money per currency) and its second
        with write_after_statement("fetch", "won_revenue", second_win) as b:
            during = {r["rep_id"]: r for r in (await loaded.get("/v1/reps")).json()["rows"]}
        after = {r["rep_id"]: r for r in (await loaded.get("/v1/reps")).json()["rows"]}
    finally:
        await writer.close()
    assert len(b.statements) > 1 and b.wrote_after == b.statements[0]  # the write fell in between
    assert (during["r2"]["won"], during["r2"]["money"]) == (
        1,
        [{"currency": "USD", "won_revenue": 300.0}],
    )
    assert (after["r2"]["won"], after["r2"]["money"]) == (
        2,
        [{"currency": "USD", "won_revenue": 500.0}],
    )
