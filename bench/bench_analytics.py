"""Analytics benchmark: projection rebuild speed vs a raw asyncpg scan, and funnel p95.

    DATABASE_URL=postgresql://... uv run python bench/bench_analytics.py [--events 1000000]

    ... [--grow-to 10000000]

Writes >= N synthetic events (realistic lead lifecycles, interleaved in time) straight into
a scratch schema's ``lead_event_log`` with COPY, then in one run: (1) scans the log with raw
asyncpg in the same batch size, (2) rebuilds all six projections in ONE pass with the
analytics rebuild (``leadflow.analytics.rebuild.rebuild_group``: lead states in memory,
chunk k+1 folded while chunk k is COPYed and merged set-based in its transaction; what
``python -m leadflow.analytics rebuild`` and the rebuild endpoint run) and prints events/s and the ratio to the scan; with ``--kernel`` also
with the kernel's batch-by-batch ``rebuild_many`` (the old path), and checks that both
produce the same tables; (3) measures GET /v1/funnel p50/p95 in-process over a mix of
filters. With ``--grow-to`` the log is then grown, the backlog applied from the checkpoint
(``catch_up_group``, the same fast path without the reset) and the funnel measured again. Targets: rebuild >= 30k events/s, funnel
p95 < 50 ms. The scratch schema is dropped at the end.
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
from leadflow.analytics.fold_group import log_head, read_log
from leadflow.analytics.projections import (
    LOG_COPY_COLUMNS,
    PROJECTION_NAMES,
    PROJECTION_TABLES,
    all_projections,
)
from leadflow.analytics.rebuild import catch_up_group, rebuild_group
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.projection import ProjectionRunner
from leadflow.events.sql import Database

CHANNELS = ["web_form", "badge_scan", "import", "api"]
CAMPAIGNS = [f"c{i}" for i in range(40)]
START = datetime(2024, 1, 1, tzinfo=UTC)


def lead_events(rng: random.Random, t: datetime) -> list[tuple[str, str, datetime, dict[str, Any]]]:
    """(producer, event_type, occurred_at, payload) of one synthetic lead's life from ``t``."""
    ch, camp = rng.choice(CHANNELS), rng.choice(CAMPAIGNS)
    out: list[tuple[str, str, datetime, dict[str, Any]]] = [
        (
            "intake",
            "lead.captured",
            t,
            {"capture_method": "web_form", "source": {"channel": ch, "campaign": camp}},
        ),
    ]

    def step(hours: float, producer: str, et: str, payload: dict[str, Any]) -> None:
        nonlocal t
        t = t + timedelta(hours=hours * rng.uniform(0.2, 2.0))
        out.append((producer, et, t, payload))

    for _ in range(rng.randrange(0, 3)):
        step(
            12,
            "intake",
            "activity.recorded",
            {"activity_id": "a", "activity_type": "webinar", "campaign": rng.choice(CAMPAIGNS)},
        )
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
    step(
        0.01,
        "sla",
        "sla.met",
        {"policy_id": "p1", "on_time": rng.random() < 0.8, "elapsed_seconds": 1800},
    )
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


_PAYLOADS: dict[bytes, str] = {}


def _json(payload: dict[str, Any]) -> str:
    """orjson once per distinct payload (the synthetic payloads repeat a lot)."""
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    got = _PAYLOADS.get(raw)
    if got is None:
        got = _PAYLOADS[raw] = raw.decode()
    return got


async def fill(
    conn: asyncpg.Connection, schema: str, target: int, seed: int = 7, start: datetime = START
) -> int:
    """COPY >= ``target`` events; leads are made 5,000 at a time and their events written in
    occurred-at order, so a lead's events interleave with its neighbours' like a real log."""
    rng = random.Random(seed)
    total = 0
    # Leads arrive over a year, in order (a lead's life then runs for days to weeks).
    leads = max(1, target // 9)
    step = timedelta(minutes=365 * 24 * 60 / leads)
    t = start
    cols = list(LOG_COPY_COLUMNS)
    while total < target:
        rows: list[tuple[Any, ...]] = []
        for _ in range(5000):
            lead = uuid.uuid4()
            t += step
            for producer, et, at, payload in lead_events(rng, t):
                rows.append((uuid.uuid4(), lead, producer, et, at, at, _json(payload)))
        rows.sort(key=lambda r: r[4])
        await conn.copy_records_to_table(
            "lead_event_log", records=rows, columns=cols, schema_name=schema
        )
        total += len(rows)
    return total


async def raw_scan(dsn: str, schema: str, batch: int) -> float:
    """The floor: page through the log exactly as the projection source does (keyset on
    the position, payload decoded with orjson), doing nothing with the rows."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        started, after, n = time.perf_counter(), 0, 0
        while True:
            rows = await conn.fetch(
                "SELECT global_position, lead_id::text, event_type, occurred_at, payload::text "
                "FROM lead_event_log WHERE global_position > $1 "
                "ORDER BY global_position LIMIT $2",
                after,
                batch,
            )
            if not rows:
                break
            for r in rows:
                orjson.loads(r[4])
            n += len(rows)
            after = rows[-1][0]
        return time.perf_counter() - started
    finally:
        await conn.close()


FUNNEL_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("unfiltered", {}),
    ("channel", {"channel": "badge_scan"}),
    ("campaign+week", {"campaign": "c7", "grain": "week"}),
    ("whole months+channel", {"from": "2024-03-01", "to": "2024-09-30", "channel": "api"}),
    ("odd days", {"from": "2024-02-11", "to": "2024-10-19"}),
]


async def funnel_latency(url: str, schema: str, requests: int) -> dict[str, list[float]]:
    settings = AnalyticsSettings(
        database_url=url,
        db_schema=schema,
        run_consumers=False,
        migrate_on_start=False,
        log_json=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    lat: dict[str, list[float]] = {name: [] for name, _ in FUNNEL_QUERIES}
    cpu: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        reports = {"X-Admin-Token": settings.admin_token}  # reports need a credential
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=reports
        ) as client:
            for _, params in FUNNEL_QUERIES:
                assert (await client.get("/v1/funnel", params=params)).status_code == 200
            for i in range(requests):
                name, params = FUNNEL_QUERIES[i % len(FUNNEL_QUERIES)]
                s, c = time.perf_counter(), time.process_time()
                r = await client.get("/v1/funnel", params=params)
                lat[name].append((time.perf_counter() - s) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                assert r.status_code == 200
    lat["(client+app CPU per request)"] = cpu
    return lat


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def report_latency(n: int, lat: dict[str, list[float]]) -> None:
    every = [x for k, v in lat.items() if not k.startswith("(") for x in v]
    print(
        f"GET /v1/funnel over {n:,} events: p50 {statistics.median(every):.1f} ms, "
        f"p95 {p95(every):.1f} ms ({len(every)} requests, in-process ASGI, target p95 < 50)"
    )
    for name, values in lat.items():
        print(f"    {name:22s} p50 {statistics.median(values):6.1f} ms  p95 {p95(values):6.1f} ms")


def report_rebuild(label: str, p: Any, scan: float, cpu: float) -> None:
    took = p.finished_at - p.started_at
    print(
        f"{label} (one pass): {took:7.2f}s  "
        f"{p.processed / took:10,.0f} events/s  ({took / scan:.2f}x the raw scan; "
        f"target >= 30,000 events/s); Python CPU {cpu:.1f}s = "
        f"{p.processed / cpu:,.0f} events per CPU-second"
    )


async def dump_tables(conn: asyncpg.Connection, schema: str) -> dict[str, list[Any]]:
    """Every projection table's rows, sorted, without serial ids; float8 sums rounded (their
    last bits depend on the order they were added in)."""
    out: dict[str, list[Any]] = {}
    for table in PROJECTION_TABLES:
        rows = await conn.fetch(f'SELECT * FROM "{schema}".{table}')
        out[table] = sorted(
            tuple(round(v, 6) if isinstance(v, float) else v for k, v in r.items() if k != "id")
            for r in rows
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 1_000_000))
    )
    parser.add_argument(
        "--grow-to",
        type=int,
        default=0,
        help="then append events up to this size, catch up, measure again",
    )
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema")
    parser.add_argument(
        "--kernel",
        action="store_true",
        help="also rebuild with the kernel's rebuild_many (the old path) and compare",
    )
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
        print(f"log: {n:,} events written with COPY in {time.perf_counter() - t:.1f}s")

        scan = await raw_scan(dsn, schema, args.batch)
        print(f"raw asyncpg scan:         {scan:7.2f}s  {n / scan:10,.0f} events/s")

        engine = Database(url, schema)
        runner = ProjectionRunner(
            engine,
            all_projections(),
            read_log,
            log_head,
            service="analytics",
            rebuild_batch=args.batch,
        )
        kernel_tables: dict[str, list[Any]] | None = None
        if args.kernel:
            cpu = time.process_time()
            done = await runner.rebuild_many(list(PROJECTION_NAMES))
            cpu = time.process_time() - cpu
            p = done[PROJECTION_NAMES[0]]
            report_rebuild("kernel rebuild_many (old path)", p, scan, cpu)
            kernel_tables = await dump_tables(admin, schema)
        cpu = time.process_time()
        p = await rebuild_group(engine, all_projections())
        cpu = time.process_time() - cpu
        report_rebuild(f"rebuild all {len(PROJECTION_NAMES)} projections", p, scan, cpu)
        if kernel_tables is not None:
            same = kernel_tables == await dump_tables(admin, schema)
            print(f"    same tables as the kernel rebuild: {same}")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        report_latency(n, await funnel_latency(url, schema, args.requests))

        if args.grow_to > n:
            t = time.perf_counter()
            added = await fill(
                admin, schema, args.grow_to - n, seed=11, start=START + timedelta(days=365)
            )
            await admin.execute(f'ANALYZE "{schema}".lead_event_log')
            n += added
            print(f"log grown by {added:,} to {n:,} events in {time.perf_counter() - t:.1f}s")
            t = time.perf_counter()
            caught = await catch_up_group(engine, all_projections())
            took = time.perf_counter() - t
            print(
                f"catch-up of the backlog (analytics fast path, from the checkpoint): "
                f"{caught.processed:,} events in {took:.1f}s = {caught.processed / took:,.0f} "
                "events/s"
            )
            report_latency(n, await funnel_latency(url, schema, args.requests))
        await engine.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
