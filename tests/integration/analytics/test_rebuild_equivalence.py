"""The analytics rebuild writes exactly what the live (incremental) projection loop writes.

A seeded random log of varied lead histories (late captures, hand-raises on known leads,
reassignment, holds, recycles, wins with several touches and non-integer amounts, SLA
events) is applied through the kernel runner in small batches (the live path), every
projection table is read back, then the group is rebuilt with ``rebuild_group`` in tiny
chunks (so leads are evicted from memory and read back, and chunks are flushed several
times) and with the defaults: every table must hold the same rows.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from leadflow.analytics import rebuild as rebuild_module
from leadflow.analytics.app import MIGRATIONS
from leadflow.analytics.fold_group import log_head, read_log
from leadflow.analytics.projections import (
    LOG_COPY_COLUMNS,
    PROJECTION_NAMES,
    PROJECTION_TABLES,
    all_projections,
)
from leadflow.analytics.rebuild import catch_up_group, rebuild_group
from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.projection import ProjectionRunner
from leadflow.events.sql import Database

pytestmark = [pytest.mark.postgres]

START = datetime(2025, 1, 27, 8, 0, tzinfo=UTC)  # a Monday, weeks and months are crossed
Event = tuple[str, str, datetime, dict[str, Any]]


def history(rng: random.Random, t: datetime) -> list[Event]:
    """One lead's events (producer, type, occurred_at, payload), with the awkward cases."""
    channel = rng.choice(["web_form", "badge_scan", "import", ""])
    source: dict[str, Any] = {"channel": channel, "campaign": rng.choice(["c1", "c2", "c3"])}
    if channel == "badge_scan":
        source["event_id"] = "expo"
    capture: Event = ("intake", "lead.captured", t, {"capture_method": "api", "source": source})
    out: list[Event] = []
    late_capture = rng.random() < 0.1  # another producer's event reaches the log first

    def at(hours: float) -> datetime:
        nonlocal t
        t += timedelta(hours=hours * rng.uniform(0.3, 3))
        return t

    if not late_capture:
        out.append(capture)
    if rng.random() < 0.5:
        props = {"channel": "email"} if rng.random() < 0.5 else {}
        out.append(
            (
                "intake",
                "activity.recorded",
                at(5),
                {"activity_type": "webinar", "campaign": "c9", "properties": props},
            )
        )
    out.append(("scoring", "lead.scored", at(1), {"fit": 50}))
    if rng.random() < 0.2:
        out.append(("scoring", "lead.disqualified", at(3), {"reason_code": "student"}))
        if rng.random() < 0.5:  # raises a hand again: back to inquiry
            out.append(("intake", "inquiry.received", at(30), {"source": {"channel": "api"}}))
        return _late(out, capture, late_capture)
    if rng.random() < 0.3:
        out.append(("scoring", "nurture.enrolled", at(10), {"track_id": "t"}))
    out.append(("scoring", "lead.qualified", at(20), {}))
    rep = f"r{rng.randrange(4)}"
    out.append(("routing", "lead.assigned", at(0.1), {"rep_id": rep, "team_id": "t1"}))
    out.append(("sla", "sla.started", at(0.01), {"policy_id": "p1"}))
    if rng.random() < 0.2:
        rep = f"r{rng.randrange(4)}"
        out.append(("routing", "lead.reassigned", at(1), {"rep_id": rep, "team_id": "t2"}))
    if rng.random() < 0.2:
        out.append(("sla", "sla.breached", at(4), {"policy_id": "p1"}))
    if rng.random() < 0.2:
        out.append(("routing", "lead.rejected", at(2), {"rep_id": rep, "reason_code": "bad_fit"}))
        return _late(out, capture, late_capture)
    out.append(("routing", "lead.accepted", at(2), {"rep_id": rep}))
    on_time = rng.random() < 0.7
    out.append(
        (
            "sla",
            "sla.met",
            at(0.01),
            {"policy_id": "p1", "on_time": on_time, "elapsed_seconds": 61.7},
        )
    )
    if rng.random() < 0.15:
        out.append(("scoring", "lead.put_on_hold", at(10), {}))
        out.append(("routing", "lead.accepted", at(30), {"rep_id": rep}))
    out.append(("routing", "lead.sales_qualified", at(40), {"rep_id": rep}))
    if rng.random() < 0.3:
        out.append(("routing", "lead.recycled", at(100), {"rep_id": rep, "reason_code": "timing"}))
        return _late(out, capture, late_capture)
    amount = round(rng.uniform(100, 9000), 2)
    out.append(("routing", "opportunity.opened", at(24), {"amount": amount}))
    if rng.random() < 0.3:
        out.append(("intake", "inquiry.received", at(5), {"source": {"channel": "event"}}))
    if rng.random() < 0.5:
        out.append(("routing", "deal.won", at(200), {"amount": round(amount * 1.1, 2)}))
    else:
        out.append(("routing", "deal.lost", at(200), {"reason_code": "price"}))
    return _late(out, capture, late_capture)


def _late(out: list[Event], capture: Event, late: bool) -> list[Event]:
    if late:
        out.insert(min(2, len(out)), capture)
    return out


async def write_log(conn: asyncpg.Connection, schema: str, leads: int, seed: int) -> int:
    """COPY the leads' events into the log, interleaved roughly in time like a real log."""
    rng = random.Random(seed)
    rows = []
    for i in range(leads):
        lead = uuid.UUID(int=rng.getrandbits(128))
        start = START + timedelta(hours=i * 7)
        for n, (producer, et, at, payload) in enumerate(history(rng, start)):
            # log order: mostly time order, a few late arrivals
            key = at + timedelta(hours=rng.choice([0, 0, 0, 30]))
            rows.append((key, n, uuid.uuid4(), lead, producer, et, at, orjson.dumps(payload)))
    rows.sort(key=lambda r: (r[0], r[1]))
    await conn.copy_records_to_table(
        "lead_event_log",
        schema_name=schema,
        columns=list(LOG_COPY_COLUMNS),
        records=[(r[2], r[3], r[4], r[5], r[6], r[6], r[7].decode()) for r in rows],
    )
    return len(rows)


async def dump(conn: asyncpg.Connection, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted, without serial ids; float8 sums rounded (their
    last bits depend on the order they were added in, which batching changes)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in PROJECTION_TABLES:
        rows = await conn.fetch(f'SELECT * FROM "{schema}".{table}')
        out[table] = sorted(
            (
                tuple(round(v, 6) if isinstance(v, float) else v for k, v in r.items() if k != "id")
                for r in rows
            ),
            key=repr,
        )
    return out


@pytest.fixture
async def log(database_url: str, isolation: Any) -> Any:
    await upgrade_async(database_url, isolation.schema, MIGRATIONS)
    conn = await asyncpg.connect(plain_url(database_url))
    engine = Database(database_url, isolation.schema)
    try:
        yield conn, engine, isolation.schema
    finally:
        await engine.close()
        await conn.close()


def runner(engine: Any, batch: int) -> ProjectionRunner:
    return ProjectionRunner(
        engine, all_projections(), read_log, log_head, service="analytics", rebuild_batch=batch
    )


async def test_rebuild_writes_exactly_what_incremental_application_wrote(log: Any) -> None:
    conn, engine, schema = log
    total = await write_log(conn, schema, leads=400, seed=3)
    assert await runner(engine, 37).catch_up() == total  # the live path, 37 events a batch
    incremental = await dump(conn, schema)
    assert len(incremental["stage_stay"]) > 500
    assert len(incremental["attribution_revenue"]) > 20
    assert any(r[-1] for r in incremental["rep_reasons"])

    tiny = await rebuild_group(engine, all_projections(), chunk_events=500, read_events=60)
    assert (tiny.state, tiny.processed, tiny.total) == ("done", total, total)
    assert await dump(conn, schema) == incremental

    whole = await rebuild_group(engine, all_projections())
    assert whole.processed == total
    assert await dump(conn, schema) == incremental
    positions = await conn.fetch(
        f'SELECT position FROM "{schema}".projection_checkpoints WHERE name = ANY($1::text[])',
        list(PROJECTION_NAMES),
    )
    assert sorted(int(r[0]) for r in positions) == [total] * len(PROJECTION_NAMES)


async def test_live_loop_continues_a_rebuild_where_it_ended(log: Any) -> None:
    conn, engine, schema = log
    first = await write_log(conn, schema, leads=150, seed=5)
    await rebuild_group(engine, all_projections(), chunk_events=300, read_events=50)
    # More events arrive (leads overlapping the rebuilt ones); the live path applies them.
    second = await write_log(conn, schema, leads=150, seed=6)
    assert await runner(engine, 41).catch_up() == second
    continued = await dump(conn, schema)
    # The same log applied from scratch by the kernel's batch-by-batch replay.
    await runner(engine, 53).rebuild_many(list(PROJECTION_NAMES))
    assert await dump(conn, schema) == continued
    assert first + second == await conn.fetchval(f'SELECT count(*) FROM "{schema}".lead_event_log')


async def test_fast_catch_up_of_a_backlog_equals_a_replay_from_scratch(log: Any) -> None:
    conn, engine, schema = log
    await write_log(conn, schema, leads=120, seed=8)
    await runner(engine, 29).catch_up()  # live path up to here
    # A backlog (new leads and more events of known ones), applied by the fast path.
    backlog = await write_log(conn, schema, leads=200, seed=9)
    done = await catch_up_group(engine, all_projections(), chunk_events=400, read_events=70)
    assert (done.processed, done.total) == (backlog, backlog)
    caught_up = await dump(conn, schema)
    await runner(engine, 61).rebuild_many(list(PROJECTION_NAMES))
    assert await dump(conn, schema) == caught_up


async def test_rebuild_refolds_from_the_live_checkpoint_when_the_live_loop_moved_between_chunks(
    log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk k+1 is folded while chunk k is written; if the live loop applies a batch
    between two chunk transactions, the chunk folded meanwhile is stale: it is dropped and
    the rebuild continues from the live checkpoint with the states read back."""
    conn, engine, schema = log
    total = await write_log(conn, schema, leads=200, seed=12)
    await runner(engine, 43).rebuild_many(list(PROJECTION_NAMES))
    from_scratch = await dump(conn, schema)

    live = runner(engine, 37)
    real_write = rebuild_module._write_chunk
    writes = refused = 0

    async def live_batch_before_the_second_chunk(*args: Any) -> None:
        nonlocal writes, refused
        writes += 1
        if writes == 2:  # the first chunk has committed, the second is not locked yet
            assert await live.step_many(list(PROJECTION_NAMES), 37) == 37
        try:
            await real_write(*args)
        except rebuild_module._Stale:
            refused += 1
            raise

    monkeypatch.setattr(rebuild_module, "_write_chunk", live_batch_before_the_second_chunk)
    done = await rebuild_group(engine, all_projections(), chunk_events=300, read_events=50)
    assert refused == 1  # the chunk folded meanwhile was refused, then folded again
    assert done.processed == total - 37  # the live loop applied the other 37
    assert await dump(conn, schema) == from_scratch
