"""Migration 0004 carries every published SLA policy set and process definition over to the
kernel's versioned-document table shape, read back through ``store.POLICIES`` and
``process.PROCESS``; its way back restores the old columns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from leadflow.events.db import downgrade, plain_url, upgrade_async
from leadflow.events.process import built_in_process
from leadflow.sla_monitor.app import MIGRATIONS, create_kit
from leadflow.sla_monitor.domain import default_policies
from leadflow.sla_monitor.process import PROCESS
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.sla_monitor.store import POLICIES

pytestmark = [pytest.mark.postgres]
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_policy_sets_and_processes_survive_the_move_to_the_document_tables(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    settings = settings_for(SlaSettings, run_consumers=False, db_schema=isolation.schema)
    await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS, "0003")
    policies = [p.model_dump(mode="json") for p in default_policies()[:2]]
    stages = [s.model_dump(mode="json") for s in built_in_process().ordered()[:3]]
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        await conn.execute(f'SET search_path TO "{isolation.schema}"')
        await conn.execute(
            "INSERT INTO sla_policy_sets (version, policies, published_by, published_at) "
            "VALUES (1, $1::jsonb, 'ops', $2)",
            orjson.dumps(policies).decode(),
            AT,
        )
        await conn.execute(
            "INSERT INTO sla_process_versions (version, stages, published_by, published_at) "
            "VALUES (1, $1::jsonb, 'ops', $2)",
            orjson.dumps(stages).decode(),
            AT,
        )
        await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS)

        kit = create_kit(settings)
        async with kit.connect() as db:
            policy_set = await POLICIES.current(db)
            process = await PROCESS.current(db)
            listed = await POLICIES.versions(db)
        await kit.db.close()
        assert (policy_set.version, policy_set.published_at) == (1, AT)
        assert [p.model_dump(mode="json") for p in policy_set.doc.policies] == policies
        assert [(v["version"], v["policies"]) for v in listed] == [(1, 2)]
        assert (process.version, process.published_by) == (1, "ops")
        assert [s.model_dump(mode="json") for s in process.doc.stages] == stages

        await asyncio.to_thread(
            downgrade, settings.database_url, isolation.schema, MIGRATIONS, "0003"
        )
        row = await conn.fetchrow("SELECT policies FROM sla_policy_sets WHERE version = 1")
        assert orjson.loads(row["policies"]) == policies
        row = await conn.fetchrow("SELECT stages FROM sla_process_versions WHERE version = 1")
        assert orjson.loads(row["stages"]) == stages
    finally:
        await conn.close()
