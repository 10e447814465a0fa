"""Routing throughput: assignments/s with 200 reps and 50 rules vs raw consume+produce.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``; e.g. ``set -a; . /work/helpers/infra.env; set +a``)::

    uv run python bench/bench_routing.py --leads 2000

Both legs run in this process against the same broker: the baseline reads N records from a
topic and writes one record per input to another (aiokafka, no database); the routing leg
feeds N ``LeadQualified`` events to a routing app (consumer batch -> decision lock -> the
batch's leads decided together in memory -> one write -> event log + outbox -> relay) and
waits until N ``lead.assigned`` are on ``leadflow.routing``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path

import httpx

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import Envelope, new_id, topic_for
from leadflow.routing.app import create_app
from leadflow.routing.settings import RoutingSettings
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

COUNTRIES = ["US", "CA", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "AU", "BR", "JP"]
INDUSTRIES = ["Software", "Retail", "Finance", "Health", "Education", "Manufacturing"]
GRADES = ["A+", "A", "A-", "B+", "B", "B-", "C+", "C"]
AUTH = {"Authorization": "Bearer bench"}
TEAMS = 20
REPS = 200
RULES = 50


def leads(n: int, rng: random.Random) -> list[Envelope]:
    out = []
    for _ in range(n):
        snap = LeadSnapshot(
            country=rng.choice(COUNTRIES),
            industry=rng.choice(INDUSTRIES),
            company_size=rng.randint(1, 20000),
            grade=rng.choice(GRADES),
            channel=rng.choice(["web_form", "badge_scan", "import"]),
        )
        payload = LeadQualified(
            fit=70,
            engagement=50,
            grade=snap.grade or "A",
            matrix_cell="A2",
            model_version=1,
            lead=snap,
        )
        out.append(Envelope.new(payload, lead_id=new_id()))
    return out


async def configure(client: httpx.AsyncClient, rng: random.Random) -> None:
    await client.put("/v1/routing/queues/unassigned", json={}, headers=AUTH)
    for t in range(TEAMS):
        await client.put(f"/v1/routing/queues/q{t}", json={"team_id": f"t{t}"}, headers=AUTH)
    for i in range(REPS):
        team = f"t{i % TEAMS}"
        body = {
            "team_id": team,
            "weight": rng.randint(1, 4),
            "territories": rng.sample(COUNTRIES, 3) if i % 3 == 0 else [],
            "max_open": rng.choice([None, 500, 1000]),
            "max_new_per_day": rng.choice([None, 400]),
            "active": i % 17 != 0,
        }
        r = await client.put(f"/v1/routing/reps/r{i:03d}", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
    for t in range(TEAMS):
        members = [f"r{i:03d}" for i in range(REPS) if i % TEAMS == t]
        await client.put(
            f"/v1/routing/teams/t{t}", json={"members": members, "queue_id": f"q{t}"}, headers=AUTH
        )
    rules = []
    for k in range(RULES - 1):
        when: dict[str, object] = {"country": [COUNTRIES[k % len(COUNTRIES)]]}
        if k % 2:
            when["industry"] = [INDUSTRIES[k % len(INDUSTRIES)]]
        if k % 3 == 0:
            when["grade"] = ["A", "B"]
        if k % 5 == 0:
            when["company_size_min"] = 1000
        strategy = "least_loaded" if k % 4 == 3 else "round_robin"
        rules.append(
            {
                "id": f"rule{k}",
                "when": when,
                "target": {"kind": "team", "team_id": f"t{k % TEAMS}", "strategy": strategy},
            }
        )
    rules.append({"id": "catch-all", "target": {"kind": "team", "team_id": "t0"}})
    r = await client.post("/v1/routing/rules", json={"rules": rules}, headers=AUTH)
    assert r.status_code == 201, r.text


async def routing_leg(
    bootstrap: str,
    database_url: str,
    prefix: str,
    schema: str,
    events: list[Envelope],
    rng: random.Random,
) -> float:
    settings = bench_settings(RoutingSettings, bootstrap, database_url, prefix, schema)
    app = create_app(settings)
    async with (
        app_client(app) as client,
        topic_reader(bootstrap, topic_for("routing", prefix)) as out,
    ):
        await configure(client, rng)
        # Warm-up (not timed): the consumer has joined its group and the relay publishes.
        await produce_events(bootstrap, topic_for("scoring", prefix), leads(1, rng))
        await count_records(out, 1, event_type="lead.assigned", deadline_s=600)
        started = time.perf_counter()
        await produce_events(bootstrap, topic_for("scoring", prefix), events)
        await count_records(out, len(events), event_type="lead.assigned", deadline_s=600)
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    bootstrap, database_url = bench_infra()
    token = uuid.uuid4().hex[:8]
    prefix, schema = scratch_prefix(token), f"bench_routing_{token}"
    rng = random.Random(args.seed)
    events = leads(args.leads, rng)
    try:
        raw = await raw_baseline(bootstrap, prefix, events)
        routed = await routing_leg(bootstrap, database_url, prefix, schema, events, rng)
    finally:
        await drop_schema(database_url, schema)
        await delete_quietly(bootstrap, [prefix])
    n = len(events)
    print(f"reps={REPS} teams={TEAMS} rules={RULES} leads={n}")
    print(f"raw consume+produce : {n / raw:9.1f} records/s ({raw:.2f} s)")
    print(f"routing assignments : {n / routed:9.1f} assignments/s ({routed:.2f} s)")
    print(f"ratio routing/raw   : {raw / routed:9.3f}")


if __name__ == "__main__":
    asyncio.run(main())
