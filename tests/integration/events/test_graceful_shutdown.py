"""SIGTERM to a consumer process under load: it finishes and commits the batch in flight,
leaves within the grace period, and after a restart no event is applied twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.envelope import new_id
from leadflow.testing import produce_events, wait_until

from .probe import MIGRATIONS, ProbeSettings, activity

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]
TOTAL = 3000
GRACE = 15.0


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def test_sigterm_mid_load_commits_the_batch_and_leaves_nothing_twice(
    settings_for, isolation
) -> None:
    settings = settings_for(ProbeSettings, consumer_batch_size=50)
    await upgrade_async(settings.database_url, settings.schema_name, MIGRATIONS)
    leads = [new_id() for _ in range(30)]
    events = [activity(leads[i % 30], i) for i in range(TOTAL)]
    topic = isolation.topic("intake")
    await produce_events(isolation.kafka_bootstrap, topic, events)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LEADFLOW_DB_SCHEMA": settings.schema_name,
        "LEADFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "LEADFLOW_CONSUMER_BATCH_SIZE": "50",
        "LEADFLOW_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    group = f"{settings.topic_prefix}leadflow.scoring"
    count_sql = f'SELECT count(*) FROM "{settings.schema_name}".effects WHERE seq >= 0'
    conn = await asyncpg.connect(plain_url(settings.database_url))

    async def applied() -> int:
        return int(await conn.fetchval(count_sql))

    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.events.probe", env=env, cwd=ROOT
        )
        try:
            await wait_until(
                lambda: _at_least(applied(), 300), timeout=90, message="consumer under load"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            at_signal = await applied()
            returncode = await asyncio.wait_for(proc.wait(), timeout=GRACE + 30)
            took = time.monotonic() - signalled
        assert at_signal < TOTAL, "the load was over before SIGTERM; nothing was in flight"
        assert returncode == 0
        assert took < GRACE, f"left after {took:.1f}s, grace is {GRACE}s"
        # Every applied effect's record is committed and nothing uncommitted was applied:
        # the batch in flight at SIGTERM was finished and its offsets committed.
        after_stop = await applied()
        assert after_stop >= at_signal
        assert await committed_total(isolation.kafka_bootstrap, group, topic) == after_stop

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.events.probe", env=env, cwd=ROOT
        )
        try:
            await wait_until(
                lambda: _at_least(applied(), TOTAL), timeout=120, message="all applied"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=GRACE + 30) == 0
        rows = await conn.fetch(
            f'SELECT event_id, count(*) AS n FROM "{settings.schema_name}".effects '
            "WHERE seq >= 0 GROUP BY event_id"
        )
        assert len(rows) == TOTAL
        assert {r["event_id"] for r in rows} == {e.event_id for e in events}
        assert all(r["n"] == 1 for r in rows)
        assert await committed_total(isolation.kafka_bootstrap, group, topic) == TOTAL
    finally:
        await conn.close()


async def _at_least(value: object, n: int) -> bool:
    assert asyncio.iscoroutine(value)
    return int(await value) >= n
