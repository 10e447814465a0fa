"""Expansion counted apart (issue 30) on real Kafka + Postgres: a scripted customer whose
expansion cycle is won, a second whose expansion is lost, a prospect — logged by analytics
and read back: the funnel and the source report count new business only, the accounts
report gives the funnel per cycle and expansion revenue apart, the account page shows
customer status and each person's cycle."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.intake import InquiryReceived
from leadflow.events.catalogue.routing import (
    CustomerBecame,
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import ExpansionOpened, LeadQualified
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.testing import app_client
from tests.integration.analytics import scenario as sc
from tests.integration.analytics.test_accounts_report import ACME, BETA, T0, _captured

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}


def _qualified(cycle: str = "new_business") -> LeadQualified:
    return LeadQualified(
        fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1,
        cycle=cycle,  # type: ignore[arg-type]
    )  # fmt: skip


def _to_opportunity(amount: int, cycle: str = "new_business") -> list[EventPayload]:
    return [
        _qualified(cycle),
        LeadAssigned(assignee_kind="rep", rep_id="rep-7", method="account_owner"),
        LeadAccepted(rep_id="rep-7"),
        LeadSalesQualified(rep_id="rep-7"),
        OpportunityOpened(opportunity_id=f"o-{amount}", amount=Decimal(amount), currency="EUR"),
    ]


def _win(amount: int, cycle: str = "new_business") -> list[EventPayload]:
    return [
        DealWon(amount=Decimal(amount), currency="EUR", rep_id="rep-7", cycle=cycle),  # type: ignore[arg-type]
        CustomerBecame(cycle=cycle, account_id="acct-acme", rep_id="rep-7"),  # type: ignore[arg-type]
    ]


def _expansion() -> list[EventPayload]:
    return [
        InquiryReceived(inquiry_id=uuid.uuid4(), capture_method="web_form"),
        ExpansionOpened(trigger="hand_raise", account_id="acct-acme"),
    ]


def history() -> list[Envelope]:
    cfo, cto, beta = (uuid.uuid4() for _ in range(3))
    steps: list[tuple[uuid.UUID, EventPayload]] = [
        (cfo, _captured("Chief Financial Officer", ACME)),
        (cto, _captured("Chief Technology Officer", ACME)),
        (beta, _captured("Engineer", BETA)),
        *((cfo, p) for p in [*_to_opportunity(50000), *_win(50000)]),
        *((cto, p) for p in [*_to_opportunity(20000), *_win(20000)]),
        *((beta, p) for p in _to_opportunity(9000)),
        # the CFO expands and wins; the CTO expands and loses
        *((cfo, p) for p in [*_expansion(), *_to_opportunity(12000, "expansion")]),
        *((cfo, p) for p in _win(12000, "expansion")),
        *((cto, p) for p in [*_expansion(), *_to_opportunity(7000, "expansion")]),
        (cto, DealLost(reason_code="price", rep_id="rep-7")),
    ]
    return [
        Envelope.new(p, lead_id=lead, occurred_at=T0 + timedelta(hours=i))
        for i, (lead, p) in enumerate(steps)
    ]


async def test_expansion_is_counted_apart_from_new_business(
    settings_for: Any, isolation: Any
) -> None:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(T0 + timedelta(days=3)))
    async with app_client(app) as client:
        await sc.load(isolation, history())

        report = (await client.get("/v1/accounts", headers=ADMIN)).json()
        assert report["revenue"] == [
            {"currency": "EUR", "new_business": "50000", "expansion": "32000",
             "new_business_deals": 1, "expansion_deals": 2}
        ]  # fmt: skip
        # (the CTO's first win is the account's second deal: expansion at account level)
        cycles = {c["cycle"]: c for c in report["cycles"]}
        new, expansion = cycles["new_business"], cycles["expansion"]
        assert new["cycles"] == 3
        assert [(s["stage"], s["count"]) for s in new["stages"]] == [
            ("inquiry", 3), ("mql", 3), ("sal", 3), ("sql", 3), ("opportunity", 3), ("won", 2),
        ]  # fmt: skip
        assert new["won_revenue"] == [{"currency": "EUR", "amount": "70000", "deals": 2}]
        assert expansion["cycles"] == 2 and expansion["lost"] == 1
        assert [(s["stage"], s["count"]) for s in expansion["stages"]] == [
            ("inquiry", 2), ("mql", 2), ("sal", 2), ("sql", 2), ("opportunity", 2), ("won", 1),
        ]  # fmt: skip
        assert expansion["won_revenue"] == [{"currency": "EUR", "amount": "12000", "deals": 1}]

        # The funnel and the sources count new business: the expansion's MQL, opportunity
        # and win are not new milestones of the customer's inquiry cohort.
        funnel = (await client.get("/v1/funnel", headers=ADMIN)).json()
        assert {r["stage"]: r["count"] for r in funnel["waterfall"]} == {
            "inquiry": 3, "mql": 3, "sal": 3, "sql": 3, "opportunity": 3, "won": 2,
        }  # fmt: skip
        assert funnel["outcomes"] == {"lost": 0, "disqualified": 0}
        web = (await client.get("/v1/sources", headers=ADMIN)).json()["rows"][0]
        assert (web["inquiries"], web["won"]) == (3, 2)
        assert web["money"][0]["won_revenue"] == 70000.0  # new business only
        assert web["money"][0]["pipeline"] == 9000.0  # Beta's open opportunity only

        page = (await client.get("/v1/accounts/acme.com", headers=ADMIN)).json()
        assert page["customer_status"] == "customer" and page["open_expansions"] == 0
        assert sorted((p["title"], p["stage"], p["cycle"]) for p in page["people"]) == [
            ("Chief Financial Officer", "customer", "expansion"),
            ("Chief Technology Officer", "customer", "expansion"),
        ]
        assert page["won_revenue"] == [{"currency": "EUR", "amount": "82000"}]
        assert page["expansion_revenue"] == [{"currency": "EUR", "amount": "12000"}]
