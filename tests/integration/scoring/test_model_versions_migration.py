"""Migration 0005 carries every published scoring model over to the kernel's versioned-
document table shape: the versions, who published them and when, read back through
``leadflow.scoring.model_document.MODEL``; and its way back restores the old shape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from leadflow.events.db import downgrade, plain_url, upgrade_async
from leadflow.scoring.app import MIGRATIONS, create_kit
from leadflow.scoring.builtin import default_model_data
from leadflow.scoring.model_document import MODEL
from leadflow.scoring.settings import ScoringSettings

pytestmark = [pytest.mark.postgres]
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_published_models_survive_the_move_to_the_document_table(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    settings = settings_for(ScoringSettings, run_consumers=False, db_schema=isolation.schema)
    await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS, "0004")
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        await conn.execute(f'SET search_path TO "{isolation.schema}"')
        for version, name in ((1, "first"), (2, "second")):
            model = default_model_data() | {"name": name, "version": version}
            await conn.execute(
                "INSERT INTO model_versions (version, model, published_by, published_at) "
                "VALUES ($1, $2::jsonb, $3, $4)",
                version,
                orjson.dumps(model).decode(),
                "ops@example.com",
                AT,
            )
        await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS)

        kit = create_kit(settings)
        async with kit.connect() as db:
            current = await MODEL.current(db)
            first = await MODEL.version(db, 1)
            listing = await MODEL.versions(db)
        assert (current.version, current.doc.name, current.doc.version) == (2, "second", 2)
        assert (current.published_by, current.published_at) == ("ops@example.com", AT)
        assert first is not None and first.doc.name == "first"
        assert [(v["version"], v["name"]) for v in listing] == [(2, "second"), (1, "first")]
        await kit.db.close()

        await asyncio.to_thread(
            downgrade, settings.database_url, isolation.schema, MIGRATIONS, "0004"
        )
        row = await conn.fetchrow("SELECT model FROM model_versions WHERE version = 2")
        assert orjson.loads(row["model"])["version"] == 2
    finally:
        await conn.close()
