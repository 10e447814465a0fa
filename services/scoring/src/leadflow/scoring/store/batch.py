"""A batch's reads and writes (``leadflow.scoring.batch.ScoringBatch``), each in one statement:
what it decides with, its leads created where missing and locked, its writes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from leadflow.events.sql import Tx
from leadflow.scoring.domain import NurtureTrack, ScoringModel
from leadflow.scoring.state import LeadRow, ScoredLead
from leadflow.scoring.store.documents import _VERSIONS_ROW, _resolve_versions, tracks
from leadflow.scoring.store.engagement import _ADD_ACTIVITIES_ROWS, _activity_columns
from leadflow.scoring.store.leads import (
    _CREATE_OR_LOCK_LEADS_ROWS,
    _SAVE_LEADS_ROWS,
    _UPSERT_LEADS_ROWS,
    _changed_columns,
)
from leadflow.scoring.store.outcomes import _INSERT_OUTCOMES_ROWS, _outcome_columns

# The model versions (``_VERSIONS_ROW``) and the active tracks' stamp (their ids and row
# versions): the tracks are read again only when that changes.
_CONTEXT = f"""
    SELECT v.version, v.stamp, v.predictive,
           (SELECT coalesce(string_agg(track_id || ':' || xmin::text, ',' ORDER BY track_id), '')
            FROM tracks WHERE active) AS tracks_stamp
    FROM ({_VERSIONS_ROW}) AS v
"""
_TRACKS: dict[str, list[NurtureTrack]] = {}


async def batch_versions(
    tx: Tx,
) -> tuple[ScoringModel, int | None, list[NurtureTrack]]:
    """The current scoring model, the promoted predictive model's version and the active
    tracks, in one round trip while neither the model nor a track changed."""
    (row,) = await tx.fetch(_CONTEXT)
    model, predictive = await _resolve_versions(tx, row.version, row.stamp, row.predictive)
    found = _TRACKS.get(row.tracks_stamp)
    if found is None:
        found = await tracks(tx)
        _TRACKS.clear()  # one set of tracks is current; the stamp tells when it is not
        _TRACKS[row.tracks_stamp] = found
    return model, predictive, found


async def lock_batch_leads(tx: Tx, lead_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, LeadRow]:
    """The batch's leads, created where missing and locked (each part in id order). A lead
    that exists is locked, not written: a batch that changes nothing of a lead (a re-score
    page of a model publish, mostly) leaves its row as it was, where an upsert wrote a new
    version of every row it locked. A lead another transaction created meanwhile (rare: a
    lead's events are one partition's) is upserted by a second statement."""
    ids = sorted(set(lead_ids))
    rows = {
        r["lead_id"]: LeadRow.from_row(r)
        for r in await tx.fetch(_CREATE_OR_LOCK_LEADS_ROWS, ids=ids)
    }
    if len(rows) < len(ids):
        missing = [i for i in ids if i not in rows]
        for r in await tx.fetch(_UPSERT_LEADS_ROWS, ids=missing):
            rows[r["lead_id"]] = LeadRow.from_row(r)
    return rows


async def save_batch(tx: Tx, states: Sequence[ScoredLead]) -> None:
    """A batch's writes in ONE statement: its changed leads (each its changed columns), the
    activities it added (a redelivered one is already there) and its outcomes; each part
    touches its own table."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    columns = _changed_columns([s.row for s in states])
    if columns is not None:
        parts.append(f"saved AS ({_SAVE_LEADS_ROWS})")
        params |= columns
    added = [(s.row.lead_id, a.activity_id or "", a) for s in states for a in s.added]
    if added:
        parts.append(f"added AS ({_ADD_ACTIVITIES_ROWS})")
        params |= _activity_columns(added)
    outcomes = [o for s in states for o in s.outcomes]
    if outcomes:
        parts.append(f"outcomes_added AS ({_INSERT_OUTCOMES_ROWS})")
        params |= _outcome_columns(outcomes)
    if parts:
        await tx.execute("WITH " + ", ".join(parts) + " SELECT 1", **params)
