"""A deal is won in its opportunity's currency: a win in another currency is refused (409,
naming the field) unless the client converted it; without a currency it is the opportunity's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.envelope import new_id
from leadflow.events.testing import produce_events, wait_until
from tests.integration.routing.test_routing_kafka import (
    AUTH,
    assignment,
    configure,
    qualified,
    routing,
    scalar,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_win_in_another_currency_than_its_opportunity_is_refused(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead = new_id()
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)]
        )
        await wait_until(lambda: assignment(client, lead), timeout=60, message="assigned")
        for step, body in (
            ("accept", {}),
            ("qualify", {}),
            ("opportunity", {"amount": "1000.00", "currency": "EUR"}),
        ):
            r = await client.post(f"/v1/leads/{lead}/{step}", json=body, headers=AUTH)
            assert r.status_code == 200, r.text

        r = await client.post(
            f"/v1/leads/{lead}/won", json={"amount": "1200", "currency": "USD"}, headers=AUTH
        )
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "currency"
        assert r.json()["opportunity_currency"] == "EUR"
        assert await scalar(client, "SELECT stage FROM leads WHERE lead_id = :l", l=lead) == (
            "opportunity"
        )

        # Converted by the client: accepted, in the opportunity's currency.
        r = await client.post(f"/v1/leads/{lead}/won", json={"amount": "1100"}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert (
            await scalar(client, "SELECT currency FROM leads WHERE lead_id = :l", l=lead) == "EUR"
        )
