"""SQL for scoring's read tables (unqualified names: the connection's search_path is our schema).

``leads`` holds one row per lead (profile, last published score, qualification and nurture
state) so that handling one event is one locking upsert plus one update; ``activities``
keeps the engagement history the score is computed from.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import DriverSql, driver_sql, json_text
from leadflow.events.timers import Timer, timer_writes
from leadflow.scoring.domain import (
    Activity,
    LeadProfile,
    NurtureTrack,
    ScoringModel,
    validate_track,
)
from leadflow.scoring.model_document import MODEL

LEAD_COLUMNS = (
    "lead_id, profile, status, with_sales, qualified, qualified_at, disqualified, "
    "disqualify_reason, engagement_since, score, scored_at, reeval_at, nurture_status, "
    "track_id, track_version, nurture_step, nurture_reason, nurture_next_due_at, "
    "enrolled_at, outcome, snapshot, snapshot_at, cycle, expansions"
)
_LEAD_FIELDS = tuple(c.strip() for c in LEAD_COLUMNS.split(","))
# Every column a handler may change, with its SQL type, written together by ``save_leads``
# (one statement, one array per column).
SAVED_COLUMNS = {
    "profile": "jsonb", "status": "text", "with_sales": "boolean", "qualified": "boolean",
    "qualified_at": "timestamptz", "disqualified": "boolean", "disqualify_reason": "text",
    "engagement_since": "timestamptz", "score": "jsonb", "scored_at": "timestamptz",
    "reeval_at": "timestamptz", "nurture_status": "text", "track_id": "text",
    "track_version": "integer", "nurture_step": "integer", "nurture_reason": "text",
    "nurture_next_due_at": "timestamptz", "enrolled_at": "timestamptz", "outcome": "text",
    "snapshot": "jsonb", "snapshot_at": "timestamptz", "cycle": "text", "expansions": "integer",
}  # fmt: skip
_JSON_COLUMNS = frozenset(c for c, sql_type in SAVED_COLUMNS.items() if sql_type == "jsonb")


@dataclass
class LeadRow:
    """A lead's scoring state; handlers change it and ``save_lead`` writes the changes."""

    lead_id: uuid.UUID
    profile: LeadProfile
    status: str = "open"
    with_sales: bool = False
    qualified: bool = False
    qualified_at: datetime | None = None
    disqualified: bool = False
    disqualify_reason: str | None = None
    engagement_since: datetime | None = None
    score: dict[str, Any] | None = None
    scored_at: datetime | None = None
    reeval_at: datetime | None = None
    nurture_status: str = "none"
    track_id: str | None = None
    track_version: int | None = None
    nurture_step: int = 0
    nurture_reason: str | None = None
    nurture_next_due_at: datetime | None = None
    enrolled_at: datetime | None = None
    outcome: str | None = None
    # Predictive features and rule score frozen at qualification (or when sales took the
    # lead); None while the lead is in marketing's hands.
    snapshot: dict[str, Any] | None = None
    snapshot_at: datetime | None = None
    # The lifecycle's buying cycle (new_business | expansion) and the expansions opened.
    cycle: str = "new_business"
    expansions: int = 0
    dirty: set[str] = field(default_factory=set)

    def set(self, **changes: Any) -> None:
        for name, value in changes.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
                self.dirty.add(name)

    @classmethod
    def from_row(cls, row: Any) -> LeadRow:
        """From a row holding ``LEAD_COLUMNS`` (other columns of the row are ignored)."""
        data = {name: getattr(row, name) for name in _LEAD_FIELDS}
        data["profile"] = LeadProfile.model_validate(data["profile"] or {})
        return cls(**data)


async def upsert_lead(
    conn: AsyncConnection, lead_id: uuid.UUID, profile: LeadProfile | None = None
) -> LeadRow:
    """Create the lead if new (replacing its profile when one is given) and lock its row."""
    if profile is None:
        sql = (
            "INSERT INTO leads (lead_id) VALUES (:id) ON CONFLICT (lead_id) "
            "DO UPDATE SET updated_at = now() RETURNING " + LEAD_COLUMNS
        )
        params: dict[str, Any] = {"id": lead_id}
    else:
        sql = (
            "INSERT INTO leads (lead_id, profile) VALUES (:id, CAST(:p AS jsonb)) "
            "ON CONFLICT (lead_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now() "
            "RETURNING " + LEAD_COLUMNS
        )
        params = {"id": lead_id, "p": json_text(profile.model_dump(mode="json"))}
    row = (await conn.execute(text(sql), params)).one()
    return LeadRow.from_row(row)


async def lock_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadRow | None:
    row = (
        await conn.execute(
            text(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = :id FOR UPDATE"),
            {"id": lead_id},
        )
    ).first()
    return LeadRow.from_row(row) if row else None


async def lock_leads(conn: AsyncConnection, lead_ids: Sequence[uuid.UUID]) -> list[LeadRow]:
    rows = await conn.execute(
        text(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY lead_id FOR UPDATE"
        ),
        {"ids": list(lead_ids)},
    )
    return [LeadRow.from_row(r) for r in rows]


async def get_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadRow | None:
    row = (
        await conn.execute(
            text(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = :id"), {"id": lead_id}
        )
    ).first()
    return LeadRow.from_row(row) if row else None


async def save_lead(conn: AsyncConnection, lead: LeadRow) -> None:
    """Write only the columns that changed."""
    if not lead.dirty:
        return
    assignments = []
    params: dict[str, Any] = {"id": lead.lead_id}
    for name in sorted(lead.dirty):
        cast = SAVED_COLUMNS[name] if name in _JSON_COLUMNS else None
        assignments.append(f"{name} = CAST(:{name} AS {cast})" if cast else f"{name} = :{name}")
        params[name] = _column_value(lead, name)
    await conn.execute(
        text(f"UPDATE leads SET {', '.join(assignments)}, updated_at = now() WHERE lead_id = :id"),
        params,
    )
    lead.dirty.clear()


async def add_activity(
    conn: AsyncConnection, lead_id: uuid.UUID, key: str, activity: Activity
) -> None:
    await conn.execute(
        text(
            "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
            "content_id, campaign, properties) VALUES (:lead, :key, :type, :at, :url, :content, "
            ":campaign, CAST(:props AS jsonb)) ON CONFLICT DO NOTHING"
        ),
        {
            "lead": lead_id,
            "key": key,
            "type": activity.activity_type,
            "at": activity.occurred_at,
            "url": activity.url,
            "content": activity.content_id,
            "campaign": activity.campaign,
            "props": json_text(dict(activity.properties)),
        },
    )


# Parts of a consumer batch's statements (``_PREPARE_BATCH``), sent straight to asyncpg.
_UPSERT_LEADS_ROWS = (
    "INSERT INTO leads (lead_id) SELECT i FROM unnest(CAST(:ids AS uuid[])) AS t(i) "
    "ORDER BY i ON CONFLICT (lead_id) DO UPDATE SET updated_at = now() "
    "RETURNING " + LEAD_COLUMNS
)
_ADD_ACTIVITIES_ROWS = (
    "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
    "content_id, campaign, properties) SELECT l, k, t, a, u, c, cp, CAST(p AS jsonb) "
    "FROM unnest(CAST(:l AS uuid[]), CAST(:k AS text[]), CAST(:t AS text[]), "
    "CAST(:a AS timestamptz[]), CAST(:u AS text[]), CAST(:c AS text[]), "
    "CAST(:cp AS text[]), CAST(:p AS text[])) AS x(l, k, t, a, u, c, cp, p) "
    "ON CONFLICT DO NOTHING RETURNING lead_id, activity_key"
)
_ACTIVITIES_OF = DriverSql(
    "SELECT lead_id, activity_key, activity_type, occurred_at, url, content_id, campaign, "
    "properties FROM activities WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND "
    "(CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since)"
)


# Each row sets only the columns its lead changed (named in ``changed`` as ``|a|b|``); the
# others keep the stored value, so an unchanged profile or snapshot (a kilobyte of JSON each)
# is neither serialised here nor parsed again by the server.
_SAVE_LEADS_ROWS = (
    "UPDATE leads AS l SET "
    + ", ".join(
        f"{c} = CASE WHEN strpos(v.changed, '|{c}|') > 0 THEN v.{c} ELSE l.{c} END"
        for c in SAVED_COLUMNS
    )
    + ", updated_at = now() FROM unnest(CAST(:lead_id AS uuid[]), CAST(:changed AS text[]), "
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in SAVED_COLUMNS.items())
    + ") AS v(lead_id, changed, "
    + ", ".join(SAVED_COLUMNS)
    + ") WHERE l.lead_id = v.lead_id"
)
_SAVE_LEADS = DriverSql(_SAVE_LEADS_ROWS)
_INSERT_OUTCOMES_ROWS = (
    "INSERT INTO outcomes (event_id, lead_id, outcome, reason_code, occurred_at, snapshot, "
    "snapshot_at) SELECT * FROM unnest(CAST(:o_event AS uuid[]), CAST(:o_lead AS uuid[]), "
    "CAST(:o_outcome AS text[]), CAST(:o_reason AS text[]), CAST(:o_at AS timestamptz[]), "
    "CAST(:o_snapshot AS jsonb[]), CAST(:o_snapshot_at AS timestamptz[])) "
    "ON CONFLICT DO NOTHING"
)
_INSERT_OUTCOMES = DriverSql(_INSERT_OUTCOMES_ROWS)


def _changed_columns(leads: Sequence[LeadRow]) -> dict[str, list[Any]] | None:
    """The changed leads as one array per column (``_SAVE_LEADS_ROWS``'s parameters; NULL
    where a lead did not change the column), their changes then counted as written; None
    when nothing changed."""
    changed = [lead for lead in leads if lead.dirty]
    if not changed:
        return None
    columns: dict[str, list[Any]] = {
        "lead_id": [lead.lead_id for lead in changed],
        "changed": ["|" + "|".join(sorted(lead.dirty)) + "|" for lead in changed],
    }
    for c in SAVED_COLUMNS:
        columns[c] = [_column_value(lead, c) if c in lead.dirty else None for lead in changed]
    for lead in changed:
        lead.dirty.clear()
    return columns


def _column_value(lead: LeadRow, column: str) -> Any:
    """A lead's value for ``column`` as the statements bind it (JSON columns as text)."""
    value = getattr(lead, column)
    if column == "profile":
        return json_text(value.model_dump(mode="json"))
    if column in _JSON_COLUMNS:
        return None if value is None else json_text(value)
    return value


def _outcome_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "o_event": [r["event_id"] for r in rows],
        "o_lead": [r["lead_id"] for r in rows],
        "o_outcome": [r["outcome"] for r in rows],
        "o_reason": [r["reason_code"] for r in rows],
        "o_at": [r["occurred_at"] for r in rows],
        "o_snapshot": [json_text(r["snapshot"]) for r in rows],
        "o_snapshot_at": [r["snapshot_at"] for r in rows],
    }


async def save_leads(conn: AsyncConnection, leads: Sequence[LeadRow]) -> None:
    """Write every changed lead of a batch with one statement (one array per column)."""
    columns = _changed_columns(leads)
    if columns is not None:
        await _SAVE_LEADS.execute(conn, columns)


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


def _activity_columns(items: Sequence[tuple[uuid.UUID, str, Activity]]) -> dict[str, list[Any]]:
    """``_ADD_ACTIVITIES_ROWS``'s parameters: one array per column."""
    return {
        "l": [i[0] for i in items],
        "k": [i[1] for i in items],
        "t": [i[2].activity_type for i in items],
        "a": [i[2].occurred_at for i in items],
        "u": [i[2].url for i in items],
        "c": [i[2].content_id for i in items],
        "cp": [i[2].campaign for i in items],
        "p": [json_text(dict(i[2].properties)) for i in items],
    }


# The versions part of ``_CURRENT_VERSIONS``: the newest scoring model (its version and row
# stamp, ``MODEL.head_sql``) and the promoted predictive model's version; one row, NULLs when
# none.
_VERSIONS_ROW = f"""
    SELECT m.version, m.stamp,
           (SELECT version FROM predictive_models WHERE promoted
            ORDER BY promoted_at DESC, version DESC LIMIT 1) AS predictive
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({MODEL.head_sql}) AS m ON true
"""
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


# -- outcomes and predictive models ---------------------------------------------------------


async def insert_outcomes(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await _INSERT_OUTCOMES.execute(conn, _outcome_columns(rows))


async def latest_outcomes(conn: AsyncConnection) -> list[dict[str, Any]]:
    """One row per lead: its latest outcome with the snapshot of that sales cycle."""
    rows = await conn.execute(
        text(
            "SELECT DISTINCT ON (lead_id) lead_id, outcome, reason_code, occurred_at, snapshot, "
            "snapshot_at FROM outcomes ORDER BY lead_id, occurred_at DESC, event_id DESC"
        )
    )
    return [dict(r._mapping) for r in rows]


async def all_outcomes(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text("SELECT lead_id, outcome, reason_code, occurred_at, snapshot FROM outcomes")
    )
    return [dict(r._mapping) for r in rows]


_PREDICTIVE_CACHE: dict[int, Any] = {}


async def promoted_model(conn: AsyncConnection) -> dict[str, Any] | None:
    """The predictive model in service (newest promotion), without its artifact."""
    row = (
        await conn.execute(
            text(
                "SELECT version, weights, metrics, trained_at, promoted_at FROM predictive_models "
                "WHERE promoted ORDER BY promoted_at DESC, version DESC LIMIT 1"
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def predictive_weights(conn: AsyncConnection, version: int) -> dict[str, Any] | None:
    cached = _PREDICTIVE_CACHE.get(version)
    if cached is None:
        cached = await conn.scalar(
            text("SELECT weights FROM predictive_models WHERE version = :v"), {"v": version}
        )
        if cached is not None:
            _PREDICTIVE_CACHE[version] = cached
    return cached


async def insert_predictive_model(
    conn: AsyncConnection,
    *,
    version: int,
    weights: dict[str, Any],
    artifact: bytes,
    metrics: dict[str, Any],
    promoted: bool,
    trained_by: str | None,
    at: datetime,
) -> int:
    await conn.execute(
        text(
            "INSERT INTO predictive_models (version, weights, artifact, metrics, promoted, "
            "trained_by, trained_at, promoted_at) VALUES (:v, CAST(:w AS jsonb), :a, "
            "CAST(:m AS jsonb), :p, :by, :at, :pat)"
        ),
        {"v": version, "w": json_text(weights), "a": artifact, "m": json_text(metrics), "p": promoted,
         "by": trained_by, "at": at, "pat": at if promoted else None},
    )  # fmt: skip
    return version


async def next_predictive_version(conn: AsyncConnection) -> int:
    await conn.execute(text("LOCK TABLE predictive_models IN SHARE ROW EXCLUSIVE MODE"))
    return int(
        await conn.scalar(text("SELECT coalesce(max(version), 0) + 1 FROM predictive_models")) or 1
    )


async def predictive_models(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT version, metrics, promoted, trained_by, trained_at, promoted_at, "
            "length(artifact) AS artifact_bytes FROM predictive_models ORDER BY version"
        )
    )
    return [dict(r._mapping) for r in rows]


def _activity(row: Any) -> Activity:
    return Activity(
        activity_type=row.activity_type,
        occurred_at=row.occurred_at,
        url=row.url,
        content_id=row.content_id,
        campaign=row.campaign,
        properties=row.properties or {},
        activity_id=row.activity_key,
    )


async def activities(
    conn: AsyncConnection, lead_id: uuid.UUID, since: datetime | None
) -> list[Activity]:
    rows = await conn.execute(
        text(
            "SELECT activity_key, activity_type, occurred_at, url, content_id, campaign, "
            "properties FROM activities WHERE lead_id = :id AND "
            "(CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since)"
        ),
        {"id": lead_id, "since": since},
    )
    return [_activity(r) for r in rows]


async def activities_of(
    conn: AsyncConnection, lead_ids: Sequence[uuid.UUID], since: datetime | None
) -> dict[uuid.UUID, list[Activity]]:
    rows = await _ACTIVITIES_OF.fetch(conn, {"ids": list(lead_ids), "since": since})
    out: dict[uuid.UUID, list[Activity]] = {i: [] for i in lead_ids}
    for r in rows:
        out[r.lead_id].append(_activity(r))
    return out


async def move_activities(conn: AsyncConnection, source: uuid.UUID, target: uuid.UUID) -> None:
    """A merged duplicate's engagement counts for the surviving lead."""
    await conn.execute(
        text(
            "INSERT INTO activities (lead_id, activity_key, activity_type, occurred_at, url, "
            "content_id, campaign, properties) SELECT :target, activity_key, activity_type, "
            "occurred_at, url, content_id, campaign, properties FROM activities "
            "WHERE lead_id = :source ON CONFLICT DO NOTHING"
        ),
        {"source": source, "target": target},
    )
    await conn.execute(text("DELETE FROM activities WHERE lead_id = :source"), {"source": source})


async def delete_activities(conn: AsyncConnection, lead_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM activities WHERE lead_id = :id"), {"id": lead_id})


async def scrub_outcome_snapshots(
    conn: AsyncConnection, lead_id: uuid.UUID, scrub: Callable[[Any], Any]
) -> None:
    """An erased lead's training examples keep their counts, not the person's words."""
    rows = await conn.execute(
        text("SELECT event_id, snapshot FROM outcomes WHERE lead_id = :id"), {"id": lead_id}
    )
    for event_id, snap in rows.all():
        await conn.execute(
            text("UPDATE outcomes SET snapshot = CAST(:s AS jsonb) WHERE event_id = :e"),
            {"s": json_text(scrub(snap)), "e": event_id},
        )


async def open_lead_ids(
    conn: AsyncConnection, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    rows = await conn.execute(
        text(
            "SELECT lead_id FROM leads WHERE status = 'open' AND "
            "(CAST(:after AS uuid) IS NULL OR lead_id > :after) ORDER BY lead_id LIMIT :limit"
        ),
        {"after": after, "limit": limit},
    )
    return [r[0] for r in rows]


async def count_open_leads(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT count(*) FROM leads WHERE status = 'open'")) or 0)


async def open_leads_page(
    conn: AsyncConnection, after: uuid.UUID | None, limit: int
) -> list[LeadRow]:
    rows = await conn.execute(
        text(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE status = 'open' AND "
            "(CAST(:after AS uuid) IS NULL OR lead_id > :after) ORDER BY lead_id LIMIT :limit"
        ),
        {"after": after, "limit": limit},
    )
    return [LeadRow.from_row(r) for r in rows]


# -- model versions (the document itself: leadflow.scoring.model_document) ----------------

# The newest published model's version and stamp and the promoted predictive model's
# version, in one statement: a consumer batch needs both.
_CURRENT_VERSIONS = DriverSql(_VERSIONS_ROW)


async def current_model(conn: AsyncConnection) -> ScoringModel:
    """The newest published model, or the built-in default (version 0) before any publish."""
    return (await MODEL.current(conn)).doc


async def current_versions(conn: AsyncConnection) -> tuple[ScoringModel, int | None]:
    """The current scoring model and the promoted predictive model's version (if any).

    The model comes from the document kind's cache (one parse per published version), so
    an event costs one indexed lookup, and a new publish is seen by the very next event."""
    (row,) = await _CURRENT_VERSIONS.fetch(conn, {})
    return await _resolve_versions(conn, row.version, row.stamp, row.predictive)


async def _resolve_versions(
    conn: AsyncConnection, version: int | None, stamp: str | None, predictive_version: Any
) -> tuple[ScoringModel, int | None]:
    """The model of a ``_VERSIONS_ROW`` and the predictive version, as a pair."""
    predictive = None if predictive_version is None else int(predictive_version)
    return (await MODEL.resolve(conn, version, stamp)).doc, predictive


# -- tracks ---------------------------------------------------------------------------------


async def tracks(conn: AsyncConnection, *, active_only: bool = True) -> list[NurtureTrack]:
    sql = "SELECT doc, version, active FROM tracks"
    if active_only:
        sql += " WHERE active"
    rows = await conn.execute(text(sql + " ORDER BY track_id"))
    return [validate_track({**r.doc, "version": r.version, "active": r.active}) for r in rows]


async def track(conn: AsyncConnection, track_id: str) -> NurtureTrack | None:
    row = (
        await conn.execute(
            text("SELECT doc, version, active FROM tracks WHERE track_id = :id"), {"id": track_id}
        )
    ).first()
    if row is None:
        return None
    return validate_track({**row.doc, "version": row.version, "active": row.active})


async def put_track(conn: AsyncConnection, doc: Mapping[str, Any]) -> int:
    """Create or replace a track; returns its new version."""
    body = {k: v for k, v in doc.items() if k not in {"version", "active"}}
    version = await conn.scalar(
        text(
            "INSERT INTO tracks (track_id, doc, active) VALUES (:id, CAST(:doc AS jsonb), :active) "
            "ON CONFLICT (track_id) DO UPDATE SET doc = EXCLUDED.doc, active = EXCLUDED.active, "
            "version = tracks.version + 1, updated_at = now() RETURNING version"
        ),
        {"id": doc["id"], "doc": json_text(body), "active": bool(doc.get("active", True))},
    )
    return int(version or 1)


async def deactivate_track(conn: AsyncConnection, track_id: str) -> bool:
    result = await conn.execute(
        text(
            "UPDATE tracks SET active = false, version = version + 1, updated_at = now() "
            "WHERE track_id = :id AND active"
        ),
        {"id": track_id},
    )
    return bool(result.rowcount)


# -- re-score jobs --------------------------------------------------------------------------


async def create_job(
    conn: AsyncConnection, job_id: uuid.UUID, model_version: int, total: int
) -> None:
    await conn.execute(
        text("INSERT INTO rescore_jobs (job_id, model_version, total) VALUES (:id, :v, :total)"),
        {"id": job_id, "v": model_version, "total": total},
    )


async def get_job(conn: AsyncConnection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        await conn.execute(text("SELECT * FROM rescore_jobs WHERE job_id = :id"), {"id": job_id})
    ).first()
    return dict(row._mapping) if row else None


async def lock_job(conn: AsyncConnection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text("SELECT * FROM rescore_jobs WHERE job_id = :id FOR UPDATE"), {"id": job_id}
        )
    ).first()
    return dict(row._mapping) if row else None


async def update_job(conn: AsyncConnection, job_id: uuid.UUID, **changes: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    await conn.execute(
        text(f"UPDATE rescore_jobs SET {sets} WHERE job_id = :id"), {"id": job_id, **changes}
    )


async def account_leads(conn: AsyncConnection, key: str) -> list[LeadRow]:
    """The leads whose profile names the account ``key`` (its id, or its company domain)."""
    rows = await conn.execute(
        text(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE (profile->>'account_id' = :k "
            "OR profile->>'account_domain' = :d) AND status <> 'merged' ORDER BY lead_id"
        ),
        {"k": key.strip(), "d": key.strip().lower()},
    )
    return [LeadRow.from_row(r) for r in rows]


async def account_members(
    conn: AsyncConnection, account_ids: list[str]
) -> dict[str, list[tuple[uuid.UUID, dict[str, Any] | None, bool, str | None, bool]]]:
    """Per account not yet qualified: its leads' ``(lead_id, last published score,
    disqualified, domain, registered)``."""
    rows = await conn.execute(
        text(
            "SELECT profile->>'account_id', lead_id, score, disqualified, "
            "profile->>'account_domain', coalesce((profile->>'account_registered')::boolean, "
            "false) FROM leads WHERE profile->>'account_id' = ANY(:ids) AND status <> 'merged' "
            "AND profile->>'account_id' NOT IN (SELECT account_id FROM account_qualifications) "
            "ORDER BY lead_id"
        ),
        {"ids": account_ids},
    )
    out: dict[str, list[tuple[uuid.UUID, dict[str, Any] | None, bool, str | None, bool]]] = {}
    for account_id, lead_id, score, disqualified, domain, registered in rows:
        out.setdefault(account_id, []).append((lead_id, score, disqualified, domain, registered))
    return out


# A customer of its account: won, or in an expansion cycle. The same text as the predicate of
# the partial index leads_customer_account (migration 0007), so the planner can use it.
_CUSTOMER = "(status = 'won' OR (status = 'open' AND cycle = 'expansion'))"


async def is_customer_account(conn: AsyncConnection, account_id: str, but: uuid.UUID) -> bool:
    """Whether another person of the account is a customer (won, or in an expansion)."""
    found = await conn.scalar(
        text(
            f"SELECT EXISTS (SELECT 1 FROM leads WHERE {_CUSTOMER} "
            "AND profile->>'account_id' = :a AND lead_id <> :l)"
        ),
        {"a": account_id, "l": but},
    )
    return bool(found)


async def customers_of_accounts(
    conn: AsyncConnection, account_ids: list[str]
) -> dict[str, set[uuid.UUID]]:
    """The customers (won, or in an expansion) of each of these accounts, in one statement
    served by the partial index ``leads_customer_account`` (migration 0007)."""
    rows = await conn.execute(
        text(
            f"SELECT profile->>'account_id', lead_id FROM leads WHERE {_CUSTOMER} "
            "AND profile->>'account_id' = ANY(:a)"
        ),
        {"a": account_ids},
    )
    found: dict[str, set[uuid.UUID]] = {}
    for account_id, lead_id in rows:
        found.setdefault(account_id, set()).add(lead_id)
    return found


async def mark_account_qualified(
    conn: AsyncConnection, account_id: str, lead_id: uuid.UUID, at: datetime
) -> bool:
    """Record the MQA; False if another writer recorded it first (emit nothing then)."""
    inserted = await conn.scalar(
        text(
            "INSERT INTO account_qualifications (account_id, lead_id, qualified_at) "
            "VALUES (:a, :l, :t) ON CONFLICT (account_id) DO NOTHING RETURNING 1"
        ),
        {"a": account_id, "l": lead_id, "t": at},
    )
    return inserted is not None
