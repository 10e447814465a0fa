"""A rep sees the leads waiting in their team's queue and claims one by accepting it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.envelope import new_id
from leadflow.testing import produce_events, wait_until
from tests.integration.routing.test_routing_kafka import AUTH, configure, qualified, routing

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_a_rep_lists_their_teams_queue_and_claims_a_lead_by_accepting(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1, "b": 1})
        # The EMEA rule parks leads in "unassigned"; that queue belongs to team na here.
        r = await client.put(
            "/v1/routing/queues/unassigned",
            json={"name": "NA overflow", "team_id": "na"},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        lead = new_id()
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("scoring"),
            [qualified(lead, LeadSnapshot(country="DE", company="Contoso", grade="A"))],
        )

        async def waiting() -> list[dict[str, Any]]:
            got = await client.get("/v1/reps/a/team-queue", headers=AUTH)
            assert got.status_code == 200, got.text
            return list(got.json()["leads"])

        leads = await wait_until(waiting, timeout=60, message="the lead waits in the queue")
        assert [x["lead_id"] for x in leads] == [str(lead)]
        assert leads[0]["queue_id"] == "unassigned" and leads[0]["lead"]["company"] == "Contoso"
        assert (await client.get("/v1/reps/nobody/team-queue", headers=AUTH)).status_code == 404

        taken = await client.post(f"/v1/leads/{lead}/accept", json={"rep_id": "a"}, headers=AUTH)
        assert taken.status_code == 200, taken.text
        assert taken.json()["rep_id"] == "a" and taken.json()["stage"] == "sal"
        assert await waiting() == []  # claimed: no longer waiting
        mine = (await client.get("/v1/reps/a/queue", headers=AUTH)).json()["leads"]
        assert [x["lead_id"] for x in mine] == [str(lead)]
