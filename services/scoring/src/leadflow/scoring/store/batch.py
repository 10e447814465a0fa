"""A consumer batch's reads and writes, each in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import DriverSql, driver_sql
from leadflow.events.timers import Timer, timer_writes
from leadflow.scoring.domain import (
    Activity,
    ScoringModel,
)
from leadflow.scoring.store.documents import _VERSIONS_ROW, _resolve_versions
from leadflow.scoring.store.engagement import _ADD_ACTIVITIES_ROWS, _activity_columns
from leadflow.scoring.store.leads import (
    _SAVE_LEADS_ROWS,
    _UPSERT_LEADS_ROWS,
    LeadRow,
    _changed_columns,
)
from leadflow.scoring.store.outcomes import _INSERT_OUTCOMES_ROWS, _outcome_columns


async def write_batch(
    conn: AsyncConnection,
    leads: Sequence[LeadRow],
    outcomes: Sequence[dict[str, Any]],
    cancel: Sequence[str],
    schedule: Sequence[Timer],
) -> None:
    """A consumer batch's writes in ONE statement: its timers (cancelled and scheduled keys
    differ), its changed leads and its outcomes; each part touches its own rows."""
    parts, params = timer_writes(cancel, schedule)
    columns = _changed_columns(leads)
    if columns is not None:
        parts.append(f"saved AS ({_SAVE_LEADS_ROWS})")
        params |= columns
    if outcomes:
        parts.append(f"outcomes_added AS ({_INSERT_OUTCOMES_ROWS})")
        params |= _outcome_columns(outcomes)
    if parts:
        await driver_sql("WITH " + ", ".join(parts) + " SELECT 1").execute(conn, params)


# A consumer batch's reads in ONE statement: its activities added (the new ones' keys come
# back on their lead's row), its leads created where missing and locked, and the model
# versions. Each part touches its own table; the activities read in the decay window comes
# after (it needs the model's window and sees the added rows, which a CTE would not).
_PREPARE_BATCH = DriverSql(
    f"""
    WITH added AS ({_ADD_ACTIVITIES_ROWS}),
         locked AS ({_UPSERT_LEADS_ROWS})
    SELECT locked.*,
           ARRAY(SELECT a.activity_key FROM added a WHERE a.lead_id = locked.lead_id)
               AS added_keys,
           v.version AS model_version, v.stamp AS model_stamp,
           v.predictive AS predictive_version
    FROM locked CROSS JOIN ({_VERSIONS_ROW}) AS v
    """
)


async def prepare_batch(
    conn: AsyncConnection,
    activities: Sequence[tuple[uuid.UUID, str, Activity]],
    lead_ids: Sequence[uuid.UUID],
) -> tuple[set[tuple[uuid.UUID, str]], dict[uuid.UUID, LeadRow], tuple[ScoringModel, int | None]]:
    """A consumer batch's activities added, its leads created where missing and locked (id
    order, so concurrent batches cannot deadlock) and ``current_versions``, in one round
    trip: the (lead, key) pairs of the activities that were new (a redelivered activity is
    already there and must not count twice), the locked leads, the model versions."""
    ids = sorted(set(lead_ids))
    rows = await _PREPARE_BATCH.fetch(conn, {"ids": ids, **_activity_columns(activities)})
    new = {(r.lead_id, key) for r in rows for key in r.added_keys}
    leads = {r.lead_id: LeadRow.from_row(r) for r in rows}
    first = rows[0]
    versions = await _resolve_versions(
        conn, first.model_version, first.model_stamp, first.predictive_version
    )
    return new, leads, versions
