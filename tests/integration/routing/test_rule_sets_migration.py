"""Migration 0007 carries every published rule set over to the kernel's versioned-document
table shape, read back through ``store.RULES`` with who published it and when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from leadflow.events.db import downgrade, plain_url, upgrade_async
from leadflow.routing.app import MIGRATIONS, create_kit
from leadflow.routing.settings import RoutingSettings
from leadflow.routing.store import RULES

pytestmark = [pytest.mark.postgres]
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rule_set(version: int, queue: str) -> dict[str, Any]:
    target = {"kind": "queue", "queue_id": queue}
    return {"version": version, "rules": [{"id": f"r{version}", "target": target}]}


async def test_published_rule_sets_survive_the_move_to_the_document_table(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    # This test migrates a schema of its own, not the session's migrated one.
    settings = settings_for(RoutingSettings, run_consumers=False, db_schema=isolation.schema)
    await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS, "0006")
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        await conn.execute(f'SET search_path TO "{isolation.schema}"')
        for version, queue in ((1, "emea"), (2, "amer")):
            await conn.execute(
                "INSERT INTO rule_sets (version, doc, published_by, published_at) "
                "VALUES ($1, $2::jsonb, 'ops', $3)",
                version,
                orjson.dumps(rule_set(version, queue)).decode(),
                AT,
            )
        await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS)

        kit = create_kit(settings)
        async with kit.connect() as db:
            current = await RULES.current(db)
            first = await RULES.version(db, 1)
            listing = await RULES.versions(db)
        await kit.db.close()
        assert (current.version, current.doc.version, current.published_at) == (2, 2, AT)
        assert current.doc.rules[0].id == "r2"
        assert first is not None and first.doc.rules[0].id == "r1"
        assert [(v["version"], v["rules"], v["published_by"]) for v in listing] == [
            (2, 1, "ops"),
            (1, 1, "ops"),
        ]

        await asyncio.to_thread(
            downgrade, settings.database_url, isolation.schema, MIGRATIONS, "0006"
        )
        row = await conn.fetchrow("SELECT doc FROM rule_sets WHERE version = 2")
        assert orjson.loads(row["doc"]) == rule_set(2, "amer")
    finally:
        await conn.close()
