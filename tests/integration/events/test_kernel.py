"""The kernel's delivery guarantees, proven against a real Kafka broker and a real Postgres."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from leadflow.events.catalogue.intake import ConsentChanged
from leadflow.events.clock import ManualClock
from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.envelope import new_id
from leadflow.events.errors import ConcurrencyError
from leadflow.events.uow import UnitOfWork
from leadflow.testing import (
    consume_records,
    consume_topic,
    produce_events,
    produce_raw,
    topic_retention_ms,
    wait_until,
)

from .probe import MIGRATIONS, ProbeSettings, activity, make_kit, process_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]


async def effects(kit: Any) -> list[tuple[uuid.UUID, int]]:
    async with kit.connect() as conn:
        rows = await conn.fetch("SELECT event_id, seq FROM effects WHERE seq >= 0 ORDER BY id")
        return [(r[0], r[1]) for r in rows]


async def test_duplicate_delivery_applies_once(settings_for, isolation) -> None:
    kit = make_kit(settings_for(ProbeSettings))
    await kit.start()
    try:
        lead = new_id()
        event = activity(lead, 1)
        topic = isolation.topic("intake")
        await produce_events(isolation.kafka_bootstrap, topic, [event, event])
        await produce_events(isolation.kafka_bootstrap, topic, [event, activity(lead, 2)])
        rows = await wait_until(lambda: _at_least(effects(kit), 2), message="two effects")
        assert [seq for _, seq in rows] == [1, 2]
        # the duplicates were skipped, not merely late: nothing more arrives
        out = await consume_topic(
            isolation.kafka_bootstrap, isolation.topic("scoring"), until=lambda evs: len(evs) >= 2
        )
        assert len(await effects(kit)) == 2
        assert len(out) == 2
        assert out[0].causation_id == event.event_id
        assert out[0].correlation_id == event.correlation_id
    finally:
        await kit.stop()


async def test_every_consumed_record_is_counted_by_topic_and_event_type(
    settings_for, isolation
) -> None:
    """A batch updates its metrics once per kind of record (the lookups cost more than the
    updates): still one count and one latency sample per record, duplicates included."""
    kit = make_kit(settings_for(ProbeSettings))
    topic = isolation.topic("intake")
    labels = {"service": "scoring", "topic": topic, "event_type": "activity.recorded"}

    def consumed() -> float:
        return REGISTRY.get_sample_value("leadflow_events_consumed_total", labels) or 0.0

    def latency_samples() -> float:
        return (
            REGISTRY.get_sample_value(
                "leadflow_handler_seconds_count",
                {"service": "scoring", "event_type": "activity.recorded"},
            )
            or 0.0
        )

    consumed_before, samples_before = consumed(), latency_samples()
    await kit.start()
    try:
        lead = new_id()
        first = activity(lead, 1)
        await produce_events(
            isolation.kafka_bootstrap, topic, [first, activity(lead, 2), first, activity(lead, 3)]
        )
        await wait_until(lambda: consumed() - consumed_before >= 4, message="4 records counted")
        await wait_until(lambda: _at_least(effects(kit), 3), message="three effects")
        assert consumed() - consumed_before == 4
        assert latency_samples() - samples_before == 4
        assert len(await effects(kit)) == 3  # the duplicate was counted, not applied
    finally:
        await kit.stop()


async def _at_least(rows_coro: Any, n: int) -> Any:
    rows = await rows_coro
    return rows if len(rows) >= n else None


async def test_poison_record_goes_to_dlq_and_partition_keeps_moving(
    settings_for, isolation
) -> None:
    kit = make_kit(settings_for(ProbeSettings, max_attempts=2))
    await kit.start()
    try:
        lead = new_id()
        topic = isolation.topic("intake")
        await produce_raw(
            isolation.kafka_bootstrap, topic, [(str(lead).encode(), b"{not json", [])]
        )
        poison = activity(lead, 2, kind="poison")
        await produce_events(
            isolation.kafka_bootstrap,
            topic,
            [activity(lead, 1), poison, activity(lead, 3, "flaky")],
        )
        rows = await wait_until(lambda: _at_least(effects(kit), 2), message="good records handled")
        assert sorted(seq for _, seq in rows) == [1, 3]
        dead = await consume_records(
            isolation.kafka_bootstrap, f"{topic}.dlq", until=lambda r: len(r) >= 2
        )
        assert len(dead) == 2
        headers = [dict(r.headers) for r in dead]
        assert all(h["dlq.original_topic"] == topic.encode() for h in headers)
        errors = sorted(h["dlq.error"].decode() for h in headers)
        assert errors[0].startswith("DecodeError") and "not JSON" in errors[0]
        assert errors[1].startswith("ValueError")
        assert dead[1].value == poison.to_json()
    finally:
        await kit.stop()


async def test_concurrent_appends_at_same_version_one_wins(settings_for, isolation) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        lead = new_id()
        async with kit.unit_of_work() as uow:
            await uow.append(lead, ConsentChanged(marketing_opt_in=True))
        barrier = asyncio.Barrier(2)

        async def writer() -> str:
            try:
                async with kit.unit_of_work() as uow:
                    seen = await uow.stream_version(lead)
                    await barrier.wait()  # both have read version 1 before either writes
                    await uow.append(
                        lead, ConsentChanged(marketing_opt_in=False), expected_version=seen
                    )
                return "ok"
            except ConcurrencyError:
                return "conflict"

        results = await asyncio.gather(writer(), writer())
        assert sorted(results) == ["conflict", "ok"]
        async with kit.connect() as conn:
            stream = await kit.store.read_stream(conn, lead)
        assert [e.stream_version for e in stream] == [1, 2]
    finally:
        await kit.stop()


async def test_a_new_stream_appended_at_expected_version_0_is_refused_if_it_exists(
    settings_for, isolation
) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        lead = new_id()
        async with kit.unit_of_work() as uow:  # a new stream: written without reading it
            await uow.append(
                lead,
                [ConsentChanged(marketing_opt_in=True), ConsentChanged(marketing_opt_in=False)],
                expected_version=0,
            )
        with pytest.raises(ConcurrencyError):  # "new" again: its version 1 exists
            async with kit.unit_of_work() as uow:
                await uow.append(lead, ConsentChanged(marketing_opt_in=True), expected_version=0)
        async with kit.connect() as conn:
            stream = await kit.store.read_stream(conn, lead)
        assert [e.stream_version for e in stream] == [1, 2]
        assert [e.payload.marketing_opt_in for e in stream] == [True, False]  # type: ignore[attr-defined]
    finally:
        await kit.stop()


async def test_rebuilt_projection_equals_incremental(settings_for, isolation) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        leads = [new_id() for _ in range(7)]
        for i in range(60):
            async with kit.unit_of_work() as uow:
                await uow.append(leads[i % 7], ConsentChanged(marketing_opt_in=i % 2 == 0))
        from leadflow.events.projection import ProjectionRunner

        runner = ProjectionRunner(
            kit.db,
            kit.projections,
            kit.store.read_all,
            kit.store.head_position,
            service="probe",
            batch=7,
        )
        while await runner.step("lead_counts", 7):
            pass
        incremental = await _counts(kit)
        assert sum(incremental.values()) == 60 and len(incremental) == 7
        progress = await runner.rebuild("lead_counts")
        assert progress.state == "done" and progress.processed == 60 and progress.total > 0
        assert await _counts(kit) == incremental
    finally:
        await kit.stop()


async def _counts(kit: Any) -> dict[uuid.UUID, int]:
    async with kit.connect() as conn:
        return {r[0]: r[1] for r in await conn.fetch("SELECT lead_id, n FROM lead_counts")}


async def test_timer_scheduled_before_restart_fires_once_after(settings_for, isolation) -> None:
    clock = ManualClock()
    settings = settings_for(ProbeSettings, run_consumers=False)
    lead = new_id()
    kit = make_kit(settings, clock)
    await kit.start()
    async with kit.unit_of_work() as uow:
        await uow.timers.schedule("probe:1", clock.now().replace(hour=17), "probe", {"x": 1}, lead)
    await kit.stop()

    clock.advance(clock.now().replace(hour=18) - clock.now())
    first, second = make_kit(settings, clock), make_kit(settings, clock)
    await first.start()
    await second.start()
    try:
        from leadflow.events.timer_runner import TimerRunner

        runners = [
            TimerRunner(k.db, k.timer_handlers, clock, k._make_uow, service="probe")
            for k in (first, second)
        ]
        fired = await asyncio.gather(*(r.run_due() for r in runners))
        assert sum(fired) == 1
        assert sum(await asyncio.gather(*(r.run_due() for r in runners))) == 0
        async with first.connect() as conn:
            n = await conn.fetchval("SELECT count(*) FROM effects WHERE seq = -1")
            left = await conn.fetchval("SELECT count(*) FROM timers")
        assert (n, left) == (1, 0)
    finally:
        await first.stop()
        await second.stop()


async def test_timers_scheduled_and_cancelled_in_bulk_upsert_by_key(settings_for) -> None:
    from leadflow.events.timers import Timer

    clock = ManualClock()
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False), clock)
    await kit.start()
    lead, now = new_id(), clock.now()
    try:
        async with kit.unit_of_work() as uow:
            await uow.timers.schedule("t:a", now, "probe", {"v": 0}, lead)
        async with kit.unit_of_work() as uow:
            await uow.timers.schedule_many(
                [
                    Timer("t:a", "probe", now.replace(hour=9), {"v": 1}, lead),  # moves t:a
                    Timer("t:b", "probe", now.replace(hour=10), {"v": 2}, lead),
                    Timer("t:b", "probe", now.replace(hour=11), {"v": 3}, lead),  # last wins
                    Timer("t:c", "other", now.replace(hour=12)),
                ]
            )
        async with kit.connect() as conn:
            rows = await conn.fetch("SELECT key, kind, due_at, payload FROM timers ORDER BY key")
        assert [(r[0], r[1], r[2].hour, r[3]) for r in rows] == [
            ("t:a", "probe", 9, {"v": 1}),
            ("t:b", "probe", 11, {"v": 3}),
            ("t:c", "other", 12, {}),
        ]
        async with kit.unit_of_work() as uow:
            assert await uow.timers.cancel_many(["t:a", "t:c", "t:unknown"]) == 2
            assert await uow.timers.cancel("t:b") is True
            assert await uow.timers.cancel("t:b") is False
            assert await uow.timers.cancel_many([]) == 0
    finally:
        await kit.stop()


async def test_events_wait_in_outbox_while_kafka_is_down(
    settings_for, isolation, private_kafka
) -> None:
    settings = settings_for(ProbeSettings, kafka_bootstrap_servers=private_kafka.bootstrap)
    kit = make_kit(settings)
    await kit.start()
    try:
        lead = new_id()
        private_kafka.stop()
        for i in range(40):
            async with kit.unit_of_work() as uow:
                await uow.append(lead, ConsentChanged(marketing_opt_in=True, source=str(i)))
        async with kit.connect() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 40
        await asyncio.to_thread(private_kafka.start)
        events = await consume_topic(
            private_kafka.bootstrap,
            isolation.topic("scoring"),
            until=lambda evs: len(evs) >= 40,
            timeout=90,
        )
        assert [e.payload.source for e in events] == [str(i) for i in range(40)]  # type: ignore[attr-defined]
        assert [e.stream_version for e in events] == list(range(1, 41))
        async with kit.connect() as conn:
            await wait_until(lambda: _outbox_empty(kit), message="outbox drained")
    finally:
        await kit.stop()


async def test_a_service_creates_its_topics_with_the_configured_retention(
    settings_for, isolation
) -> None:
    """Events carry personal fields in clear: the topics a service creates bound how long
    they stay on the broker (LEADFLOW_TOPIC_RETENTION_HOURS)."""
    kit = make_kit(settings_for(ProbeSettings, topic_retention_hours=2))
    await kit.start()
    try:
        topics = kit.topics()
        assert topics
        retention = await topic_retention_ms(kit.settings.kafka_bootstrap_servers, topics)
        assert retention == dict.fromkeys(topics, str(2 * 3_600_000))
    finally:
        await kit.stop()


async def _outbox_empty(kit: Any) -> bool:
    async with kit.connect() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_consumer_killed_mid_batch_applies_every_event_once(settings_for, isolation) -> None:
    settings = settings_for(ProbeSettings, consumer_batch_size=50)
    await upgrade_async(settings.database_url, settings.schema_name, MIGRATIONS)
    lead_ids = [new_id() for _ in range(20)]
    events = [activity(lead_ids[i % 20], i) for i in range(1500)]
    await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), events)
    env = process_env(settings)
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        count_sql = f'SELECT count(*) FROM "{settings.schema_name}".effects'
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.integration.events.probe", env=env, cwd=ROOT
            )
            try:
                before = await conn.fetchval(count_sql)
                await wait_until(
                    lambda b=before: _grew(conn, count_sql, b + 60),
                    timeout=60,
                    message="consumer made progress",
                )
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.events.probe", env=env, cwd=ROOT
        )
        try:
            await wait_until(
                lambda: _grew(conn, count_sql, 1500), timeout=90, message="all 1500 applied"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
        rows = await conn.fetch(
            f'SELECT event_id, count(*) AS n FROM "{settings.schema_name}".effects GROUP BY event_id'
        )
        assert len(rows) == 1500
        assert all(r["n"] == 1 for r in rows)
    finally:
        await conn.close()


async def _grew(conn: asyncpg.Connection, sql: str, target: int) -> bool:
    return int(await conn.fetchval(sql)) >= target


async def test_unit_of_work_appends_log_and_outbox_atomically(settings_for, isolation) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    lead = new_id()
    try:
        with pytest.raises(RuntimeError):
            async with kit.unit_of_work() as uow:
                await uow.append(lead, ConsentChanged(marketing_opt_in=True))
                await uow.flush()
                raise RuntimeError("the command failed after appending")
        async with kit.connect() as conn:
            assert await conn.fetchval("SELECT count(*) FROM event_log") == 0
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        async with kit.unit_of_work() as uow:
            await uow.append(
                lead,
                [ConsentChanged(marketing_opt_in=True), ConsentChanged(marketing_opt_in=False)],
            )
        async with kit.connect() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 2
        with pytest.raises(Exception, match="append-only"):
            async with kit.transaction() as conn:
                await conn.execute("DELETE FROM event_log")
    finally:
        await kit.stop()


async def test_projection_never_skips_an_append_committed_out_of_order(
    settings_for, isolation
) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        from leadflow.events.projection import ProjectionRunner

        runner = ProjectionRunner(
            kit.db,
            kit.projections,
            kit.store.read_all,
            kit.store.head_position,
            service="probe",
        )
        first_lead, second_lead = new_id(), new_id()
        async with kit.db.transaction() as conn:
            uow = UnitOfWork(conn, kit.store, kit.clock)
            await uow.append(first_lead, ConsentChanged(marketing_opt_in=True))
            await uow.flush()  # holds the lower position, not yet committed

            async def second_writer() -> None:
                async with kit.unit_of_work() as other:
                    await other.append(second_lead, ConsentChanged(marketing_opt_in=True))

            second = asyncio.create_task(second_writer())
            # Give the later writer every chance to commit ahead of the earlier one...
            await asyncio.wait({second}, timeout=1.0)
            # ...while the projection tails the log.
            await runner.step("lead_counts", 100)
        await second
        await runner.catch_up("lead_counts")
        assert await _counts(kit) == {first_lead: 1, second_lead: 1}
    finally:
        await kit.stop()
