"""The projections' reader of the analytics log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from leadflow.analytics.app import MIGRATIONS
from leadflow.analytics.fold_group import read_batch
from leadflow.analytics.projections import LOG_COPY_COLUMNS
from leadflow.events.db import plain_url, upgrade_async


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
    conn = await asyncpg.connect(
        plain_url(database_url),
        server_settings={"search_path": schema, "TimeZone": "Asia/Tokyo", "DateStyle": "SQL, DMY"},
    )
    try:
        lead = uuid.uuid4()
        await conn.copy_records_to_table(
            "lead_event_log",
            columns=list(LOG_COPY_COLUMNS),
            records=[
                (uuid.uuid4(), lead, "intake", "activity.recorded", t, t, f'{{"n": {i}}}')
                for i, t in enumerate(times)
            ],
        )
        facts = await read_batch(conn, 0, 10)
    finally:
        await conn.close()
    assert [f.occurred_at for f in facts] == times
    assert [f.occurred_at.utcoffset() for f in facts] == [UTC.utcoffset(None)] * 3
    assert [f.occurred_at.date().isoformat() for f in facts] == [
        "2024-01-01",
        "2024-02-29",
        "2024-12-31",
    ]
    assert [f.payload for f in facts] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [f.lead_id for f in facts] == [str(lead)] * 3
