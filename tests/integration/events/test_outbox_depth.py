"""The outbox depth gauge: counted while rows pile up (the broker away, a backlog), zero
without a query once a short fetch published everything it saw."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from leadflow.events.catalogue.intake import ConsentChanged
from leadflow.events.envelope import new_id
from leadflow.events.outbox import OutboxRelay
from leadflow.testing import consume_topic, wait_until

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def depth(service: str) -> float | None:
    return REGISTRY.get_sample_value("leadflow_outbox_depth", {"service": service})


async def test_depth_is_counted_while_the_broker_is_away_and_zero_once_published(
    settings_for: Any, isolation: Any
) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()  # migrates; no relay of its own
    try:
        lead = new_id()
        async with kit.unit_of_work() as uow:
            for i in range(5):
                await uow.append(lead, ConsentChanged(marketing_opt_in=True, source=str(i)))
    finally:
        await kit.stop()

    service = f"depth-{uuid.uuid4().hex[:8]}"

    def relay(bootstrap: str) -> OutboxRelay:
        return OutboxRelay(
            database_url=kit.settings.database_url,
            schema=kit.schema,
            bootstrap_servers=bootstrap,
            service=service,
            poll_seconds=0.2,
        )

    away = relay("127.0.0.1:9")  # nothing listens there
    task = asyncio.create_task(away.run())
    try:
        await wait_until(lambda: depth(service) == 5, message="5 rows waiting, counted")
    finally:
        away.stop()
        await task

    present = relay(isolation.kafka_bootstrap)
    task = asyncio.create_task(present.run())
    try:
        events = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("scoring"),
            until=lambda evs: len(evs) >= 5,
            timeout=60,
        )
        assert [e.stream_version for e in events] == [1, 2, 3, 4, 5]
        await wait_until(lambda: depth(service) == 0, message="depth back to zero")
    finally:
        present.stop()
        await task
