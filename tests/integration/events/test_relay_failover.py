"""Two replicas of one service share its outbox: one relay holds the advisory lock and
publishes, the other waits as a hot standby and takes over when the first goes away.
``outbox_leader`` names the session that holds the lock (``<service>-outbox <host>:<pid>``),
which is how an operator, and the cluster test across processes, sees the lock move."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from leadflow.events.envelope import topic_for
from leadflow.events.outbox import outbox_leader
from leadflow.testing import consume_topic, produce_events, wait_until

from .probe import ProbeSettings, activity, make_kit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_standby_relay_takes_over_and_publishes_when_the_active_one_stops(
    settings_for,
    isolation,
) -> None:
    first = make_kit(settings_for(ProbeSettings))
    second = make_kit(settings_for(ProbeSettings))
    await first.start()
    try:
        assert first.relay is not None
        await wait_until(first.relay.active.is_set, message="the first relay holds the lock")
        await second.start()
        assert second.relay is not None
        leader = await outbox_leader(isolation.database_url, first.schema)
        assert leader == f"scoring-outbox {socket.gethostname()}:{os.getpid()}"
        # the standby waits while the lock is held
        assert not second.relay.active.is_set()
    finally:
        await first.stop()
    try:
        await wait_until(
            second.relay.active.is_set, timeout=60, message="the standby relay took the lock"
        )
        assert await outbox_leader(isolation.database_url, second.schema) is not None
        # what the second replica now appends is published by its relay
        lead = uuid.uuid4()
        await produce_events(
            isolation.kafka_bootstrap,
            topic_for("intake", isolation.topic_prefix),
            [activity(lead, 7)],
        )
        scored = await consume_topic(
            isolation.kafka_bootstrap,
            topic_for("scoring", isolation.topic_prefix),
            until=lambda events: any(e.lead_id == lead for e in events),
        )
        assert [e.event_type for e in scored if e.lead_id == lead] == ["lead.scored"]
        assert second.relay.published >= 1
    finally:
        await second.stop()
    assert await outbox_leader(isolation.database_url, second.schema) is None
