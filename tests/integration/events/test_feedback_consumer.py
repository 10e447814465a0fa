"""Feedback topics get a consumer of their own. A service names the producers whose events
do not move a lead along the funnel (scoring hears back from routing, routing from
sla-monitor); a second member of the service's consumer group reads them, letting the broker
gather a batch, so feedback costs one transaction per batch and never holds up the next
lead. Same group: its offsets, inbox and dead-letter attribution stay the service's own,
and a service upgraded to the split carries on where its single consumer stopped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.metrics import DUPLICATES_SKIPPED
from leadflow.events.uow import UnitOfWork
from leadflow.testing import produce_events, wait_until

from .probe import MIGRATIONS, ProbeSettings, _write_effects, activity, on_activity

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def on_assigned(event: Envelope, uow: UnitOfWork) -> None:
    """An effect row per assignment, written at the flush like the probe's activities."""
    uow.batch(on_assigned, list, partial(_write_effects, uow)).append(
        (event.event_id, event.lead_id, -2)
    )


def feedback_kit(settings: ProbeSettings, feedback: tuple[str, ...]) -> ServiceKit:
    return ServiceKit(
        settings,
        consumes=["intake", "routing"],
        feedback=feedback,
        handlers={ActivityRecorded: on_activity, LeadAssigned: on_assigned},
        migrations_dir=MIGRATIONS,
    )


@asynccontextmanager
async def running(kit: ServiceKit) -> AsyncIterator[ServiceKit]:
    await kit.start()
    try:
        runners = [r for r in (kit.consumer, kit.feedback_consumer) if r is not None]
        await wait_until(
            lambda: all(r._consumer is not None and r._consumer.assignment() for r in runners),
            timeout=60,
            message="every consumer of the kit has its partitions",
        )
        yield kit
    finally:
        await kit.stop()


def assigned(lead_id: uuid.UUID, n: int) -> Envelope:
    return Envelope.new(
        LeadAssigned(assignee_kind="rep", rep_id=f"rep-{n}", method="round_robin"),
        lead_id=lead_id,
    )


async def effects(kit: ServiceKit, seq: int) -> int:
    async with kit.connect() as conn:
        found = await conn.fetchval("SELECT count(*) FROM effects WHERE seq = :s", s=seq)
    return int(found or 0)


def test_feedback_must_be_among_the_consumed_producers(settings_for: Any) -> None:
    with pytest.raises(ValueError, match="feedback"):
        ServiceKit(settings_for(ProbeSettings), consumes=["intake"], feedback=["routing"])


async def test_feedback_is_read_by_a_second_member_of_the_group_in_gathered_batches(
    settings_for: Any, isolation: Any
) -> None:
    settings = settings_for(
        ProbeSettings, feedback_fetch_max_wait_ms=2_000, feedback_fetch_min_bytes=1_048_576
    )
    kit = feedback_kit(settings, ("routing",))
    async with running(kit):
        lead_moving, feedback = kit.consumer, kit.feedback_consumer
        assert lead_moving is not None and feedback is not None
        assert lead_moving.topics == [isolation.topic("intake")]
        assert feedback.topics == [isolation.topic("routing")]
        assert lead_moving.group_id == feedback.group_id == kit.consumer_group

        # Twenty assignments, each its own acknowledged produce request (each a broker write
        # that would answer a waiting fetch at once), then an activity that moves a lead on.
        lead = new_id()
        producer = AIOKafkaProducer(bootstrap_servers=isolation.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for event in [assigned(lead, n) for n in range(20)]:
                await producer.send_and_wait(
                    isolation.topic("routing"),
                    value=event.to_json(),
                    key=event.record_key(),
                    headers=event.record_headers(),
                )
        finally:
            await producer.stop()
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("intake"), [activity(lead, 7)]
        )

        await wait_until(lambda: feedback.processed == 20, timeout=90, message="20 assignments")
        await wait_until(lambda: lead_moving.processed == 1, timeout=90, message="the activity")
        assert await effects(kit, -2) == 20 and await effects(kit, 7) == 1
        # Gathered by the broker: far fewer transactions than events.
        assert feedback.batches <= 4, f"{feedback.batches} batches for 20 feedback events"
        assert lead_moving.batches == 1


async def test_a_service_upgraded_to_the_split_carries_on_from_its_groups_offsets(
    settings_for: Any, isolation: Any
) -> None:
    lead = new_id()
    before = [assigned(lead, n) for n in range(5)]
    async with running(feedback_kit(settings_for(ProbeSettings), ())) as single:
        only = single.consumer
        assert single.feedback_consumer is None and only is not None
        await produce_events(isolation.kafka_bootstrap, isolation.topic("routing"), before)
        await wait_until(lambda: only.processed == 5, timeout=90, message="5 events")

    skipped = DUPLICATES_SKIPPED.labels("scoring")._value.get()
    async with running(feedback_kit(settings_for(ProbeSettings), ("routing",))) as split:
        feedback = split.feedback_consumer
        assert feedback is not None
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("routing"), [assigned(lead, 9)]
        )
        await wait_until(lambda: feedback.processed == 1, timeout=90, message="the new event")
        assert await effects(split, -2) == 6
        # Nothing redelivered: the new member started at the group's committed offsets.
        assert DUPLICATES_SKIPPED.labels("scoring")._value.get() == skipped
