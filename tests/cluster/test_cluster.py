"""Scale-out, proven: a three-node Kafka cluster, two replicas of every service, failover.

The platform (``harness``): three KRaft nodes, each controller and broker (a quorum of three
survives one loss; a lone controller would not, and a fourth JVM costs a small machine too
much), topics of 6 partitions with replication 3 and ``min.insync.replicas`` 2 created by
the services themselves from ``LEADFLOW_TOPIC_*``; two replicas of intake, scoring,
routing, sla-monitor, analytics and notify, each pair in one consumer group; intake and
analytics on separate Postgres servers. A client posts sales-ready inquiries round-robin to
the two intakes, retrying with its Idempotency-Key, while the test

1. SIGKILLs node 1 — it leads a third of every topic's partitions (maybe the active
   controller too), and it is in rack-a, the ``client.rack`` of every service's first
   replica, so their rack-aware fetching must fail over and come back (a consumer of
   aiokafka 0.14 wedged there until the kernel learnt to restart a consumer whose
   partition stalls: ``consumer.stalled_partitions``);
2. SIGKILLs one replica of every service: for each service with an outbox, the one whose
   relay holds the lock, so the relay must fail over (the lock's session names its pid:
   the standby's takes it); the consumer groups rebalance onto the survivors;
3. starts the broker and the replicas again.

Then it checks what the platform promises: every accepted inquiry took effect exactly once
in every service (captured once in analytics, which holds every event produced once;
qualified once; assigned once with one ``lead.assigned``; SLA facts once; one assignment
message per lead, each e-mail delivered under its message id); no partition of any
consumer group sat with records waiting and its committed offset still for more than
``STALL_BOUND`` seconds; and every group's lag drained within ``DRAIN_BOUND`` seconds of the
load's end.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from leadflow.devstack.cluster import describe_topics, partition_leaders
from leadflow.devstack.mailcatcher import MailCatcher, start_smtp
from leadflow.testing import topic_config, wait_until
from leadflow.testing.platform import LoadDriver

from .harness import PRODUCERS, SERVICES, ClusterPlatform, configure, launch
from .lag import LagWatch, group_members

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

RATE = 8.0  # inquiries per second, all sales-ready: modest, a 2-core machine runs it all
STALL_BOUND = 60.0  # seconds a partition may sit with lag and its committed offset unmoved
DRAIN_BOUND = 120.0  # seconds after the load stops for every group's lag to reach zero
ANALYTICS_READS = ("intake", "scoring", "routing", "sla-monitor")
GROUPS = [f"leadflow.{s}" for s in ("scoring", "routing", "sla-monitor", "analytics", "notify")]


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[tuple[ClusterPlatform, MailCatcher]]:
    mail = MailCatcher()
    smtp = await start_smtp(mail)
    started = time.monotonic()
    p = await asyncio.to_thread(launch, smtp.sockets[0].getsockname()[1])
    log(
        f"3 Kafka nodes, 2 Postgres, 12 service processes ready in {time.monotonic() - started:.0f}s"
    )
    try:
        await asyncio.to_thread(configure, p)
        yield p, mail
    finally:
        await asyncio.to_thread(p.close)
        smtp.close()
        if p.passed:  # ~250 MB of broker and database state; a failure keeps it to read
            shutil.rmtree(p.home, ignore_errors=True)
        else:
            log(f"state and logs kept under {p.home}")


async def progress(driver: LoadDriver, more: int, timeout: float = 120) -> None:
    target = len(driver.accepted) + more
    await wait_until(
        lambda: len(driver.accepted) >= target, timeout=timeout, message=f"{more} more accepted"
    )


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_cluster_survives_a_broker_and_a_replica_of_every_service_exactly_once(
    platform: tuple[ClusterPlatform, MailCatcher],
) -> None:
    p, mail = platform
    await _check_topics(p)
    watch = LagWatch(p.bootstrap, partitions=6)
    stop = asyncio.Event()
    intakes = [r.url for r in p.of("intake")]
    async with LoadDriver(intakes, p.api_key, retry_for=240, connections=16) as driver:
        load = asyncio.create_task(driver.drive(RATE, 3600, stop=stop))
        try:
            await progress(driver, 40)
            watch.start()
            cpu_before, accepted_before = p.cpu_seconds(), len(driver.accepted)
            await progress(driver, 60)
            cpu = _cpu_per_lead(cpu_before, p.cpu_seconds(), len(driver.accepted) - accepted_before)
            members = await group_members(p.bootstrap, GROUPS)
            assert all(m[1] in (2, 4) for m in members.values()), members  # 1-2 roles x 2
            # 1. a broker leading partitions goes, without a word: the one in rack-a, where
            # the first replica of every service fetches from (client.rack) when it follows
            topic = "leadflow.intake"
            victim = p.kafka.node(1)
            leaders = await partition_leaders(p.bootstrap, [topic])
            led = min(part for (_t, part), node in leaders.items() if node == victim.node_id)
            log(f"SIGKILL Kafka node {victim.node_id} (rack-a, leads {topic}[{led}])")
            await asyncio.to_thread(victim.kill)
            await wait_until(
                lambda: _led_elsewhere(p, topic, led, victim.node_id),
                timeout=60,
                interval=1.0,
                message=f"{topic}[{led}] led by another node",
            )
            await progress(driver, 40)
            # 2. one replica of every service: the relay's lock holder where there is one
            holders = {s: await p.relay_holder(s) for s in PRODUCERS}
            assert all(holders.values()), f"a service without an active relay: {holders}"
            killed = [holders[s] or p.of(s)[0] for s in PRODUCERS] + [p.of("analytics")[0]]
            for replica in killed:
                log(f"SIGKILL {replica.name} (pid {p.pid(replica)})")
                await asyncio.to_thread(p.kill_replica, replica)
            for service in PRODUCERS:
                survivor = next(r for r in p.of(service) if r is not holders[service])
                await wait_until(
                    lambda s=service, r=survivor: _holds(p, s, r),
                    timeout=90,
                    interval=0.5,
                    message=f"{service}'s relay lock taken by {survivor.name}",
                )
                log(f"{service}: relay lock moved to {survivor.name}")
            # the groups drop the dead members (session timeout) and rebalance: the survivors
            # own every partition, and leads go all the way through them
            await wait_until(
                lambda: _rebalanced(p, members),
                timeout=60,
                interval=1.0,
                message="every consumer group down to its surviving replica",
            )
            assigned = await _assigned(p)
            await wait_until(
                lambda: _assigned_more(p, assigned + 30),
                timeout=90,
                interval=1.0,
                message="30 more leads assigned by the surviving replicas",
            )
            log("groups rebalanced onto the survivors; leads flow through them")
            # 3. everything back
            log(f"starting Kafka node {victim.node_id} and {len(killed)} replicas again")
            await asyncio.to_thread(victim.start)
            for replica in killed:
                p.start_replica(replica)
            await asyncio.to_thread(p.wait_ready, killed)
            await progress(driver, 40)
        finally:
            stop.set()
            await load
        log("load stopped; waiting for the last retries")
    accepted = driver.accepted
    ended = time.monotonic()
    log(f"{len(driver.sent)} sent, {len(accepted)} accepted; draining")
    await wait_until(
        lambda: _caught_up(p), timeout=DRAIN_BOUND, interval=1.0, message="all groups drained"
    )
    log(f"drained {time.monotonic() - ended:.0f}s after the load's end")
    await watch.stop()
    key, stalled = watch.longest()
    log(f"longest partition stall {stalled:.1f}s ({key}); {watch.samples} samples")
    log("CPU ms per lead in steady state: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    assert watch.samples >= 30, "the lag watch hardly sampled"
    assert stalled <= STALL_BOUND, f"{key} stalled {stalled:.0f}s > {STALL_BOUND:.0f}s"
    assert len(accepted) >= 220
    assert len({s.inquiry_id for s in accepted}) == len(accepted)
    leads = [s.lead_id for s in accepted]
    await _report_sizes(p, len(accepted))
    await _check_analytics(p, accepted)
    await _check_scoring_and_routing(p, leads)
    await _check_sla(p)
    await _check_notify(p, mail, leads)
    p.passed = True


async def _check_topics(p: ClusterPlatform) -> None:
    """The services created their topics as configured: 6 partitions, 3 replicas, min ISR 2."""
    topics = [f"leadflow.{s}" for s in ("intake", "scoring", "routing", "sla", "notify")]
    described = await describe_topics(p.bootstrap, topics)
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(topics, 6)
    assert {len(part["replicas"]) for t in described for part in t["partitions"]} == {3}
    assert await topic_config(p.bootstrap, topics, "min.insync.replicas") == dict.fromkeys(
        topics, "2"
    )


async def _led_elsewhere(p: ClusterPlatform, topic: str, partition: int, node_id: int) -> bool:
    try:
        leader = (await partition_leaders(p.bootstrap, [topic]))[(topic, partition)]
        return leader not in (node_id, -1)
    except Exception:
        return False


async def _rebalanced(p: ClusterPlatform, before: dict[str, tuple[str, int]]) -> bool:
    try:
        now = await group_members(p.bootstrap, GROUPS)
    except Exception:
        return False
    return all(now[g] == ("Stable", n // 2) for g, (_state, n) in before.items())


async def _assigned(p: ClusterPlatform) -> int:
    rows = await fetch(p.database_of("routing"), "SELECT count(*) FROM routing.assignments")
    return int(rows[0][0])


async def _assigned_more(p: ClusterPlatform, target: int) -> bool:
    return await _assigned(p) >= target


async def _holds(p: ClusterPlatform, service: str, replica: Any) -> bool:
    try:
        return await p.relay_holder(service) is replica
    except Exception:
        return False


async def _caught_up(p: ClusterPlatform) -> bool:
    from leadflow.testing.platform import group_lags

    try:
        lags = await group_lags(p.bootstrap)
        if len(lags) < 5 or any(lags.values()):
            return False
        for name, _module, schema, _offset, _server in SERVICES:
            if name in PRODUCERS:
                rows = await fetch(p.database_of(name), f'SELECT count(*) FROM "{schema}".outbox')
                if rows[0][0]:
                    return False
        return True
    except Exception:
        return False


def _cpu_per_lead(
    before: dict[str, float], after: dict[str, float], leads: int
) -> dict[str, float]:
    """CPU-ms per accepted lead of each service (both replicas) over a steady window."""
    return {s: (after[s] - before.get(s, 0.0)) * 1000 / max(leads, 1) for s in after}


async def _report_sizes(p: ClusterPlatform, leads: int) -> None:
    """For docs/capacity.md: events and bytes each service stores per lead, and the size of
    a record on the broker (the envelope as analytics logged it)."""
    for name, _module, schema, _offset, _server in SERVICES:
        rows = await fetch(
            p.database_of(name),
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
            "AND c.relkind IN ('r', 'm')",
            schema,
        )
        events = 0
        if name in PRODUCERS:
            events = (await fetch(p.database_of(name), f"SELECT count(*) FROM {schema}.event_log"))[
                0
            ][0]
        log(
            f"size: {name} {rows[0][0] / leads / 1024:.1f} KiB/lead, {events / leads:.2f} events/lead"
        )
    avg = await fetch(
        p.database_of("analytics"),
        "SELECT avg(octet_length(payload::text) + octet_length(metadata::text)) "
        "FROM analytics.lead_event_log",
    )
    log(f"size: an event's payload + metadata averages {float(avg[0][0]):.0f} bytes")


async def _check_analytics(p: ClusterPlatform, accepted: list[Any]) -> None:
    analytics = p.database_of("analytics")
    rows = await fetch(
        analytics,
        "SELECT payload->>'inquiry_id' AS inquiry_id, count(*) AS n FROM analytics.lead_event_log "
        "WHERE event_type IN ('lead.captured', 'inquiry.received') GROUP BY 1",
    )
    logged = {r["inquiry_id"]: r["n"] for r in rows}
    missing = [s.inquiry_id for s in accepted if s.inquiry_id not in logged]
    assert not missing, f"{len(missing)} accepted inquiries not in analytics: {missing[:5]}"
    assert not {k: n for k, n in logged.items() if n != 1}
    # every event the producers stored reached analytics' log once, from both servers
    produced = 0
    for service in ANALYTICS_READS:
        schema = next(s[2] for s in SERVICES if s[0] == service)
        produced += (
            await fetch(p.database_of(service), f"SELECT count(*) FROM {schema}.event_log")
        )[0][0]
    in_log = (await fetch(analytics, "SELECT count(*) FROM analytics.lead_event_log"))[0][0]
    log(f"analytics: {len(logged)} inquiries; {produced} events produced, {in_log} in its log")
    assert produced == in_log


async def _check_scoring_and_routing(p: ClusterPlatform, leads: list[Any]) -> None:
    scoring, routing = p.database_of("scoring"), p.database_of("routing")
    qualified = Counter(
        r["lead_id"]
        for r in await fetch(
            scoring, "SELECT lead_id FROM scoring.event_log WHERE event_type = 'lead.qualified'"
        )
    )
    assert {str(k) for k in qualified} >= {str(x) for x in leads}, "an accepted lead not qualified"
    assert set(qualified.values()) == {1}, "a lead qualified twice"
    for service, db in (("scoring", scoring), ("routing", routing)):
        # one consumed event, one decision per lead: no (cause, event type, lead) twice (one
        # cause may fan out over leads: an account qualifying tells each of its leads)
        twice = await fetch(
            db,
            "SELECT metadata->>'causation_id' AS cause, event_type, lead_id, count(*) "
            f"FROM {service}.event_log WHERE metadata->>'causation_id' IS NOT NULL "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1",
        )
        assert not twice, f"{service} decided twice on one event: {[dict(r) for r in twice[:5]]}"
    assignments = {
        r["lead_id"]: r["n"]
        for r in await fetch(
            routing, "SELECT lead_id, count(*) AS n FROM routing.assignments GROUP BY 1"
        )
    }
    assigned = Counter(
        r["lead_id"]
        for r in await fetch(
            routing, "SELECT lead_id FROM routing.event_log WHERE event_type = 'lead.assigned'"
        )
    )
    log(f"routing: {len(qualified)} qualified, {sum(assignments.values())} assignments")
    assert not [lead for lead in qualified if assignments.get(lead) != 1]
    assert not [lead for lead in qualified if assigned.get(lead) != 1]


async def _check_sla(p: ClusterPlatform) -> None:
    rows = await fetch(
        p.database_of("sla-monitor"),
        "SELECT event_type, payload->>'sla_id' AS sla_id, payload->>'step' AS step, count(*) AS n "
        "FROM sla.event_log WHERE event_type IN ('sla.started', 'sla.warning', 'sla.breached', "
        "'sla.escalation_raised') GROUP BY 1, 2, 3",
    )
    kinds = Counter(r["event_type"] for r in rows)
    log(f"sla: {dict(kinds)}")
    assert kinds["sla.started"] >= 220
    assert not [dict(r) for r in rows if r["n"] != 1], "an SLA fact recorded twice"


async def _check_notify(p: ClusterPlatform, mail: MailCatcher, leads: list[Any]) -> None:
    rows = await fetch(
        p.database_of("notify"),
        "SELECT message_id, lead_id, caused_event_id, recipient, status FROM notify.notify_messages "
        "WHERE kind = 'assignment'",
    )
    per_cause = Counter((r["caused_event_id"], r["recipient"]) for r in rows)
    per_lead = Counter(str(r["lead_id"]) for r in rows)
    log(f"notify: {len(rows)} assignment messages, {len(mail.messages)} e-mails received")
    assert set(per_cause.values()) == {1}, "one assignment announced twice"
    assert [lead for lead in leads if per_lead.get(str(lead)) != 1] == []
    await wait_until(
        lambda: _all_sent(p), timeout=60, interval=1.0, message="every assignment e-mail sent"
    )
    sent = {r["message_id"] for r in rows}
    received = Counter(str(m.message.get("Message-ID", "")) for m in mail.messages)
    delivered = {mid for mid in sent if any(mid in header for header in received)}
    assert delivered == sent, f"{len(sent - delivered)} assignment e-mails never arrived"


async def _all_sent(p: ClusterPlatform) -> bool:
    rows = await fetch(
        p.database_of("notify"),
        "SELECT count(*) FROM notify.notify_messages WHERE kind = 'assignment' AND status <> 'sent'",
    )
    return rows[0][0] == 0
