"""Replicas starting at once migrate one schema at once: every one of them must come up."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from leadflow.events.db import head_revision, plain_url

from .probe import MIGRATIONS

pytestmark = [pytest.mark.postgres]

# One replica's start-up migration, as its own process (Alembic's context is per process).
UPGRADE = "import sys; from pathlib import Path; from leadflow.events.db import upgrade; "
UPGRADE += "upgrade(sys.argv[1], sys.argv[2], Path(sys.argv[3]))"


async def replica_migrates(database_url: str, schema: str, migrations: Path) -> str:
    """The process's stderr when it failed, else empty."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        UPGRADE,
        database_url,
        schema,
        str(migrations),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    return err.decode()[-2000:] if proc.returncode else ""


async def test_replicas_migrating_a_new_schema_at_once_all_succeed(isolation: Any) -> None:
    # Five rounds of four "replicas", each round on a schema that does not exist yet: the
    # race is between creating the schema and taking the migration lock.
    schemas = [f"{isolation.schema}_{n}" for n in range(5)]
    try:
        for schema in schemas:
            failures = await asyncio.gather(
                *(replica_migrates(isolation.database_url, schema, MIGRATIONS) for _ in range(4))
            )
            assert [f for f in failures if f] == []
        conn = await asyncpg.connect(plain_url(isolation.database_url))
        try:
            for schema in schemas:
                revision = await conn.fetchval(
                    f'SELECT version_num FROM "{schema}".alembic_version'
                )
                assert revision == head_revision(MIGRATIONS)
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(plain_url(isolation.database_url))
        try:
            for schema in schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
