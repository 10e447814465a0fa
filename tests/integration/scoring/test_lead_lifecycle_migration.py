"""Migration 0008 gives every stored lead the kernel lifecycle stage its old flags say, so
scoring goes on from where each lead was: a customer stays a customer, an MQL an MQL, a
disqualified lead can still be reinstated; and its way back drops the columns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from leadflow.events.db import downgrade, plain_url, upgrade_async
from leadflow.events.lifecycle import Stage
from leadflow.scoring.app import MIGRATIONS, create_kit
from leadflow.scoring.settings import ScoringSettings
from leadflow.scoring.store import lock_leads

pytestmark = [pytest.mark.postgres]

# (status, qualified, with_sales, disqualified, nurture_status) -> the stage it becomes
CASES: list[tuple[tuple[str, bool, bool, bool, str], Stage]] = [
    (("open", False, False, False, "none"), Stage.INQUIRY),
    (("open", False, False, False, "active"), Stage.NURTURE),
    (("open", True, False, False, "exited"), Stage.MQL),
    (("open", False, True, False, "paused"), Stage.MQL),
    (("open", True, False, True, "exited"), Stage.DISQUALIFIED),
    (("won", True, False, False, "exited"), Stage.WON),
    (("lost", False, False, False, "none"), Stage.LOST),
    (("churned", False, False, False, "none"), Stage.CHURNED),
]


async def test_stored_leads_get_the_stage_their_flags_say(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    settings = settings_for(ScoringSettings, run_consumers=False, db_schema=isolation.schema)
    await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS, "0007")
    ids = [uuid.uuid4() for _ in CASES]
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        await conn.execute(f'SET search_path TO "{isolation.schema}"')
        for lead_id, ((status, qualified, with_sales, dq, nurture), _) in zip(
            ids, CASES, strict=True
        ):
            await conn.execute(
                "INSERT INTO leads (lead_id, status, qualified, with_sales, disqualified, "
                "nurture_status) VALUES ($1, $2, $3, $4, $5, $6)",
                lead_id, status, qualified, with_sales, dq, nurture,
            )  # fmt: skip
        await upgrade_async(settings.database_url, isolation.schema, MIGRATIONS)

        kit = create_kit(settings)
        async with kit.unit_of_work() as uow:
            rows = {r.lead_id: r for r in await lock_leads(uow.tx, ids)}
        await kit.db.close()
        assert [rows[i].lifecycle.stage for i in ids] == [stage for _, stage in CASES]
        # the lifecycle goes on from there: sales accepts the MQL it works, a disqualified
        # lead can be reinstated
        worked = rows[ids[3]]
        worked.move("lead.accepted")
        assert (worked.stage, worked.qualified, worked.with_sales) == ("sal", True, True)
        reinstated = rows[ids[4]]
        reinstated.move("lead.reinstated")
        assert (reinstated.stage, reinstated.disqualified, reinstated.qualified) == (
            "inquiry",
            False,
            False,
        )

        await asyncio.to_thread(
            downgrade, settings.database_url, isolation.schema, MIGRATIONS, "0007"
        )
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
            "AND table_name = 'leads' AND column_name IN ('stage', 'held_from')",
            isolation.schema,
        )
        assert columns == []
    finally:
        await conn.close()
