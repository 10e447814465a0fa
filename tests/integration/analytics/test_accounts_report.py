"""The account page and account waterfall (issue 30) on real Kafka + Postgres: a scripted
buying group produced to the topics, logged by analytics, read back through the HTTP API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.intake import AccountMatch, Contact, LeadCaptured
from leadflow.events.catalogue.routing import (
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import LeadQualified, LeadScored
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.testing import app_client
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACME = AccountMatch(account_id="acct-acme", domain="acme.com", name="Acme", registered=True)
BETA = AccountMatch(account_id="b", domain="beta.io", name="Beta", registered=False)


def _captured(title: str, account: AccountMatch, **answers: str) -> LeadCaptured:
    return LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(email=f"{uuid.uuid4().hex[:6]}@{account.domain}", title=title),
        account=account,
        answers=answers,  # type: ignore[arg-type]
    )


def _scored(fit: float, engagement: float) -> LeadScored:
    return LeadScored(
        fit=fit, engagement=engagement, grade="A", engagement_level=2, matrix_cell="A2",
        model_version=1,
    )  # fmt: skip


def _qualified() -> LeadQualified:
    return LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1)


def history() -> list[Envelope]:
    cfo, manager, agent, beta = (uuid.uuid4() for _ in range(4))
    steps: list[tuple[uuid.UUID, EventPayload]] = [
        (cfo, _captured("Chief Financial Officer", ACME)),
        (manager, _captured("IT Manager", ACME, timeframe="this quarter")),
        (agent, _captured("Support Agent", ACME)),
        (beta, _captured("Engineer", BETA)),
        (cfo, _scored(80, 40)),
        (manager, _scored(60, 55)),
        (agent, _scored(20, 5)),
        (beta, _scored(30, 10)),
        (cfo, _qualified()),
        (cfo, LeadAssigned(assignee_kind="rep", rep_id="rep-7", method="account_owner")),
        (cfo, LeadAccepted(rep_id="rep-7")),
        (cfo, LeadSalesQualified(rep_id="rep-7")),
        (cfo, OpportunityOpened(opportunity_id="o1", amount=Decimal(50000), currency="EUR")),
        (cfo, DealWon(opportunity_id="o1", amount=Decimal(50000), currency="EUR")),
    ]
    return [
        Envelope.new(p, lead_id=lead, occurred_at=T0 + timedelta(hours=i))
        for i, (lead, p) in enumerate(steps)
    ]


async def test_an_accounts_buying_group_and_the_account_waterfall(
    settings_for: Any, isolation: Any
) -> None:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(T0 + timedelta(days=1)))
    async with app_client(app) as client:
        await sc.load(isolation, history())

        page = await client.get("/v1/accounts/ACME.com", headers=ADMIN)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["account_id"] == "acct-acme" and body["registered"] is True
        assert [(p["title"], p["role"], p["stage"], p["engagement"]) for p in body["people"]] == [
            ("IT Manager", "champion", "inquiry", 55.0),
            ("Chief Financial Officer", "decision_maker", "won", 40.0),
            ("Support Agent", "user", "inquiry", 5.0),
        ]
        assert body["owner_rep_id"] == "rep-7" and body["customer_status"] == "customer"
        assert body["won_revenue"] == [{"currency": "EUR", "amount": "50000"}]
        by_id = await client.get("/v1/accounts/acct-acme", headers=ADMIN)
        assert by_id.json()["people"] == body["people"]

        missing = await client.get("/v1/accounts/nobody.example", headers=ADMIN)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/v1/accounts/acme.com")).status_code == 401

        report = (await client.get("/v1/accounts", headers=ADMIN)).json()
        assert report["waterfall"] == [
            {"stage": "engaged", "count": 2, "conversion": None},
            {"stage": "qualified", "count": 1, "conversion": 0.5},
            {"stage": "opportunity", "count": 1, "conversion": 1.0},
            {"stage": "won", "count": 1, "conversion": 1.0},
        ]
        assert report["revenue"] == [
            {"currency": "EUR", "new_business": "50000", "expansion": "0",
             "new_business_deals": 1, "expansion_deals": 0}
        ]  # fmt: skip
