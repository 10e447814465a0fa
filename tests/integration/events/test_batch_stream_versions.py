"""A consumer batch reads its leads' stream versions with the inbox claim (one round trip),
and appends from them: versions stay contiguous, and a writer that appends to one of those
leads in between makes the batch retry, not fork the stream."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from leadflow.events.catalogue.intake import ActivityRecorded, ConsentChanged
from leadflow.events.catalogue.scoring import LeadScored
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.uow import UnitOfWork
from leadflow.testing import StatementLog, produce_events, wait_until

from .probe import MIGRATIONS, ProbeSettings, activity

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def scored(seq: int) -> LeadScored:
    return LeadScored(
        fit=seq, engagement=0, grade="B", engagement_level=2, matrix_cell="B2", model_version=1
    )


async def versions(kit: ServiceKit) -> dict[uuid.UUID, list[int]]:
    async with kit.connect() as conn:
        rows = await conn.fetch(
            "SELECT lead_id, stream_version FROM event_log ORDER BY lead_id, stream_version"
        )
        out: dict[uuid.UUID, list[int]] = {}
        for lead, version in rows:
            out.setdefault(lead, []).append(version)
        return out


async def test_a_batch_appends_from_the_versions_read_with_its_inbox_claim(
    settings_for: Any, isolation: Any
) -> None:
    interrupted: set[uuid.UUID] = set()
    kit: ServiceKit

    async def handler(env: Envelope, uow: UnitOfWork) -> None:
        payload = env.payload
        assert isinstance(payload, ActivityRecorded)
        seq = int(payload.properties["seq"])
        if payload.activity_type == "interrupt" and env.event_id not in interrupted:
            # Another writer appends to this lead after the claim read its version.
            interrupted.add(env.event_id)
            async with kit.unit_of_work() as other:
                await other.append(env.lead_id, ConsentChanged(marketing_opt_in=True))
        await uow.append(env.lead_id, scored(seq))
        await uow.flush()  # a second flush in the same batch goes on from the first
        await uow.append(env.lead_id, scored(seq))

    kit = ServiceKit(
        settings_for(ProbeSettings),
        consumes=["intake"],
        handlers={ActivityRecorded: handler},
        migrations_dir=MIGRATIONS,
    )
    await kit.start()
    log = StatementLog(kit.db).__enter__()
    statements = log.statements
    try:
        old, new, raced = new_id(), new_id(), new_id()
        for lead in (old, raced):  # streams with history before the batch
            async with kit.unit_of_work() as uow:
                await uow.append(lead, [ConsentChanged(marketing_opt_in=True)] * 2)
        statements.clear()  # those appends read their versions: the API path still does
        records = [activity(old, 1), activity(new, 2), activity(old, 3), activity(new, 4)]
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), records)
        expected = {old: list(range(1, 7)), new: list(range(1, 5)), raced: [1, 2]}
        assert await wait_until(
            lambda: _when_equal(versions(kit), expected), message="the batch's events"
        )
        reads = [s for s in statements if "max(stream_version)" in s and "inbox" not in s]
        assert reads == []  # no separate version read: it came with the inbox claim

        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("intake"), [activity(raced, 5, "interrupt")]
        )
        # 2 before, 1 by the other writer, then the retried batch's 2 on top of it
        expected[raced] = [1, 2, 3, 4, 5]
        assert await wait_until(
            lambda: _when_equal(versions(kit), expected), message="the raced batch's retry"
        )
        assert interrupted  # the race really happened
    finally:
        log.__exit__(None, None, None)
        await kit.stop()


async def _when_equal(got_coro: Any, expected: dict[uuid.UUID, list[int]]) -> bool:
    return await got_coro == expected
