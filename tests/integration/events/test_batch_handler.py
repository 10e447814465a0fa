"""The batch handler (``leadflow.events.batch``) against a real Kafka broker and a real
Postgres: the kernel decides a consumer batch in arrival order with each lead's state
threaded through, names each decided event as the cause of what it appends, writes the
timers' last word, sends a bad event to the dead letters alone, and replays a batch that
failed before its commit with the same effects, once. The probe service is
``batch_probe.py``."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from leadflow.events.batch import Decision, run_decision
from leadflow.events.clock import ManualClock
from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.timer_runner import TimerRunner
from leadflow.events.timers import Timer
from leadflow.testing import consume_records, produce_events, wait_until

from .batch_probe import (
    TALLY,
    Tally,
    TallyContext,
    activity,
    add,
    consent,
    make_batch_kit,
    scored,
    timer_key,
)
from .probe import MIGRATIONS, ProbeSettings, process_env

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@asynccontextmanager
async def running(kit: ServiceKit) -> AsyncIterator[ServiceKit]:
    await kit.start()
    try:
        yield kit
    finally:
        await kit.stop()


async def tallies(kit: ServiceKit) -> dict[uuid.UUID, tuple[int, list[int]]]:
    async with kit.connect() as conn:
        rows = await conn.fetch("SELECT lead_id, n, seqs FROM tallies")
        return {r.lead_id: (r.n, list(r.seqs)) for r in rows}


async def counted(kit: ServiceKit, n: int) -> dict[uuid.UUID, tuple[int, list[int]]] | None:
    found = await tallies(kit)
    return found if sum(t[0] for t in found.values()) >= n else None


async def stream(kit: ServiceKit, lead: uuid.UUID) -> list[Envelope]:
    async with kit.connect() as conn:
        return await kit.store.read_stream(conn, lead)


async def timers(kit: ServiceKit) -> dict[str, Timer]:
    async with kit.connect() as conn:
        rows = await conn.fetch("SELECT key, kind, due_at, payload, lead_id FROM timers")
        return {r.key: Timer(r.key, r.kind, r.due_at, r.payload, r.lead_id) for r in rows}


def of_grade(events: list[Envelope], grade: str) -> list[Any]:
    return [e for e in events if e.payload.grade == grade]  # type: ignore[attr-defined]


async def test_a_batch_is_decided_in_arrival_order_with_each_event_as_the_cause(
    settings_for, isolation
) -> None:
    kit, probe = make_batch_kit(settings_for(ProbeSettings))
    a, b = new_id(), new_id()
    sent = [
        activity(a, 1),
        activity(b, 2),
        activity(a, 3),
        activity(b, 4, "stop"),
        activity(a, 5),
    ]
    async with running(kit):
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), sent)
        found = await wait_until(lambda: counted(kit, 5), message="five activities decided")
        assert found == {a: (3, [1, 3, 5]), b: (2, [2, 4])}
        assert sum(probe.tally.batches) == 5  # every event decided once, none twice

        events = await stream(kit, a)
        decided = of_grade(events, "B")
        # one per activity, in order, each seeing the count its lead's earlier events left
        assert [(e.payload.fit, e.payload.engagement) for e in decided] == [(1, 1), (3, 2), (5, 3)]
        assert [e.causation_id for e in decided] == [
            sent[0].event_id,
            sent[2].event_id,
            sent[4].event_id,
        ]
        assert [e.correlation_id for e in decided] == [
            sent[0].correlation_id,
            sent[2].correlation_id,
            sent[4].correlation_id,
        ]
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
        # save knew the ids of the events the decisions appended (``appended``)
        assert probe.tally.saved_appended[a] == [e.event_id for e in decided]
        # the batch-level events (save's ``Appended``): caused by the lead's last event of
        # its batch, carrying the count that event left
        engagement_by_cause = {e.causation_id: e.payload.engagement for e in decided}
        summaries = of_grade(events, "A+")
        assert summaries
        for summary in summaries:
            assert summary.payload.fit == engagement_by_cause[summary.causation_id]
        assert summaries[-1].payload.fit == 3

        # b's activity 4 stopped the timer its activity 2 had started; a's last one moved it
        due = await timers(kit)
        assert list(due) == [timer_key(a)]
        assert (due[timer_key(a)].kind, due[timer_key(a)].payload) == (TALLY, {"seq": 5})
        assert of_grade(await stream(kit, b), "B")[0].causation_id == sent[1].event_id


async def test_a_poison_event_goes_to_the_dlq_alone_and_the_rest_of_its_batch_is_applied(
    settings_for, isolation
) -> None:
    kit, _ = make_batch_kit(settings_for(ProbeSettings, max_attempts=2))
    a, b = new_id(), new_id()
    poison = activity(a, 2, "poison")
    sent = [activity(a, 1), poison, activity(a, 3), activity(b, 4)]
    topic = isolation.topic("intake")
    async with running(kit):
        await produce_events(isolation.kafka_bootstrap, topic, sent)
        found = await wait_until(lambda: counted(kit, 3), message="the good activities")
        assert found == {a: (2, [1, 3]), b: (1, [4])}
        dead = await consume_records(
            isolation.kafka_bootstrap, f"{topic}.dlq", until=lambda r: len(r) >= 1
        )
        assert [r.value for r in dead] == [poison.to_json()]
        assert dict(dead[0].headers)["dlq.error"].decode().startswith("ValueError")
        # the failed attempts left nothing behind: one event per good activity
        decided = of_grade(await stream(kit, a), "B")
        assert [(e.payload.fit, e.causation_id) for e in decided] == [
            (1, sent[0].event_id),
            (3, sent[2].event_id),
        ]


async def test_a_batch_that_fails_before_its_commit_is_replayed_with_the_same_effects_once(
    settings_for, isolation
) -> None:
    kit, probe = make_batch_kit(settings_for(ProbeSettings))
    probe.tally.crash_saves = 1  # the first batch's save: the connection is lost
    leads = [new_id() for _ in range(3)]
    sent = [activity(leads[i % 3], i) for i in range(12)]
    async with running(kit):
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), sent)
        found = await wait_until(lambda: counted(kit, 12), message="all twelve decided")
        assert probe.tally.crash_saves == 0  # it did fail once
        assert sum(probe.tally.batches) > 12  # and was decided again
        assert found == {
            lead: (4, [i for i in range(12) if i % 3 == n]) for n, lead in enumerate(leads)
        }
        causes: Counter[uuid.UUID | None] = Counter()
        for lead in leads:
            decided = of_grade(await stream(kit, lead), "B")
            assert [e.payload.engagement for e in decided] == [1, 2, 3, 4]
            causes.update(e.causation_id for e in decided)
        assert causes == Counter(e.event_id for e in sent)  # each caused one event, once
        due = await timers(kit)
        assert {key: t.payload for key, t in due.items()} == {
            timer_key(lead): {"seq": 9 + n} for n, lead in enumerate(leads)
        }


async def test_a_per_event_handler_after_flush_batches_sees_the_earlier_events(
    settings_for, isolation
) -> None:
    kit, _ = make_batch_kit(settings_for(ProbeSettings))
    lead = new_id()
    asked = consent(lead)
    sent = [activity(lead, 1), activity(lead, 2), asked, activity(lead, 3)]
    async with running(kit):
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), sent)
        await wait_until(lambda: counted(kit, 3), message="three activities decided")
        async with kit.connect() as conn:
            seen = await conn.fetchval(
                "SELECT seq FROM effects WHERE event_id = :e", e=asked.event_id
            )
        assert seen == 2


async def test_commands_and_timers_run_one_decision_through_the_same_path(
    settings_for, isolation
) -> None:
    clock = ManualClock()
    kit, probe = make_batch_kit(settings_for(ProbeSettings, run_consumers=False), clock)
    lead = new_id()
    due = clock.now() + timedelta(minutes=5)

    def command(state: Tally | None, ctx: TallyContext) -> Decision[Tally]:
        assert ctx.now == clock.now()
        return Decision(
            state=add(state, 7),
            events=[scored(7)],
            schedule=[Timer(timer_key(lead), TALLY, due, {"seq": 7}, lead)],
        )

    async with running(kit):
        async with kit.unit_of_work() as uow:
            decision = await run_decision(uow, probe.tally, lead, command)
            assert decision.state == Tally(1, (7,))
            assert uow.timers.soonest == due  # the kit wakes the runner for it
        assert await tallies(kit) == {lead: (1, [7])}
        events = await stream(kit, lead)
        assert [(e.payload.grade, e.payload.fit, e.causation_id) for e in events] == [  # type: ignore[attr-defined]
            ("B", 7, None),
            ("A+", 1, None),
        ]
        assert list(await timers(kit)) == [timer_key(lead)]

        clock.advance(timedelta(minutes=6))
        runner = TimerRunner(kit.db, kit.timer_handlers, clock, kit._make_uow, service="probe")
        assert await runner.run_due() == 1
        assert await tallies(kit) == {lead: (2, [7, 100])}
        assert await timers(kit) == {}

        decided = activity(lead, 9)
        async with kit.unit_of_work() as uow:
            await run_decision(uow, probe.tally, lead, event=decided)
        assert await tallies(kit) == {lead: (3, [7, 100, 9])}
        last = (await stream(kit, lead))[-2:]
        assert [(e.payload.grade, e.payload.fit) for e in last] == [("B", 9), ("A+", 3)]  # type: ignore[attr-defined]
        assert {e.causation_id for e in last} == {decided.event_id}


async def test_a_consumer_killed_mid_batch_replays_with_the_same_effects_once(
    settings_for, isolation
) -> None:
    """The probe as a process, SIGKILLed twice while it works through 600 activities: what
    a killed batch had decided is rolled back with it and decided again after the restart,
    so every activity is decided once, in order, and caused exactly one event."""
    settings = settings_for(ProbeSettings, consumer_batch_size=50)
    await upgrade_async(settings.database_url, settings.schema_name, MIGRATIONS)
    leads = [new_id() for _ in range(10)]
    sent = [activity(leads[i % 10], i) for i in range(600)]
    await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), sent)
    env = process_env(settings)
    schema = settings.schema_name
    conn = await asyncpg.connect(plain_url(settings.database_url))

    async def decided() -> int:
        return int(await conn.fetchval(f'SELECT coalesce(sum(n), 0) FROM "{schema}".tallies'))

    def probe() -> Awaitable[asyncio.subprocess.Process]:
        return asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.events.batch_probe", env=env, cwd=ROOT
        )

    try:
        for _ in range(2):
            proc = await probe()
            try:
                target = await decided() + 50

                async def progressed(target: int = target) -> bool:
                    return await decided() >= target

                await wait_until(progressed, timeout=90, message="the probe made progress")
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        proc = await probe()
        try:
            await wait_until(lambda: _at_least(decided(), 600), timeout=120, message="all 600")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
        rows = await conn.fetch(f'SELECT lead_id, n, seqs FROM "{schema}".tallies')
        assert {r["lead_id"]: (r["n"], list(r["seqs"])) for r in rows} == {
            lead: (60, list(range(n, 600, 10))) for n, lead in enumerate(leads)
        }
        causes = await conn.fetch(
            f"SELECT metadata->>'causation_id' AS cause, count(*) AS n "
            f"FROM \"{schema}\".event_log WHERE payload->>'grade' = 'B' GROUP BY 1"
        )
        assert {r["cause"] for r in causes} == {str(e.event_id) for e in sent}
        assert all(r["n"] == 1 for r in causes)
    finally:
        await conn.close()


async def _at_least(value: Awaitable[int], target: int) -> bool:
    return await value >= target
