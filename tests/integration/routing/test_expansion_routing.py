"""Past the close (issue 30) in routing, against real Kafka and Postgres: a win makes a
customer (customer.became with deal.won); scoring's expansion.opened and the expansion's
qualification are routed to the account owner with the cycle on the assignment, and the
expansion's win closes as an expansion; a lost expansion leaves a customer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.scoring import ExpansionOpened, LeadQualified
from leadflow.events.envelope import Envelope, new_id
from leadflow.routing.app import create_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, consume_topic, produce_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": "Bearer test-admin-token"}


def _qualified(cycle: str, account_id: str | None) -> LeadQualified:
    return LeadQualified(
        fit=80, engagement=40, grade="A", matrix_cell="A2", model_version=1,
        lead=LeadSnapshot(grade="A", account_id=account_id), cycle=cycle,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_an_expansion_is_routed_to_the_account_owner_and_closes_as_expansion(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    app = create_app(settings_for(RoutingSettings))
    won_twice, lost_expansion = new_id(), new_id()
    async with app_client(app) as client:
        for path, body in [
            ("/v1/routing/reps/ava", {"name": "Ava", "team_id": "na"}),
            ("/v1/routing/reps/owen", {"name": "Owen", "team_id": "na"}),
            ("/v1/routing/queues/overflow", {"name": "Overflow"}),
            ("/v1/routing/teams/na", {"members": ["ava"], "queue_id": "overflow"}),
        ]:
            assert (await client.put(path, json=body, headers=AUTH)).status_code == 200
        rules = {
            "rules": [
                {"id": "all", "target": {"kind": "rep", "rep_id": "ava"}},
            ],
            "default_queue_id": "overflow",
        }
        r = await client.post("/v1/routing/rules", json=rules, headers=AUTH)
        assert r.status_code == 201, r.text

        # New business: no account yet, the rule gives both leads to Ava; both are won.
        scoring = isolation.topic("scoring")
        for lead in (won_twice, lost_expansion):
            await produce_events(
                kafka_bootstrap,
                scoring,
                [Envelope.new(_qualified("new_business", None), lead_id=lead)],
            )

        async def at(lead: Any, stage: str, rep: str) -> bool:
            r = await client.get(f"/v1/leads/{lead}/assignment", headers=AUTH)
            view = r.json() if r.status_code == 200 else {}
            return view.get("stage") == stage and view.get("rep_id") == rep

        for lead in (won_twice, lost_expansion):
            await wait_until(lambda lead=lead: at(lead, "mql", "ava"), timeout=90)
            for action, body in [
                ("accept", {}),
                ("qualify", {}),
                ("opportunity", {"amount": "10000.00", "currency": "USD"}),
                ("won", {"amount": "10000.00"}),
            ]:
                r = await client.post(f"/v1/leads/{lead}/{action}", json=body, headers=AUTH)
                assert r.status_code == 200, (action, r.text)
            assert r.json()["stage"] == "customer"

        # The account gets an owner; the customers raise their hands again.
        r = await client.put("/v1/routing/accounts/acme", json={"rep_id": "owen"}, headers=AUTH)
        assert r.status_code == 200, r.text
        for lead in (won_twice, lost_expansion):
            opened = ExpansionOpened(trigger="hand_raise", account_id="acme", expansion_number=1)
            await produce_events(
                kafka_bootstrap,
                scoring,
                [
                    Envelope.new(opened, lead_id=lead),
                    Envelope.new(_qualified("expansion", "acme"), lead_id=lead),
                ],
            )
        for lead in (won_twice, lost_expansion):
            await wait_until(lambda lead=lead: at(lead, "mql", "owen"), timeout=90)
            view = (await client.get(f"/v1/leads/{lead}/assignment", headers=AUTH)).json()
            assert view["cycle"] == "expansion"
            assert [d["kind"] for d in view["decisions"]] == ["assigned", "assigned"]
            assert view["decisions"][-1]["explanation"]["method"] == "account_owner"

        for action, body in [
            ("accept", {}),
            ("qualify", {}),
            ("opportunity", {"amount": "2500.00", "currency": "USD"}),
            ("won", {"amount": "2500.00"}),
        ]:
            r = await client.post(f"/v1/leads/{won_twice}/{action}", json=body, headers=AUTH)
            assert r.status_code == 200, (action, r.text)
        assert r.json()["stage"] == "customer"

        # A lost expansion leaves a customer a customer, not a lost lead.
        for action, body in [
            ("accept", {}),
            ("qualify", {}),
            ("opportunity", {"amount": "900.00", "currency": "USD"}),
            ("lost", {"reason_code": "price"}),
        ]:
            r = await client.post(f"/v1/leads/{lost_expansion}/{action}", json=body, headers=AUTH)
            assert r.status_code == 200, (action, r.text)
        assert r.json()["stage"] == "customer"
        view = (await client.get(f"/v1/leads/{lost_expansion}/assignment", headers=AUTH)).json()
        assert (view["stage"], view["cycle"]) == ("customer", "expansion")

        published = await consume_topic(
            kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda evs: sum(e.event_type == "customer.became" for e in evs) >= 3,
        )
        mine = [e for e in published if e.lead_id == won_twice]
        assert [(e.event_type, getattr(e.payload, "cycle", None)) for e in mine] == [
            ("lead.assigned", "new_business"),
            ("lead.accepted", None),
            ("lead.sales_qualified", None),
            ("opportunity.opened", None),
            ("deal.won", "new_business"),
            ("customer.became", "new_business"),
            ("lead.assigned", "expansion"),
            ("lead.accepted", None),
            ("lead.sales_qualified", None),
            ("opportunity.opened", None),
            ("deal.won", "expansion"),
            ("customer.became", "expansion"),
        ]
        assert mine[6].payload.rep_id == "owen"  # type: ignore[attr-defined]
        assert mine[6].payload.method == "account_owner"  # type: ignore[attr-defined]
