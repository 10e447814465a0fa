"""A service's database sessions plan its by-key batch statements as index probes even while
a table is small: at the server's default random_page_cost (4) a cached generic plan, which
cannot see how many keys the array parameter holds, scans the whole table on every batch."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.events.kit import ServiceKit
from leadflow.events.settings import ServiceSettings

from .probe import ProbeSettings

# A batch's changed rows written back by key, the way the services' stores do it.
BATCH_UPDATE = (
    "UPDATE planner_probe AS p SET status = v.status "
    "FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[])) AS v(id, status) "
    "WHERE p.id = v.id"
)


async def generic_plan(settings: ServiceSettings) -> str:
    """The plan the statement is cached with after a few executions, in the kit's session."""
    kit = ServiceKit(settings)
    try:
        async with kit.transaction() as conn:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema_name}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS planner_probe "
                "(id uuid PRIMARY KEY, status text, padding text)"
            )
            await conn.execute(
                "INSERT INTO planner_probe SELECT gen_random_uuid(), 'new', repeat('x', 500) "
                "FROM generate_series(1, 500) ON CONFLICT DO NOTHING"
            )
        async with kit.connect() as conn:
            await conn.execute("ANALYZE planner_probe")
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE batch_update(uuid[], text[]) AS {BATCH_UPDATE}")
            rows = await conn.fetch(
                "EXPLAIN EXECUTE batch_update(ARRAY[gen_random_uuid()], ARRAY['open'])"
            )
            plan = "\n".join(r[0] for r in rows)
            await conn.execute("DEALLOCATE batch_update")
            await conn.execute("RESET plan_cache_mode")
            return plan
    finally:
        await kit.stop()


async def test_sessions_get_the_configured_random_page_cost(settings_for: Any) -> None:
    kit = ServiceKit(settings_for(ProbeSettings, run_consumers=False))
    try:
        async with kit.connect() as conn:
            assert await conn.fetchval("SHOW random_page_cost") == "1.1"
    finally:
        await kit.stop()


async def test_batch_statements_probe_the_index_of_a_small_table(settings_for: Any) -> None:
    plan = await generic_plan(settings_for(ProbeSettings, run_consumers=False))
    assert "Index Scan using planner_probe_pkey" in plan, plan
    assert "Seq Scan on planner_probe" not in plan, plan


async def test_an_empty_setting_keeps_the_servers_and_its_scan(
    settings_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_DB_RANDOM_PAGE_COST", "")
    settings = settings_for(ProbeSettings, run_consumers=False)
    assert settings.db_random_page_cost is None
    # What the setting is for: the server's default plans the same batch as a full scan.
    plan = await generic_plan(settings)
    assert "Seq Scan on planner_probe" in plan, plan
