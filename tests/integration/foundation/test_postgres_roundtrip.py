"""A round trip through the kernel's asyncpg pool (``sql.Database``) in a schema of the
test's own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from leadflow.events.sql import Database

pytestmark = [pytest.mark.postgres]


async def test_rows_round_trip_through_the_pool_in_a_per_test_schema(isolation) -> None:
    engine = Database(isolation.database_url, isolation.schema, pool_size=2)
    row_id = uuid.uuid4()
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    try:
        async with engine.transaction() as conn:
            await conn.execute(f'CREATE SCHEMA "{isolation.schema}"')
            await conn.execute(
                "CREATE TABLE things (id uuid PRIMARY KEY, name text NOT NULL, "
                "data jsonb NOT NULL, at timestamptz NOT NULL)"
            )  # unqualified: the pool's search_path is the test schema
            await conn.execute(
                "INSERT INTO things VALUES (:id, :name, CAST(:data AS jsonb), :at)",
                id=row_id,
                name="Zoë",
                data='{"n": 1, "tags": ["a"]}',
                at=when,
            )
        async with engine.connect() as conn:
            row = await conn.fetchrow("SELECT id, name, data, at FROM things")
            schema_of_table = await conn.fetchval("SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'"
                     " AND table_schema = current_schema()")  # fmt: skip
        assert row.id == row_id and row.name == "Zoë"
        assert row.data == {"n": 1, "tags": ["a"]}
        assert row.at == when and row.at.tzinfo is not None
        assert schema_of_table == isolation.schema
        async with engine.transaction() as conn:  # a failed transaction leaves nothing behind
            with pytest.raises(Exception, match="duplicate key"):
                async with conn.savepoint():
                    await conn.execute(
                        "INSERT INTO things VALUES (:id, 'x', '{}', now())", id=row_id
                    )
            count = await conn.fetchval("SELECT count(*) FROM things")
        assert count == 1
    finally:
        await engine.close()
