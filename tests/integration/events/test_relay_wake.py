"""Who wakes the outbox relay. Postgres delivers every NOTIFY to every listening session of
the database (each service's relay), whatever the channel, so a process that runs its
service's active relay wakes it itself after committing events, without a NOTIFY; a
process without it (an API-only replica) still sends one. The relays here poll only every
60 s: events published within the test's deadline were woken, not polled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from leadflow.events.catalogue.intake import ConsentChanged
from leadflow.events.db import plain_url
from leadflow.events.envelope import new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.outbox import notify_channel
from leadflow.events.timers import Timer
from leadflow.events.uow import UnitOfWork
from leadflow.testing import consume_topic, produce_events, wait_until

from .probe import ProbeSettings, activity, make_kit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
# A poll far beyond every wait below: what is published in time was woken, not polled.
NO_POLL = {"outbox_poll_seconds": 600.0}


class Notifications:
    """What a session LISTENing on the relay's channel receives."""

    def __init__(self, conn: asyncpg.Connection, channel: str) -> None:
        self.conn, self.channel = conn, channel
        self.payloads: list[str] = []

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(payload)

    async def all_so_far(self, database_url: str) -> list[str]:
        """Everything sent before now: a sentinel NOTIFY from another session arrives after
        every notification committed before it (delivery follows commit order)."""
        other = await asyncpg.connect(plain_url(database_url))
        try:
            await other.execute("SELECT pg_notify($1, 'sentinel')", self.channel)
        finally:
            await other.close()
        await wait_until(lambda: "sentinel" in self.payloads, message="the sentinel NOTIFY")
        return self.payloads[: self.payloads.index("sentinel")]


@asynccontextmanager
async def listening(kit: ServiceKit) -> AsyncIterator[Notifications]:
    conn = await asyncpg.connect(plain_url(kit.settings.database_url))
    notes = Notifications(conn, notify_channel(kit.schema))
    await conn.add_listener(notes.channel, notes._received)
    try:
        yield notes
    finally:
        await conn.close()


@asynccontextmanager
async def running(kit: ServiceKit) -> AsyncIterator[ServiceKit]:
    await kit.start()
    try:
        yield kit
    finally:
        await kit.stop()


@asynccontextmanager
async def kit_with_its_relay(settings_for: Any) -> AsyncIterator[tuple[ServiceKit, Notifications]]:
    """A probe kit whose relay holds its lock (so runs in this process), and a listener."""
    async with running(make_kit(settings_for(ProbeSettings, **NO_POLL))) as kit:
        assert kit.relay is not None
        await wait_until(kit.relay.active.is_set, message="the relay holds its lock")
        async with listening(kit) as notes:
            yield kit, notes


async def test_an_api_command_wakes_the_relay_in_its_process_without_notify(
    settings_for: Any, isolation: Any
) -> None:
    async with kit_with_its_relay(settings_for) as (kit, notes):
        lead = new_id()
        for i in range(3):
            async with kit.unit_of_work() as uow:
                await uow.append(lead, ConsentChanged(marketing_opt_in=True, source=str(i)))
        events = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("scoring"),
            until=lambda evs: len(evs) >= 3,
            timeout=60,
        )
        assert [e.stream_version for e in events] == [1, 2, 3]
        assert await notes.all_so_far(isolation.database_url) == []


async def test_a_consumer_batch_wakes_the_relay_in_its_process_without_notify(
    settings_for: Any, isolation: Any
) -> None:
    async with kit_with_its_relay(settings_for) as (_kit, notes):
        cause = activity(new_id(), 1)
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), [cause])
        [effect] = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("scoring"),
            until=lambda evs: len(evs) >= 1,
            timeout=60,
        )
        assert effect.causation_id == cause.event_id
        assert await notes.all_so_far(isolation.database_url) == []


async def append_on_timer(timer: Timer, uow: UnitOfWork) -> None:
    assert timer.lead_id is not None
    await uow.append(timer.lead_id, ConsentChanged(marketing_opt_in=True, source="timer"))


async def test_a_fired_timer_wakes_the_relay_in_its_process_without_notify(
    settings_for: Any, isolation: Any
) -> None:
    kit = make_kit(settings_for(ProbeSettings, **NO_POLL))
    kit.timer_handlers["append"] = append_on_timer
    async with running(kit):
        assert kit.relay is not None
        await wait_until(kit.relay.active.is_set, message="the relay holds its lock")
        async with listening(kit) as notes:
            lead = new_id()
            async with kit.unit_of_work() as uow:  # schedules only: nothing to publish
                await uow.timers.schedule("append:1", kit.clock.now(), "append", {}, lead)
            [event] = await consume_topic(
                isolation.kafka_bootstrap,
                isolation.topic("scoring"),
                until=lambda evs: len(evs) >= 1,
                timeout=60,
            )
            assert event.lead_id == lead and event.payload.source == "timer"  # type: ignore[attr-defined]
            assert await notes.all_so_far(isolation.database_url) == []


async def test_a_process_without_the_relay_notifies_the_one_that_has_it(
    settings_for: Any, isolation: Any
) -> None:
    relay_kit = make_kit(settings_for(ProbeSettings, **NO_POLL))
    api_kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    async with running(relay_kit), running(api_kit):
        assert relay_kit.relay is not None and api_kit.relay is None
        await wait_until(relay_kit.relay.active.is_set, message="the relay holds its lock")
        async with listening(api_kit) as notes:
            async with api_kit.unit_of_work() as uow:
                await uow.append(new_id(), ConsentChanged(marketing_opt_in=False))
            [event] = await consume_topic(
                isolation.kafka_bootstrap,
                isolation.topic("scoring"),
                until=lambda evs: len(evs) >= 1,
                timeout=60,
            )
            assert event.payload.marketing_opt_in is False  # type: ignore[attr-defined]
            assert await notes.all_so_far(isolation.database_url) == [""]
