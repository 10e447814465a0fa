"""With the broker stopped intake keeps accepting; everything is published, in order, when
the broker returns (a private broker of this test's own, stopped and started for real)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from leadflow.intake.app import create_app
from leadflow.testing import app_client, consume_topic, wait_until
from tests.integration.intake.conftest import ADMIN, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]


async def test_with_the_broker_stopped_500_inquiries_are_accepted_then_published_in_order(
    settings_for: Callable[..., Any],
    private_kafka: Any,
) -> None:
    settings = make_settings(
        settings_for,
        run_consumers=True,
        kafka_bootstrap_servers=private_kafka.bootstrap,
        intake_key_rate_per_second=10_000.0,
        intake_key_burst=10_000,
    )
    app = create_app(settings)
    topic = f"{settings.topic_prefix}leadflow.intake"
    async with app_client(app) as client:
        kit = app.state.kit
        key = (
            await client.post(
                "/v1/admin/api-keys", headers=ADMIN, json={"name": "t", "scopes": ["inquiries"]}
            )
        ).json()["key"]
        await asyncio.to_thread(private_kafka.stop)
        assert not private_kafka.running

        # 250 people, each inquiring twice: 500 inquiries, ordered per lead
        answers = []
        for round_ in range(2):
            for n in range(250):
                response = await client.post(
                    "/v1/inquiries",
                    headers={"X-Api-Key": key},
                    json={
                        "contact": {"email": f"p{n}@durable.example"},
                        "answers": {"comments": f"round {round_}"},
                    },
                )
                assert response.status_code == 202, response.text
                answers.append(response.json())
        assert len({a["lead_id"] for a in answers}) == 250

        async def outbox_depth() -> int:
            async with kit.connect() as tx:
                return int(await tx.fetchval("SELECT count(*) FROM outbox"))

        async def drained() -> bool:
            return await outbox_depth() == 0

        assert await outbox_depth() == 500  # nothing could be published

        await asyncio.to_thread(private_kafka.start)
        await wait_until(drained, timeout=120, interval=0.5, message="outbox drained")
        async with kit.connect() as tx:
            stored = await kit.store.read_all(tx, 0, 10_000)

    published = await consume_topic(
        private_kafka.bootstrap, topic, until=lambda events: len(events) >= 500, timeout=60
    )
    assert sorted(e.event_id for e in published) == sorted(s.envelope.event_id for s in stored)
    per_lead: dict[uuid.UUID, list[int]] = defaultdict(list)
    kinds: dict[uuid.UUID, list[str]] = defaultdict(list)
    for event in published:
        per_lead[event.lead_id].append(event.stream_version)
        kinds[event.lead_id].append(event.event_type)
    assert len(per_lead) == 250
    assert all(versions == [1, 2] for versions in per_lead.values())
    assert all(k == ["lead.captured", "inquiry.received"] for k in kinds.values())
