"""Analytics benchmark: projection rebuild speed vs a raw asyncpg scan, and funnel p95.

    DATABASE_URL=postgresql://... uv run python bench/bench_analytics.py [--events 1000000]

Writes >= N synthetic events (realistic lead lifecycles) straight into a scratch schema's
``lead_event_log`` with COPY, then in one run: (1) scans the log with raw asyncpg in the
same batch size, (2) rebuilds every projection with the kernel's ProjectionRunner, and
prints events/s and the ratio; (3) measures GET /v1/funnel p50/p95 in-process. Targets:
rebuild >= 30k events/s, funnel p95 < 50 ms. The scratch schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from leadflow.analytics.app import MIGRATIONS, create_app
from leadflow.analytics.projections import PROJECTION_NAMES, all_projections, log_head, read_log
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.db import create_engine, plain_url, upgrade_async
from leadflow.events.projection import ProjectionRunner

CHANNELS = ["web_form", "badge_scan", "import", "api"]
CAMPAIGNS = [f"c{i}" for i in range(40)]
START = datetime(2024, 1, 1, tzinfo=UTC)


def lead_events(rng: random.Random) -> list[tuple[str, str, datetime, dict[str, Any]]]:
    """(producer, event_type, occurred_at, payload) of one synthetic lead's life."""
    t = START + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
    ch, camp = rng.choice(CHANNELS), rng.choice(CAMPAIGNS)
    out: list[tuple[str, str, datetime, dict[str, Any]]] = [
        ("intake", "lead.captured", t, {"capture_method": "web_form",
                                        "source": {"channel": ch, "campaign": camp}}),
    ]

    def step(hours: float, producer: str, et: str, payload: dict[str, Any]) -> None:
        nonlocal t
        t = t + timedelta(hours=hours * rng.uniform(0.2, 2.0))
        out.append((producer, et, t, payload))

    for _ in range(rng.randrange(0, 3)):
        step(12, "intake", "activity.recorded", {"activity_id": "a", "activity_type": "webinar",
                                                 "campaign": rng.choice(CAMPAIGNS)})
    step(2, "scoring", "lead.scored", {"fit": 50, "engagement": 20})
    if rng.random() < 0.4:
        step(48, "scoring", "nurture.enrolled", {"track_id": "t"})
        return out
    rep, team = f"r{rng.randrange(30)}", f"t{rng.randrange(5)}"
    step(24, "scoring", "lead.qualified", {"fit": 80})
    step(0.1, "routing", "lead.assigned", {"rep_id": rep, "team_id": team})
    step(0.01, "sla", "sla.started", {"policy_id": "p1", "rep_id": rep, "team_id": team})
    if rng.random() < 0.2:
        step(3, "routing", "lead.rejected", {"rep_id": rep, "reason_code": "not_icp"})
        step(0.01, "sla", "sla.met", {"policy_id": "p1", "on_time": True, "elapsed_seconds": 900})
        return out
    step(3, "routing", "lead.accepted", {"rep_id": rep})
    step(0.01, "sla", "sla.met", {"policy_id": "p1", "on_time": rng.random() < 0.8,
                                  "elapsed_seconds": 1800})
    step(72, "routing", "lead.sales_qualified", {"rep_id": rep})
    if rng.random() < 0.5:
        step(200, "routing", "lead.recycled", {"rep_id": rep, "reason_code": "timing"})
        return out
    step(48, "routing", "opportunity.opened", {"amount": rng.randrange(1, 50) * 1000})
    if rng.random() < 0.4:
        step(500, "routing", "deal.won", {"amount": rng.randrange(1, 50) * 1000})
    else:
        step(500, "routing", "deal.lost", {"reason_code": "price"})
    return out


async def fill(conn: asyncpg.Connection, schema: str, target: int) -> int:
    rng = random.Random(7)
    rows: list[tuple[Any, ...]] = []
    total = 0
    cols = ["event_id", "lead_id", "producer", "event_type", "occurred_at", "recorded_at",
            "payload"]
    while total < target:
        lead = uuid.uuid4()
        for producer, et, at, payload in lead_events(rng):
            rows.append((uuid.uuid4(), lead, producer, et, at, at, orjson.dumps(payload).decode()))
        if len(rows) >= 50_000:
            await conn.copy_records_to_table("lead_event_log", records=rows, columns=cols,
                                             schema_name=schema)
            total += len(rows)
            rows = []
    if rows:
        await conn.copy_records_to_table("lead_event_log", records=rows, columns=cols,
                                         schema_name=schema)
        total += len(rows)
    return total


async def raw_scan(dsn: str, schema: str, batch: int) -> float:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        started, after, n = time.perf_counter(), 0, 0
        while True:
            rows = await conn.fetch(
                "SELECT global_position, lead_id::text, event_type, occurred_at, payload::text, "
                "event_id::text, producer FROM lead_event_log WHERE global_position > $1 "
                "ORDER BY global_position LIMIT $2", after, batch)
            if not rows:
                break
            for r in rows:
                orjson.loads(r[4])  # same decoding work the projection source does
            n += len(rows)
            after = rows[-1][0]
        return time.perf_counter() - started
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS",
                                                                         1_000_000)))
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/leadflow")
    schema = f"bench_analytics_{uuid.uuid4().hex[:8]}"
    dsn = plain_url(url)
    await upgrade_async(url, schema, MIGRATIONS)
    admin = await asyncpg.connect(dsn)
    try:
        t = time.perf_counter()
        n = await fill(admin, schema, args.events)
        await admin.execute(f'ANALYZE "{schema}".lead_event_log')
        print(f"log: {n:,} events written in {time.perf_counter() - t:.1f}s")

        scan = await raw_scan(dsn, schema, args.batch)
        print(f"raw asyncpg scan:   {scan:7.2f}s  {n / scan:12,.0f} events/s")

        engine = create_engine(url, schema)
        runner = ProjectionRunner(engine, all_projections(), read_log, log_head,
                                  service="analytics", rebuild_batch=args.batch)
        total = 0.0
        for name in PROJECTION_NAMES:
            p = await runner.rebuild(name)
            took = p.finished_at - p.started_at
            total += took
            print(f"rebuild {name:12s} {took:7.2f}s  {p.processed / took:12,.0f} events/s  "
                  f"(x{took / scan:.1f} the raw scan)")
        print(f"rebuild all ({len(PROJECTION_NAMES)} projections, each replays the log): "
              f"{total:.1f}s = {n / total:,.0f} log events/s, "
              f"{n * len(PROJECTION_NAMES) / total:,.0f} projection-events/s; "
              f"ratio to raw scan {total / scan:.1f}x (per projection "
              f"{total / len(PROJECTION_NAMES) / scan:.1f}x)")
        await engine.dispose()

        settings = AnalyticsSettings(database_url=url, db_schema=schema, run_consumers=False,
                                     migrate_on_start=False, log_json=False, log_level="WARNING")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for _ in range(10):
                    await client.get("/v1/funnel")
                lat = []
                for i in range(args.requests):
                    params = {} if i % 2 else {"from": "2024-03-01", "to": "2024-09-30",
                                               "channel": random.choice(CHANNELS)}
                    s = time.perf_counter()
                    r = await client.get("/v1/funnel", params=params)
                    lat.append((time.perf_counter() - s) * 1000)
                    assert r.status_code == 200
        lat.sort()
        p95 = lat[int(len(lat) * 0.95) - 1]
        print(f"GET /v1/funnel over {n:,} events: p50 {statistics.median(lat):.1f} ms, "
              f"p95 {p95:.1f} ms ({args.requests} requests, in-process ASGI)")
    finally:
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
