"""A deal is won in its opportunity's currency: a win in another currency is refused (409,
naming the field) unless converted explicitly (``exchange_rate``: recorded in the
opportunity's currency, the entered amount and rate kept beside it)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
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

        # A rate without another currency is refused, naming the field.
        r = await client.post(
            f"/v1/leads/{lead}/won",
            json={"amount": "1100", "currency": "EUR", "exchange_rate": "0.9"},
            headers=AUTH,
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "exchange_rate"

        # Converted explicitly: recorded in the opportunity's currency, the entry kept beside.
        r = await client.post(
            f"/v1/leads/{lead}/won",
            json={"amount": "1200", "currency": "USD", "exchange_rate": "0.92"},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        row = await scalar(
            client, "SELECT currency || ' ' || amount FROM leads WHERE lead_id = :l", l=lead
        )
        assert row == "EUR 1104.00"
        [won] = [e for e in await _events(client, lead) if e.event_type == "deal.won"]
        assert (won.payload.amount, won.payload.currency) == (Decimal("1104.00"), "EUR")
        assert (won.payload.original_amount, won.payload.original_currency) == (
            Decimal("1200"),
            "USD",
        )
        assert won.payload.exchange_rate == Decimal("0.92")


async def _events(client: Any, lead: Any) -> list[Any]:
    kit = client._transport.app.state.kit
    async with kit.connect() as conn:
        return list(await kit.store.read_stream(conn, lead))
