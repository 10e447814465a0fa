"""Deleting what the configuration in force or an open lead still uses is refused (409,
naming every use); once nothing uses it, the delete goes through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.envelope import new_id
from leadflow.testing import produce_events, wait_until
from tests.integration.routing.test_routing_kafka import (
    AUTH,
    assignment,
    configure,
    qualified,
    routing,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_rep_team_and_queue_in_use_are_not_deleted(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead = new_id()
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)]
        )
        placed = await wait_until(
            lambda: assignment(client, lead), timeout=60, message="the lead is assigned"
        )
        assert placed["rep_id"] == "a"

        # The rep owns an open lead: refused, naming the lead.
        r = await client.delete("/v1/routing/reps/a", headers=AUTH)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        [use] = [e for e in r.json()["errors"] if e["field"] == "leads"]
        assert str(lead) in use["message"]
        assert (await client.get("/v1/routing/reps/a", headers=AUTH)).status_code == 200

        # The team is the target of rule na-pool, rep a is in it and it has the open lead.
        r = await client.delete("/v1/routing/teams/na", headers=AUTH)
        assert r.status_code == 409, r.text
        fields = {e["field"] for e in r.json()["errors"]}
        assert fields == {"rules[1].target", "reps[a].team_id", "leads"}
        assert "'na-pool'" in r.json()["detail"]

        # The queue is rule emea's target and the rule set's default queue.
        r = await client.delete("/v1/routing/queues/unassigned", headers=AUTH)
        assert r.status_code == 409, r.text
        assert {e["field"] for e in r.json()["errors"]} == {"rules[0].target", "default_queue_id"}

        # An account owner is a use of the rep too.
        put = await client.put("/v1/routing/accounts/acme.com", json={"rep_id": "a"}, headers=AUTH)
        assert put.status_code == 200, put.text
        r = await client.delete("/v1/routing/reps/a", headers=AUTH)
        assert {e["field"] for e in r.json()["errors"]} == {"leads", "accounts[acme.com]"}

        # Once the lead is closed and the account handed over, the rep can go.
        done = await client.post(
            f"/v1/leads/{lead}/reject", json={"reason_code": "no_budget"}, headers=AUTH
        )
        assert done.status_code == 200, done.text
        assert (
            await client.delete("/v1/routing/accounts/acme.com", headers=AUTH)
        ).status_code == 204
        assert (await client.delete("/v1/routing/reps/a", headers=AUTH)).status_code == 204
        assert (await client.get("/v1/routing/reps/a", headers=AUTH)).status_code == 404
        # An unused queue goes at once; an unknown one is a 404.
        assert (
            await client.put("/v1/routing/queues/spare", json={}, headers=AUTH)
        ).status_code == 200
        assert (await client.delete("/v1/routing/queues/spare", headers=AUTH)).status_code == 204
        assert (await client.delete("/v1/routing/queues/spare", headers=AUTH)).status_code == 404
