"""Outcomes back from a CRM: a Salesforce opportunity closed won and a HubSpot deal-stage
change to closed lost are recorded on the matching leads as a rep would record them, once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import Contact, LeadCaptured
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import Envelope, new_id
from leadflow.routing.app import create_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, produce_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": "Bearer test-admin-token"}


async def test_salesforce_won_and_hubspot_lost_are_recorded_once(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    app = create_app(settings_for(RoutingSettings))
    won_lead, lost_lead = new_id(), new_id()
    async with app_client(app) as client:
        for path, body in [
            ("/v1/routing/reps/ava", {"name": "Ava", "team_id": "na"}),
            ("/v1/routing/queues/overflow", {"name": "Overflow"}),
            ("/v1/routing/teams/na", {"members": ["ava"], "queue_id": "overflow"}),
        ]:
            assert (await client.put(path, json=body, headers=AUTH)).status_code == 200
        r = await client.post(
            "/v1/routing/rules",
            json={
                "rules": [
                    {
                        "id": "all",
                        "target": {"kind": "team", "team_id": "na", "respect_territories": False},
                    }
                ],
                "default_queue_id": "overflow",
            },
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        for lead, email in (
            (won_lead, "grace@navy.example"),
            (lost_lead, "alan@bletchley.example"),
        ):
            await produce_events(
                kafka_bootstrap,
                isolation.topic("intake"),
                [
                    Envelope.new(
                        LeadCaptured(
                            inquiry_id=new_id(), capture_method="api", contact=Contact(email=email)
                        ),
                        lead_id=lead,
                    )
                ],
            )
            await produce_events(
                kafka_bootstrap,
                isolation.topic("scoring"),
                [
                    Envelope.new(
                        LeadQualified(
                            fit=80,
                            engagement=60,
                            grade="A",
                            matrix_cell="A1",
                            model_version=1,
                            lead=LeadSnapshot(grade="A"),
                        ),
                        lead_id=lead,
                    )
                ],
            )

        async def routed() -> bool:
            for lead in (won_lead, lost_lead):
                r = await client.get(f"/v1/leads/{lead}/assignment", headers=AUTH)
                # The contact card alone makes the lead known (stage inquiry): wait for
                # the qualification's assignment to Ava as well.
                view = r.json() if r.status_code == 200 else {}
                if view.get("contact") is None or view.get("stage") != "mql":
                    return False
                if view.get("rep_id") != "ava":
                    return False
            return True

        await wait_until(routed, timeout=90, message="both leads assigned with their contact")

        salesforce = {
            "Id": "0065g00000XyZ1AAA",
            "StageName": "Closed Won",
            "Amount": 48000,
            "CurrencyIsoCode": "EUR",
            "Contact_Email__c": "Grace@Navy.example",
        }
        r = await client.post(
            "/v1/routing/crm/events?mapping=salesforce", json=salesforce, headers=AUTH
        )
        assert r.status_code == 200, r.text
        assert [s["event_type"] for s in r.json()["recorded"]] == [
            "lead.accepted",
            "lead.sales_qualified",
            "opportunity.opened",
            "deal.won",
        ]
        # won → customer (issue 30): customer.became goes with deal.won
        assert r.json()["recorded"][-1]["stage"] == "customer"
        lead = (await client.get(f"/v1/leads/{won_lead}/assignment", headers=AUTH)).json()
        assert lead["stage"] == "customer" and lead["amount"] == "48000.00"
        assert lead["cycle"] == "new_business"
        assert lead["currency"] == "EUR" and lead["opportunity_id"] == "0065g00000XyZ1AAA"
        # The CRM sends it again: nothing more is recorded.
        again = await client.post(
            "/v1/routing/crm/events?mapping=salesforce", json=salesforce, headers=AUTH
        )
        assert again.status_code == 200
        assert [s["repeated"] for s in again.json()["recorded"]] == [True]

        hubspot = {
            "eventId": 1001,
            "subscriptionType": "deal.propertyChange",
            "objectId": 9876,
            "propertyName": "dealstage",
            "propertyValue": "closedlost",
            "properties": {
                "leadflow_lead_id": str(lost_lead),
                "amount": "12000",
                "deal_currency_code": "USD",
                "closed_lost_reason": "price",
            },
        }
        r = await client.post("/v1/routing/crm/events?mapping=hubspot", json=hubspot, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["recorded"][-1]["event_type"] == "deal.lost"
        lead = (await client.get(f"/v1/leads/{lost_lead}/assignment", headers=AUTH)).json()
        assert lead["stage"] == "lost"

        # Churn comes from the CRM like the other outcomes: customer status ends, once; a
        # lead that is not a customer cannot churn (409 from the lifecycle).
        churn = {
            "mapping": {
                "email": "account.email",
                "event_id": "id",
                "opportunity_id": "account.id",
                "stage": "status",
                "reason": "why",
                "stages": {"Churned": "churned"},
            },
            "event": {
                "id": "churn-1",
                "status": "Churned",
                "why": "budget",
                "account": {"id": "acc-1", "email": "grace@navy.example"},
            },
        }
        r = await client.post("/v1/routing/crm/events", json=churn, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["recorded"] == [
            {"event_type": "customer.churned", "repeated": False, "stage": "churned"}
        ]
        lead = (await client.get(f"/v1/leads/{won_lead}/assignment", headers=AUTH)).json()
        assert lead["stage"] == "churned"
        churn["event"]["id"] = "churn-2"  # a second churn without its first id: a repeat
        r = await client.post("/v1/routing/crm/events", json=churn, headers=AUTH)
        assert [s["repeated"] for s in r.json()["recorded"]] == [True]
        not_customer = {
            **churn,
            "event": {**churn["event"], "id": "churn-3", "lead": str(lost_lead)},
            "mapping": {**churn["mapping"], "lead_id": "lead"},
        }
        r = await client.post("/v1/routing/crm/events", json=not_customer, headers=AUTH)
        assert r.status_code == 409, r.text
        assert "customer.churned" in r.json()["detail"]

        # Not keyed: refused. No lead with that e-mail: 404 naming the field.
        assert (
            await client.post("/v1/routing/crm/events?mapping=salesforce", json=salesforce)
        ).status_code == 401
        nobody = {**salesforce, "Contact_Email__c": "nobody@nowhere.example"}
        r = await client.post(
            "/v1/routing/crm/events?mapping=salesforce", json=nobody, headers=AUTH
        )
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "email"
        # An open stage that is not an outcome is acknowledged and ignored.
        r = await client.post(
            "/v1/routing/crm/events?mapping=hubspot",
            json={**hubspot, "eventId": 1002, "propertyValue": "somethingelse"},
            headers=AUTH,
        )
        assert r.status_code == 200 and r.json()["recorded"] == []
