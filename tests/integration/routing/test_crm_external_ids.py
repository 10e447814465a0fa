"""CRM outcomes name the lead the way the CRM knows it: by the id the lead has in its source
system (intake's ``external_id`` + ``external_system`` on ``lead.captured``, kept by routing),
and a redelivery is recognised by the CRM's own event id, not only by the lead's stage."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import Contact, LeadCaptured, LeadErased
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import Envelope, new_id
from leadflow.routing.app import create_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, produce_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": "Bearer test-admin-token"}
SHARED_ID = "00Q5g00000AbCdE"  # the same id in two systems: the system decides


async def _setup(client: Any) -> None:
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


def _captured(lead: uuid.UUID, email: str, system: str) -> Envelope:
    return Envelope.new(
        LeadCaptured(
            inquiry_id=new_id(),
            capture_method="import",
            contact=Contact(email=email),
            external_id=SHARED_ID,
            external_system=system,
        ),
        lead_id=lead,
    )


def _qualified(lead: uuid.UUID) -> Envelope:
    return Envelope.new(
        LeadQualified(
            fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1,
            lead=LeadSnapshot(grade="A"),
        ),
        lead_id=lead,
    )  # fmt: skip


async def test_outcomes_match_by_external_id_and_system_and_repeat_by_event_id(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    app = create_app(settings_for(RoutingSettings))
    from_sf, from_hs = new_id(), new_id()
    async with app_client(app) as client:
        await _setup(client)
        await produce_events(
            kafka_bootstrap,
            isolation.topic("intake"),
            [
                _captured(from_sf, "sf.person@example.com", "salesforce"),
                _captured(from_hs, "hs.person@example.com", "HubSpot"),
            ],
        )
        await produce_events(
            kafka_bootstrap, isolation.topic("scoring"), [_qualified(from_sf), _qualified(from_hs)]
        )

        async def routed() -> bool:
            for lead in (from_sf, from_hs):
                r = await client.get(f"/v1/leads/{lead}/assignment", headers=AUTH)
                # The contact card alone makes the lead known (stage inquiry): wait for
                # the qualification's assignment to Ava as well.
                view = r.json() if r.status_code == 200 else {}
                if view.get("contact") is None or view.get("stage") != "mql":
                    return False
                if view.get("rep_id") != "ava":
                    return False
            return True

        await wait_until(routed, timeout=90, message="both leads assigned")

        # Salesforce: no e-mail, no Leadflow id, only the lead's Salesforce id.
        salesforce = {
            "Id": "0065g00000Opp01",
            "StageName": "Closed Won",
            "Amount": 30000,
            "CurrencyIsoCode": "EUR",
            "Lead_External_Id__c": SHARED_ID,
        }
        r = await client.post(
            "/v1/routing/crm/events?mapping=salesforce",
            json=salesforce,
            headers={**AUTH, "Idempotency-Key": "sf-delivery-1"},
        )
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["lead_id"] == str(from_sf)
        assert [s["event_type"] for s in first["recorded"]] == [
            "lead.accepted",
            "lead.sales_qualified",
            "opportunity.opened",
            "deal.won",
        ]
        # HubSpot: the same id string, but HubSpot's lead; an opportunity first.
        hubspot = {
            "eventId": 501,
            "objectId": 777,
            "propertyName": "dealstage",
            "propertyValue": "qualifiedtobuy",
            "properties": {"contact_id": SHARED_ID, "amount": "9000"},
        }
        r = await client.post("/v1/routing/crm/events?mapping=hubspot", json=hubspot, headers=AUTH)
        assert r.status_code == 200, r.text
        opened = r.json()
        assert opened["lead_id"] == str(from_hs)
        assert opened["recorded"][-1]["event_type"] == "opportunity.opened"
        won = {**hubspot, "eventId": 502, "propertyValue": "closedwon"}
        r = await client.post("/v1/routing/crm/events?mapping=hubspot", json=won, headers=AUTH)
        assert r.status_code == 200 and r.json()["recorded"][-1]["event_type"] == "deal.won"

        # HubSpot redelivers event 501 after the deal was won: the lead's stage (won) says
        # nothing about it; its event id does. Same answer, nothing recorded again.
        r = await client.post("/v1/routing/crm/events?mapping=hubspot", json=hubspot, headers=AUTH)
        assert r.status_code == 200
        assert r.json() == {**opened, "repeat_of": "501"}
        r = await client.post(
            "/v1/routing/crm/events?mapping=salesforce",
            json=salesforce,
            headers={**AUTH, "Idempotency-Key": "sf-delivery-1"},
        )
        assert r.json() == {**first, "repeat_of": "sf-delivery-1"}
        for lead in (from_sf, from_hs):
            view = (await client.get(f"/v1/leads/{lead}/assignment", headers=AUTH)).json()
            assert view["stage"] == "customer"  # won → customer (issue 30)
        assert await _count(app, from_sf, "deal.won") == 1
        assert await _count(app, from_sf, "customer.became") == 1
        assert await _count(app, from_hs, "opportunity.opened") == 1

        # An id no system has: 404 naming the field; the id in the wrong system: no match.
        r = await client.post(
            "/v1/routing/crm/events?mapping=salesforce",
            json={**salesforce, "Lead_External_Id__c": "00Q-unknown"},
            headers=AUTH,
        )
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "email"
        custom = {
            "mapping": {
                "external_id": "ref",
                "source_system": "system",
                "opportunity_id": "id",
                "stage": "stage",
                "stages": {"won": "won"},
            },
            "event": {"ref": SHARED_ID, "system": "marketo", "id": "x", "stage": "won"},
        }
        r = await client.post("/v1/routing/crm/events", json=custom, headers=AUTH)
        assert r.status_code == 404, r.text

        # Erasure: the lead's source-system id is forgotten with its contact card.
        await produce_events(
            kafka_bootstrap,
            isolation.topic("intake"),
            [Envelope.new(LeadErased(reason="request"), lead_id=from_sf)],
        )
        fresh = {**salesforce, "Id": "0065g00000Opp02"}

        async def forgotten() -> bool:
            r = await client.post(
                "/v1/routing/crm/events?mapping=salesforce", json=fresh, headers=AUTH
            )
            return r.status_code == 404

        await wait_until(forgotten, message="the erased lead's external id forgotten")


async def _count(app: Any, lead: uuid.UUID, event_type: str) -> int:
    async with app.state.kit.connect() as tx:
        found = await tx.fetchval(
            "SELECT count(*) FROM event_log WHERE lead_id = :s AND event_type = :t",
            s=lead,
            t=event_type,
        )
        return int(found)
