"""A sales manager reassigns an open lead through routing's API (real Kafka and Postgres):
the queues follow, the decision log lists it, the fact goes out, refusals name the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.routing import LeadReassigned
from leadflow.events.envelope import new_id
from leadflow.testing import consume_topic
from tests.integration.routing.test_routing_kafka import (
    AUTH,
    _assigned_lead,
    assignment,
    configure,
    routing,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _queue(client: Any, rep_id: str) -> list[str]:
    got = await client.get(f"/v1/reps/{rep_id}/queue", headers=AUTH)
    assert got.status_code == 200, got.text
    return [x["lead_id"] for x in got.json()["leads"]]


async def test_a_manager_moves_a_lead_to_another_rep_and_bad_moves_are_refused(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1, "b": 1, "c": 1})
        r = await client.put(
            "/v1/routing/reps/c", json={"team_id": "na", "active": False}, headers=AUTH
        )
        assert r.status_code == 200, r.text
        lead_id, got = await _assigned_lead(client, isolation)
        first = got["rep_id"]
        other = "b" if first == "a" else "a"
        assert str(lead_id) in await _queue(client, first)

        url = f"/v1/leads/{lead_id}/reassign"
        for body, status, field in [
            ({"rep_id": "nobody", "reason": "x"}, 422, "rep_id"),
            ({"rep_id": first, "reason": "x"}, 409, "rep_id"),  # already theirs
            ({"rep_id": "c", "reason": "x"}, 409, "rep_id"),  # paused
            ({"rep_id": other, "reason": ""}, 422, "reason"),
        ]:
            refused = await client.post(url, json=body, headers=AUTH)
            assert refused.status_code == status, (body, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert field in refused.text, refused.text
        unknown = await client.post(
            f"/v1/leads/{new_id()}/reassign", json={"rep_id": other, "reason": "x"}, headers=AUTH
        )
        assert unknown.status_code == 404, unknown.text
        assert (await client.post(url, json={"rep_id": other, "reason": "x"})).status_code == 401

        moved = await client.post(
            url, json={"rep_id": other, "reason": "covering a holiday"}, headers=AUTH
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["rep_id"] == other
        assert moved.json()["event_type"] == "lead.reassigned"

        assert str(lead_id) in await _queue(client, other)
        assert str(lead_id) not in await _queue(client, first)
        now = await assignment(client, lead_id)
        assert now["rep_id"] == other and now["assignee_kind"] == "rep"
        last = now["decisions"][-1]
        assert last["kind"] == "reassigned", now["decisions"]
        assert last["explanation"]["method"] == "manual"
        assert last["explanation"]["from_rep_id"] == first
        assert last["explanation"]["reason"] == "reassigned by a sales manager: covering a holiday"

        events = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda es: any(e.event_type == LeadReassigned.event_type for e in es),
        )
        [fact] = [e for e in events if e.event_type == LeadReassigned.event_type]
        assert fact.lead_id == lead_id
        assert isinstance(fact.payload, LeadReassigned)
        assert (fact.payload.from_rep_id, fact.payload.rep_id) == (first, other)

        # Once the lead left sales (recycled), it is no longer open to reassign.
        recycled = await client.post(
            f"/v1/leads/{lead_id}/recycle", json={"reason_code": "timing"}, headers=AUTH
        )
        assert recycled.status_code == 200, recycled.text
        late = await client.post(url, json={"rep_id": first, "reason": "x"}, headers=AUTH)
        assert late.status_code == 409 and "lead_id" in late.text, late.text
