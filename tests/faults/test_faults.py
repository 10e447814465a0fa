"""Fault suite: the whole platform under steady load while its machines fail underneath.

One private platform (its own Kafka, Postgres and five service processes on free ports,
state under a temporary directory — this test kills them, so it never touches shared
infrastructure). While a client posts sales-ready inquiries at a steady rate (retrying
with its Idempotency-Key, as a careful client does), the test in turn:

(a) SIGKILLs each service's process group and starts it again;
(b) stops Kafka and starts it again;
(c) stops Postgres and starts it again;
(d) re-produces records already published on ``leadflow.*`` (duplicate deliveries) and
    produces poison records (not JSON, JSON that is no envelope, an unknown event type).

Then, once every consumer group has caught up, it checks the platform's promises:
every accepted inquiry (202) is in analytics' log exactly once; every qualified lead has
exactly one assignment (one owner or queue) and one ``lead.assigned``; no SLA warning,
breach or escalation step happened twice (the SLA policy is 30 seconds, so timers fire
during the faults); the DLQ topics hold exactly the poison records, once per consumer
group reading that topic.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.testing import consume_records, wait_until
from leadflow.testing.platform import (
    LoadDriver,
    Platform,
    configure_platform,
    group_lags,
    launch_platform,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1200)]

RATE = 15.0  # inquiries per second, all sales-ready (modest: a 2-core machine)
SERVICES = ["intake", "scoring", "routing", "sla-monitor", "analytics"]
TOPICS = ["leadflow.intake", "leadflow.scoring", "leadflow.routing", "leadflow.sla"]
SLA_MINUTES = 0.5


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    home = Path(tempfile.mkdtemp(prefix="leadflow-faults-"))
    log(f"launching a private platform under {home}")
    p = await asyncio.to_thread(launch_platform, home)
    try:
        await asyncio.to_thread(configure_platform, p, sla_minutes=SLA_MINUTES)
        yield p
    finally:
        await asyncio.to_thread(p.close)


async def progress(driver: LoadDriver, more: int, timeout: float = 90) -> None:
    """Wait until ``more`` further inquiries were accepted: the platform is serving."""
    target = len(driver.accepted) + more
    await wait_until(
        lambda: len(driver.accepted) >= target,
        timeout=timeout,
        message=f"{more} more accepted inquiries",
    )


async def fetch_all(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def caught_up(p: Platform) -> bool:
    """Every consumer group at the end of its topics and every outbox empty."""
    try:
        lags = await group_lags(p.bootstrap)
        if len(lags) < 4 or any(lags.values()):
            return False
        conn = await asyncpg.connect(p.database_url)
        try:
            for schema in ("intake", "scoring", "routing", "sla", "analytics"):
                exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox")
                if exists and await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox"):
                    return False
        finally:
            await conn.close()
        return True
    except Exception:
        return False


async def inject(p: Platform) -> dict[str, list[bytes]]:
    """Duplicates of published records, and poison records; returns the poison per topic."""
    producer = AIOKafkaProducer(bootstrap_servers=p.bootstrap, acks="all")
    await producer.start()
    poison: dict[str, list[bytes]] = {}
    try:
        for topic in TOPICS:
            records = await consume_records(
                p.bootstrap, topic, until=lambda rs: len(rs) >= 50, timeout=60
            )
            # duplicate deliveries: the same records again, byte for byte
            for r in records[:200]:
                await producer.send(topic, r.value, key=r.key, headers=list(r.headers or ()))
            sample = orjson.loads(records[0].value)
            unknown = {**sample, "event_id": str(uuid.uuid4()), "event_type": "lead.teleported"}
            bad = [
                (None, b"\x00\xffnot json at all " + uuid.uuid4().bytes),
                (None, orjson.dumps({"hello": "world", "n": uuid.uuid4().hex})),
                (records[0].key, orjson.dumps(unknown)),
            ]
            poison[topic] = [v for _k, v in bad]
            for key, value in bad:
                await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return poison


async def subscribed_groups(p: Platform) -> dict[str, set[str]]:
    """topic -> consumer groups that committed offsets on it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=p.bootstrap)
    await admin.start()
    try:
        readers: dict[str, set[str]] = {}
        for group, _ in await admin.list_consumer_groups():
            if not str(group).startswith("leadflow."):
                continue
            for tp in await admin.list_consumer_group_offsets(group):
                readers.setdefault(tp.topic, set()).add(str(group))
        return readers
    finally:
        await admin.close()


async def dlq_records(p: Platform) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=p.bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.endswith(".dlq")]
    finally:
        await admin.close()
    if not topics:
        return []
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=p.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await wait_until(lambda: bool(consumer.assignment()), timeout=90)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        records: list[Any] = []
        deadline = time.monotonic() + 60

        async def behind() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return True
            return False

        while await behind():
            assert time.monotonic() < deadline, "DLQ topics not read within 60 s"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_platform_keeps_its_promises_through_crashes_outages_duplicates_and_poison(
    platform: Platform,
) -> None:
    p = platform
    stop = asyncio.Event()
    async with LoadDriver(p.url("intake"), p.api_key, retry_for=180) as driver:
        load = asyncio.create_task(driver.drive(RATE, 3600, stop=stop))
        try:
            await progress(driver, 50)
            # (a) SIGKILL each service in turn, start it again, and see the platform serve
            for name in SERVICES:
                log(f"SIGKILL {name}")
                await asyncio.to_thread(p.restart_service, name)
                await progress(driver, 25)
            # (b) Kafka away and back: intake keeps accepting (its outbox holds the events)
            log("stopping Kafka")
            await asyncio.to_thread(p.stack.kafka.stop)
            await progress(driver, 25)
            log("starting Kafka")
            await asyncio.to_thread(p.stack.kafka.start)
            await progress(driver, 25)
            # (c) Postgres away and back: requests fail, the client retries, nothing lost
            log("stopping Postgres")
            await asyncio.to_thread(p.stack.postgres.stop)
            refused = driver.failures
            await wait_until(
                lambda: driver.failures >= refused + 10,
                timeout=60,
                message="the load meets the Postgres outage (10 failed attempts)",
            )
            log("starting Postgres")
            await asyncio.to_thread(p.stack.postgres.start)
            await progress(driver, 50, timeout=180)
            # (d) duplicate deliveries and poison records, under load
            log("injecting duplicates and poison")
            poison = await inject(p)
            await progress(driver, 50)
        finally:
            stop.set()
            await load
        log("load stopped; waiting for the last retries")
    accepted = driver.accepted
    log(f"{len(driver.sent)} inquiries sent, {len(accepted)} accepted; waiting to catch up")
    # the progress checkpoints above add up to 325 accepted inquiries at the least
    assert len(accepted) >= 325
    await wait_until(
        lambda: caught_up(p),
        timeout=600,  # correctness, not speed: sla-monitor is the slowest consumer
        interval=2.0,
        message="all consumer groups caught up, outboxes empty",
    )
    # nobody accepts, so every clock runs its course (warning, breach, reminder) within
    # SLA_MINUTES of its start: wait until the last timers fired, then for the last events
    await wait_until(
        lambda: _no_timers_left(p),
        timeout=SLA_MINUTES * 60 + 300,
        interval=1.0,
        message="every SLA timer fired",
    )
    await wait_until(lambda: caught_up(p), timeout=300, interval=2.0, message="caught up")
    await _check_analytics(p, accepted)
    await _check_routing(p)
    await _check_sla(p)
    await _check_dlq(p, poison)


async def _no_timers_left(p: Platform) -> bool:
    rows = await fetch_all(p.database_url, "SELECT count(*) AS n FROM sla.timers")
    return rows[0]["n"] == 0


async def _check_analytics(p: Platform, accepted: list[Any]) -> None:
    rows = await fetch_all(
        p.database_url,
        "SELECT payload->>'inquiry_id' AS inquiry_id, count(*) AS n "
        "FROM analytics.lead_event_log "
        "WHERE event_type IN ('lead.captured', 'inquiry.received') GROUP BY 1",
    )
    logged = {r["inquiry_id"]: r["n"] for r in rows}
    missing = [s.inquiry_id for s in accepted if s.inquiry_id not in logged]
    twice = {k: n for k, n in logged.items() if n != 1}
    assert not missing, f"{len(missing)} accepted inquiries not in analytics: {missing[:5]}"
    assert not twice, f"inquiries logged more than once: {list(twice.items())[:5]}"
    # one inquiry id per idempotency key, whatever the retries across the crashes
    assert len({s.inquiry_id for s in accepted}) == len(accepted)
    # analytics holds every event the producers published, once
    counts = await fetch_all(
        p.database_url,
        "SELECT (SELECT count(*) FROM intake.event_log) + (SELECT count(*) FROM scoring.event_log)"
        " + (SELECT count(*) FROM routing.event_log) + (SELECT count(*) FROM sla.event_log) AS "
        "produced, (SELECT count(*) FROM analytics.lead_event_log) AS logged",
    )
    log(
        f"analytics: {len(logged)} inquiries; events produced {counts[0]['produced']}, "
        f"in analytics {counts[0]['logged']}"
    )
    assert counts[0]["produced"] == counts[0]["logged"]


async def _check_routing(p: Platform) -> None:
    qualified = {
        r["lead_id"]
        for r in await fetch_all(
            p.database_url,
            "SELECT DISTINCT lead_id FROM scoring.event_log WHERE event_type = 'lead.qualified'",
        )
    }
    assert len(qualified) >= 300, f"only {len(qualified)} leads qualified"
    assignments = await fetch_all(
        p.database_url, "SELECT lead_id, count(*) AS n FROM routing.assignments GROUP BY 1"
    )
    per_lead = {r["lead_id"]: r["n"] for r in assignments}
    assigned_events = Counter(
        r["lead_id"]
        for r in await fetch_all(
            p.database_url,
            "SELECT lead_id FROM routing.event_log WHERE event_type = 'lead.assigned'",
        )
    )
    owners = await fetch_all(
        p.database_url,
        "SELECT lead_id, assignee_kind, rep_id, queue_id FROM routing.leads "
        "WHERE lead_id = ANY($1::uuid[])",
        list(qualified),
    )
    unplaced = [
        r["lead_id"]
        for r in owners
        if not (
            (r["assignee_kind"] == "rep" and r["rep_id"] and not r["queue_id"])
            or (r["assignee_kind"] == "queue" and r["queue_id"])
        )
    ]
    log(f"routing: {len(qualified)} qualified leads, {sum(per_lead.values())} assignments")
    assert not [lead for lead in qualified if per_lead.get(lead) != 1]
    assert not [lead for lead in qualified if assigned_events.get(lead) != 1]
    assert len(owners) == len(qualified)
    assert not unplaced, f"leads without exactly one owner or queue: {unplaced[:5]}"


async def _check_sla(p: Platform) -> None:
    rows = await fetch_all(
        p.database_url,
        "SELECT event_type, payload->>'sla_id' AS sla_id, payload->>'step' AS step, "
        "count(*) AS n FROM sla.event_log "
        "WHERE event_type IN ('sla.started', 'sla.warning', 'sla.breached', "
        "'sla.escalation_raised') GROUP BY 1, 2, 3",
    )
    twice = [dict(r) for r in rows if r["n"] != 1]
    kinds = Counter(r["event_type"] for r in rows)
    fired = await fetch_all(p.database_url, "SELECT count(*) AS n FROM sla.fired_timers")
    log(f"sla: {dict(kinds)}; {fired[0]['n']} timers fired")
    assert not twice, f"SLA facts recorded twice: {twice[:5]}"
    # one clock per assignment (>= 300 qualified leads, see _check_routing); nobody accepts,
    # so every clock breached, whichever fault it lived through
    assert kinds["sla.started"] >= 300
    assert kinds["sla.breached"] == kinds["sla.started"]
    # a breach or warning per started clock at most, and none without its clock
    started = {r["sla_id"] for r in rows if r["event_type"] == "sla.started"}
    assert {r["sla_id"] for r in rows} <= started


async def _check_dlq(p: Platform, poison: dict[str, list[bytes]]) -> None:
    readers = await subscribed_groups(p)
    expected = Counter(
        (topic, value, group)
        for topic, values in poison.items()
        for value in values
        for group in readers.get(topic, set())
    )
    got = Counter()
    for r in await dlq_records(p):
        headers = {k: v.decode() for k, v in (r.headers or ())}
        got[(headers.get("dlq.original_topic"), r.value, headers.get("dlq.consumer_group"))] += 1
    log(
        f"dlq: {sum(got.values())} records, expected {sum(expected.values())} "
        f"({ {t: sorted(g) for t, g in readers.items()} })"
    )
    assert sum(expected.values()) >= len(TOPICS) * 3
    assert got == expected
