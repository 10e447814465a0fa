"""sla-monitor throughput: routing events/s through its consumer vs raw consume+produce.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``; e.g. ``set -a; . /work/helpers/infra.env; set +a``)::

    uv run python bench/bench_sla.py --leads 1000

Both legs run in this process against the same broker, one after the other, so their ratio
is comparable across runs on a noisy shared machine (the absolute numbers are not):

* raw: aiokafka reads the 3N routing records from a topic and writes one record per input
  to another (no database);
* sla: the same 3N records (per lead ``lead.assigned`` → ``lead.accepted`` →
  ``lead.contacted``) go to ``leadflow.routing`` and an sla-monitor app consumes them
  (consumer batch → policies/calendars → clocks, timers → event log + outbox → relay); the
  leg ends when all 5N expected events (3 ``sla.started``, 2 ``sla.met`` per lead) are on
  ``leadflow.sla``.

The clock is a ``ManualClock`` held still, so no timer fires during the consumer leg. Then a
timer leg moves the clock two weeks on and times one ``run_due`` that fires every open
clock's warning and breach (with escalations). Database round trips (statements, BEGIN,
COMMIT, SAVEPOINT, RELEASE) are counted on the app's SQLAlchemy engine (consumer, timers;
the relay has its own connection and is not counted) and reported per consumed event and
per fired timer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned, LeadContacted
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, new_id, topic_for
from leadflow.events.kit import ServiceKit
from leadflow.events.sql import Database
from leadflow.sla_monitor.app import create_app
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client, produce_events

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.baselines import (
    bench_infra,
    bench_settings,
    count_records,
    drop_schema,
    topic_reader,
)
from bench.baselines import raw_consume_produce as raw_baseline
from leadflow.testing.topics import delete_quietly, scratch_prefix

# Monday 2026-03-09 10:00 UTC: inside the default Mon-Fri 09-17 calendar.
START = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
GRADES = ["A+", "A", "B", "C"]
EVENTS_PER_LEAD = 3
SLA_EVENTS_PER_LEAD = 5  # started accept; met accept, started contact, started SAL; met contact


def lead_events(n: int, offset_seconds: int = 0) -> list[Envelope]:
    """Per lead: assigned, accepted 30 min later, contacted 2 h later (all in business hours)."""
    out: list[Envelope] = []
    for i in range(n):
        lead = new_id()
        at = START + timedelta(seconds=offset_seconds + i)
        rep, team = f"rep-{i % 40}", f"team-{i % 8}"
        snap = LeadSnapshot(grade=GRADES[i % 4], region="EMEA", country="DE", channel="web_form")
        out.append(
            Envelope.new(
                LeadAssigned(
                    assignee_kind="rep", rep_id=rep, team_id=team, method="direct", lead=snap
                ),
                lead_id=lead,
                occurred_at=at,
            )
        )
        out.append(
            Envelope.new(
                LeadAccepted(rep_id=rep), lead_id=lead, occurred_at=at + timedelta(minutes=30)
            )
        )
        out.append(
            Envelope.new(
                LeadContacted(rep_id=rep), lead_id=lead, occurred_at=at + timedelta(hours=2)
            )
        )
    return out


class TripCounter:
    """Database round trips issued through one pool (statements and transaction control:
    asyncpg's query logger sees BEGIN, COMMIT and savepoints too). Counts until the
    process ends."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        db.logging_queries(self._hit).__enter__()

    def _hit(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1


async def sla_leg(
    bootstrap: str, database_url: str, prefix: str, schema: str, events: list[Envelope]
) -> dict[str, float]:
    settings = bench_settings(
        SlaSettings,
        bootstrap,
        database_url,
        prefix,
        schema,
        timer_poll_seconds=3600,  # the timer leg calls run_due itself
    )
    clock = ManualClock(START)
    app = create_app(settings, clock=clock)
    async with app_client(app):
        kit: ServiceKit = app.state.kit
        async with topic_reader(bootstrap, topic_for("sla", prefix)) as out:
            # Warm-up (not timed): the consumer joined its group, the relay publishes.
            warm = lead_events(1, offset_seconds=-3600)
            await produce_events(bootstrap, topic_for("routing", prefix), warm)
            await count_records(out, SLA_EVENTS_PER_LEAD)
            trips = TripCounter(kit.db)
            started = time.perf_counter()
            await produce_events(bootstrap, topic_for("routing", prefix), events)
            await count_records(out, len(events) // EVENTS_PER_LEAD * SLA_EVENTS_PER_LEAD)
            consumed_s = time.perf_counter() - started
            consumer_trips = trips.count

        # Timer leg: every SAL-age clock (14 calendar days) warns, breaches and escalates.
        assert kit.timer_runner is not None
        async with kit.connect() as conn:
            due = int(await conn.fetchval("SELECT count(*) FROM timers") or 0)
        clock.set(START + timedelta(days=15))
        trips.count = 0
        started = time.perf_counter()
        fired = await kit.timer_runner.run_due()
        timers_s = time.perf_counter() - started
        timer_trips = trips.count
    return {
        "consumed_s": consumed_s,
        "consumer_trips": float(consumer_trips),
        "timers": float(due),
        "fired": float(fired),
        "timers_s": timers_s,
        "timer_trips": float(timer_trips),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1000)
    args = parser.parse_args()
    bootstrap, database_url = bench_infra()
    token = uuid.uuid4().hex[:8]
    prefix, schema = scratch_prefix(token), f"bench_sla_{token}"
    events = lead_events(args.leads)
    try:
        raw = await raw_baseline(bootstrap, prefix, events)
        leg = await sla_leg(bootstrap, database_url, prefix, schema, events)
    finally:
        await drop_schema(database_url, schema)
        await delete_quietly(bootstrap, [prefix])
    n = len(events)
    sla = leg["consumed_s"]
    print(f"leads={args.leads} routing events={n} sla events out={n // 3 * 5}")
    print(f"raw consume+produce : {n / raw:9.1f} records/s ({raw:.2f} s)")
    print(f"sla-monitor consumer: {n / sla:9.1f} events/s ({sla:.2f} s)")
    print(f"ratio sla/raw       : {raw / sla:9.3f}")
    print(f"db round trips/event: {leg['consumer_trips'] / n:9.2f}")
    fired = max(leg["fired"], 1.0)
    print(
        f"timer sweep         : {leg['fired']:.0f} fired of {leg['timers']:.0f} in "
        f"{leg['timers_s']:.2f} s = {leg['fired'] / leg['timers_s']:.1f} timers/s, "
        f"{leg['timer_trips'] / fired:.2f} db round trips/timer"
    )


if __name__ == "__main__":
    asyncio.run(main())
