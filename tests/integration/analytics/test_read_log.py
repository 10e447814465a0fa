"""The projections' reader of the analytics log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from leadflow.analytics.app import MIGRATIONS
from leadflow.analytics.fold_group import read_batch
from leadflow.analytics.projections import LOG_COPY_COLUMNS
from leadflow.events.db import upgrade_async
from leadflow.events.sql import Database


async def test_event_times_are_read_as_utc_instants_whatever_the_session_time_zone(
    database_url: str, isolation: Any
) -> None:
    schema = isolation.schema
    await upgrade_async(database_url, schema, MIGRATIONS)
    times = [
        datetime(2024, 1, 1, 23, 30, tzinfo=UTC),  # already the 2nd in Tokyo
        datetime(2024, 2, 29, 0, 0, 0, 5, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    engine = Database(database_url, schema)
    try:
        async with engine.connect() as tx:
            await tx.execute("SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY'")
            lead = uuid.uuid4()
            await tx.copy_records(
                "lead_event_log",
                columns=list(LOG_COPY_COLUMNS),
                records=[
                    (uuid.uuid4(), lead, "intake", "activity.recorded", t, t, f'{{"n": {i}}}')
                    for i, t in enumerate(times)
                ],
            )
            assert await tx.fetchval("SHOW TimeZone") == "Asia/Tokyo"
            facts = await read_batch(tx, 0, 10)
    finally:
        await engine.close()
    assert [f.occurred_at for f in facts] == times
    assert [f.occurred_at.utcoffset() for f in facts] == [UTC.utcoffset(None)] * 3
    assert [f.occurred_at.date().isoformat() for f in facts] == [
        "2024-01-01",
        "2024-02-29",
        "2024-12-31",
    ]
    assert [f.payload for f in facts] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [f.lead_id for f in facts] == [str(lead)] * 3
