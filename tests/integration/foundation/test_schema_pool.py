"""The test suite's schema pool (``leadflow.testing.schemas``): a service schema is migrated
once per session, and after each test it is exactly what its migrations left — rows gone,
the migrations' own seed rows back, sequences where they were, tables a test made dropped —
so tests stay isolated without migrating a fresh schema each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from leadflow.events.db import plain_url, upgrade_async
from leadflow.testing.schemas import SchemaPool

pytestmark = [pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
ROUTING = ROOT / "services/routing/migrations"  # seeds reason codes and a config revision


async def state(conn: asyncpg.Connection) -> dict[str, object]:
    return {
        "reason_codes": [
            tuple(r) for r in await conn.fetch("SELECT * FROM reason_codes ORDER BY 1, 2")
        ],
        "config_revision": [tuple(r) for r in await conn.fetch("SELECT * FROM config_revision")],
        "leads": await conn.fetchval("SELECT count(*) FROM leads"),
        "sequences": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = current_schema() ORDER BY 1"
            )
        ],
        "tables": sorted(
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ),
    }


async def test_a_pooled_schema_is_put_back_to_what_its_migrations_left(database_url: str) -> None:
    pool = SchemaPool(database_url, upgrade_async)
    schema = pool.schema_for("routing-under-test")
    try:
        await pool.migrate(database_url, schema, ROUTING)
        conn = await asyncpg.connect(
            plain_url(database_url), server_settings={"search_path": f'"{schema}"'}
        )
        try:
            migrated = await state(conn)
            assert migrated["reason_codes"] and migrated["config_revision"]
            # what a test does: rows in, seeds changed, sequences moved, a table of its own
            await conn.execute(
                "INSERT INTO leads (lead_id, stage) VALUES (gen_random_uuid(), 'mql')"
            )
            await conn.execute("DELETE FROM reason_codes")
            await conn.execute("UPDATE config_revision SET revision = revision + 7")
            for name, _ in migrated["sequences"]:  # type: ignore[attr-defined]
                await conn.execute(f'SELECT nextval(\'"{schema}"."{name}"\')')
            await conn.execute("CREATE TABLE scratch (x int)")
            assert await state(conn) != migrated

            await pool.reset([schema])
            assert await state(conn) == migrated

            await pool.migrate(database_url, schema, ROUTING)  # a later kit: nothing to do
            assert await state(conn) == migrated
        finally:
            await conn.close()
    finally:
        await pool.close()


async def test_a_schema_migrated_outside_the_pool_is_dropped_and_renamed(database_url: str) -> None:
    pool = SchemaPool(database_url, upgrade_async)
    schema = pool.schema_for("migrated-by-hand")
    try:
        await upgrade_async(database_url, schema, ROUTING)  # a test migrating it itself
        await pool.migrate(database_url, schema, ROUTING)  # then a kit starts on it
        assert not pool.is_migrated(schema)  # the pool never saw it "just migrated"
        await pool.reset([schema])
        conn = await asyncpg.connect(plain_url(database_url))
        try:
            assert not await conn.fetchval(
                "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema
            )
        finally:
            await conn.close()
        assert pool.schema_for("migrated-by-hand") != schema
    finally:
        await pool.close()


async def test_a_kit_started_in_a_test_migrates_through_the_pool(
    settings_for: Any, isolation: Any
) -> None:
    """The kit's migration step goes through the session's pool (``patched_kit``): were the
    kit to migrate some other way, every test would silently migrate again."""
    from tests.integration.events.probe import ProbeSettings, make_kit

    settings = settings_for(ProbeSettings, run_consumers=False)
    assert settings.schema_name == isolation.schema_for(ProbeSettings)
    kit = make_kit(settings)
    await kit.start()
    await kit.stop()
    assert isolation.pool.is_migrated(settings.schema_name)
