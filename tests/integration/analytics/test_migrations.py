"""Analytics migrations that reshape projection tables keep the rows they hold."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from leadflow.analytics.app import MIGRATIONS
from leadflow.analytics.projections import MILESTONE_COLUMNS, MILESTONE_OF_COLUMN, all_projections
from leadflow.analytics.rebuild import rebuild_group
from leadflow.events.db import downgrade, plain_url, upgrade_async
from leadflow.events.sql import Database
from tests.integration.analytics.test_rebuild_equivalence import dump, write_log

KEY = ("grain", "channel", "campaign", "period")


async def test_funnel_cohort_columns_migrate_down_to_a_row_per_milestone_and_back(
    database_url: str, isolation: Any
) -> None:
    schema = isolation.schema
    await upgrade_async(database_url, schema, MIGRATIONS)
    engine = Database(database_url, schema)
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        await write_log(conn, schema, leads=300, seed=11)
        await rebuild_group(engine, all_projections())
        built = await dump(conn, schema)
        columns = await conn.fetch(f'SELECT * FROM "{schema}".funnel_cohort')
        assert len(columns) > 50
        per_milestone = sorted(
            (*(r[k] for k in KEY), MILESTONE_OF_COLUMN[c], r[c])
            for r in columns
            for c in MILESTONE_COLUMNS
            if r[c]
        )
        assert len(per_milestone) > 2 * len(columns)

        # 0005 (money per currency) clears every projection for a replay; put the funnel
        # rows back in the 0004 shape it leaves, to see 0004 pivot them down and up again.
        await asyncio.to_thread(downgrade, database_url, schema, MIGRATIONS, "0004")
        await conn.copy_records_to_table(
            "funnel_cohort",
            schema_name=schema,
            records=[tuple(r) for r in columns],
            columns=list(columns[0].keys()),
        )
        await asyncio.to_thread(downgrade, database_url, schema, MIGRATIONS, "0003")
        old = await conn.fetch(
            f'SELECT {", ".join(KEY)}, milestone, leads FROM "{schema}".funnel_cohort'
        )
        assert sorted(tuple(r) for r in old) == per_milestone

        await upgrade_async(database_url, schema, MIGRATIONS, "0004")
        again = await conn.fetch(f'SELECT * FROM "{schema}".funnel_cohort')
        assert sorted(tuple(r) for r in again) == sorted(tuple(r) for r in columns)

        # At head the projections are empty until replayed; the replay rebuilds them all.
        await upgrade_async(database_url, schema, MIGRATIONS)
        await rebuild_group(engine, all_projections())
        assert await dump(conn, schema) == built
    finally:
        await conn.close()
        await engine.close()
