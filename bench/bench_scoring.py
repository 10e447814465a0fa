"""Scoring throughput: intake events scored end to end vs raw consume+produce, in one run.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``; e.g. ``set -a; . /work/helpers/infra.env; set +a``)::

    uv run python bench/bench_scoring.py --events 5000

The workload is N intake events: per lead one ``LeadCaptured`` and four ``ActivityRecorded``
(demo request, webinar, download, email click — each moves the score, so every input yields
exactly one ``lead.scored``). The baseline reads the same N records from a topic with aiokafka
and writes one record per input to another topic (no database). The scoring leg feeds them
to ``leadflow.intake`` of a scoring app (consumer batch -> profile/activity upsert -> score ->
event log + outbox -> relay) and waits until N ``lead.scored`` are on ``leadflow.scoring``.

Measured on the shared 2-core machine (load average 6-9), ``--events 3000``, each pair run
back to back: before the batch path (every event: upsert, activity insert, activity read,
timer writes, row update — 4-6 round trips) 47-83 events/s, ratio 0.058-0.099; with the
batch path (a handful of set-based statements per consumer batch) 189-229 events/s, ratio
0.20-0.25. What is left is CPU: rule evaluation and event serialisation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    Contact,
    LeadCaptured,
    QualificationAnswers,
)
from leadflow.events.envelope import Envelope, new_id, topic_for
from leadflow.scoring.app import create_app
from leadflow.scoring.settings import ScoringSettings
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

TITLES = ["VP Sales", "Director of IT", "Marketing Manager", "Engineer", "CEO", "Analyst"]
INDUSTRIES = ["Software", "Retail", "Financial Services", "Healthcare", "Education"]
SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
ACTIVITIES = ["demo_request", "webinar_attended", "content_download", "email_click"]


def workload(n_events: int, rng: random.Random) -> list[Envelope]:
    # Recent activity: the service scores at the system clock, and old points have decayed.
    start = datetime.now(UTC) - timedelta(days=3)
    out: list[Envelope] = []
    for _ in range(max(1, n_events // 5)):
        lead_id = new_id()
        at = start + timedelta(minutes=rng.randrange(0, 60 * 24))
        captured = LeadCaptured(
            inquiry_id=uuid.uuid4(),
            capture_method=rng.choice(["web_form", "badge_scan", "import", "api"]),
            contact=Contact(
                title=rng.choice(TITLES),
                department=rng.choice(["Marketing", "Sales", "IT", "Finance"]),
                industry=rng.choice(INDUSTRIES),
                company=f"Company {rng.randrange(5000)}",
                country=rng.choice(["US", "DE", "GB", "IN", "FR"]),
            ),
            answers=QualificationAnswers(
                company_size=rng.choice(SIZES),
                timeframe=rng.choice([None, "this quarter", "next year"]),
            ),
            email_domain=f"c{rng.randrange(5000)}.example",
        )
        out.append(Envelope.new(captured, lead_id=lead_id, occurred_at=at))
        for kind in ACTIVITIES:
            at += timedelta(minutes=rng.randrange(1, 240))
            payload = ActivityRecorded(activity_id=uuid.uuid4().hex, activity_type=kind)
            out.append(Envelope.new(payload, lead_id=lead_id, occurred_at=at))
    return out


async def scoring_leg(
    bootstrap: str, database_url: str, prefix: str, schema: str, events: list[Envelope]
) -> float:
    settings = bench_settings(ScoringSettings, bootstrap, database_url, prefix, schema)
    app = create_app(settings)
    async with app_client(app), topic_reader(bootstrap, topic_for("scoring", prefix)) as out:
        # Warm-up (not timed): the consumer has joined its group and the relay publishes.
        await produce_events(
            bootstrap, topic_for("intake", prefix), workload(1, random.Random(1))[:1]
        )
        await count_records(out, 1, event_type="lead.scored")
        started = time.perf_counter()
        await produce_events(bootstrap, topic_for("intake", prefix), events)
        await count_records(out, len(events), event_type="lead.scored")
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    bootstrap, database_url = bench_infra()
    token = uuid.uuid4().hex[:8]
    prefix, schema = scratch_prefix(token), f"bench_scoring_{token}"
    events = workload(args.events, random.Random(args.seed))
    try:
        raw = await raw_baseline(bootstrap, prefix, events)
        scored = await scoring_leg(bootstrap, database_url, prefix, schema, events)
    finally:
        await drop_schema(database_url, schema)
        await delete_quietly(bootstrap, [prefix])
    n = len(events)
    print(f"intake events={n} ({n // 5} leads x captured + 4 activities)")
    print(f"raw consume+produce : {n / raw:9.1f} records/s ({raw:.2f} s)")
    print(f"scoring end to end  : {n / scored:9.1f} events/s ({scored:.2f} s)")
    print(f"ratio scoring/raw   : {raw / scored:9.3f}")


if __name__ == "__main__":
    asyncio.run(main())
