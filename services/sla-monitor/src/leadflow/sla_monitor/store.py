"""SQL for sla-monitor's own tables (unqualified names: the engine pins ``search_path``).

Tables: ``sla_policy_sets`` (every published policy set version), ``sla_calendars``,
``sla_leads`` (segment + owner facts learnt from consumed events), ``sla_instances`` (one row
per SLA clock with its verdict) and ``sla_escalations`` (ladder steps raised).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.sla_monitor.domain import (
    DEFAULT_CALENDAR_ID,
    BusinessCalendar,
    LeadFacts,
    Outcome,
    SlaInstance,
    SlaPolicy,
    default_calendar,
    default_policies,
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- policy sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySet:
    version: int  # 0 = the built-in defaults, nothing published yet
    policies: list[SlaPolicy]
    published_by: str | None = None
    published_at: datetime | None = None

    @property
    def source(self) -> str:
        return "built-in" if self.version == 0 else "published"


async def current_policy_set(conn: AsyncConnection) -> PolicySet:
    row = (
        await conn.execute(
            text(
                "SELECT version, policies, published_by, published_at FROM sla_policy_sets "
                "ORDER BY version DESC LIMIT 1"
            )
        )
    ).first()
    if row is None:
        return PolicySet(0, default_policies())
    return _policy_set(row)


async def policy_set(conn: AsyncConnection, version: int) -> PolicySet | None:
    if version == 0:
        return PolicySet(0, default_policies())
    row = (
        await conn.execute(
            text(
                "SELECT version, policies, published_by, published_at FROM sla_policy_sets "
                "WHERE version = :v"
            ),
            {"v": version},
        )
    ).first()
    return _policy_set(row) if row else None


async def policy_versions(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT version, jsonb_array_length(policies) AS n, published_by, published_at "
            "FROM sla_policy_sets ORDER BY version DESC"
        )
    )
    return [
        {
            "version": r.version,
            "policies": r.n,
            "published_by": r.published_by,
            "published_at": r.published_at,
        }
        for r in rows
    ]


def _policy_set(row: Any) -> PolicySet:
    return PolicySet(
        version=row.version,
        policies=[SlaPolicy.model_validate(p) for p in row.policies],
        published_by=row.published_by,
        published_at=row.published_at,
    )


async def insert_policy_set(
    conn: AsyncConnection, policies: Sequence[SlaPolicy], published_by: str | None
) -> int:
    """Store the next version; serialised so two admins never get the same version number."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sla_policy_sets'))"))
    version = int(
        await conn.scalar(text("SELECT coalesce(max(version), 0) + 1 FROM sla_policy_sets")) or 1
    )
    await conn.execute(
        text(
            "INSERT INTO sla_policy_sets (version, policies, published_by) "
            "VALUES (:v, CAST(:p AS jsonb), :by)"
        ),
        {
            "v": version,
            "p": _json([p.model_dump(mode="json") for p in policies]),
            "by": published_by,
        },
    )
    return version


# -- calendars ------------------------------------------------------------------------


async def calendars(conn: AsyncConnection) -> dict[str, BusinessCalendar]:
    """Every calendar, with the built-in default when none was stored under ``default``."""
    rows = await conn.execute(text("SELECT body FROM sla_calendars ORDER BY calendar_id"))
    out = {c.calendar_id: c for c in (BusinessCalendar.model_validate(r.body) for r in rows)}
    out.setdefault(DEFAULT_CALENDAR_ID, default_calendar())
    return out


async def get_calendar(conn: AsyncConnection, calendar_id: str) -> BusinessCalendar | None:
    body = await conn.scalar(
        text("SELECT body FROM sla_calendars WHERE calendar_id = :id"), {"id": calendar_id}
    )
    if body is None:
        return default_calendar() if calendar_id == DEFAULT_CALENDAR_ID else None
    return BusinessCalendar.model_validate(body)


async def put_calendar(conn: AsyncConnection, calendar: BusinessCalendar) -> bool:
    """Create or replace; True when it was created."""
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb))
                ON CONFLICT (calendar_id) DO UPDATE SET body = EXCLUDED.body, updated_at = now()
                RETURNING (xmax = 0) AS created
                """
            ),
            {"id": calendar.calendar_id, "b": _json(calendar.model_dump(mode="json"))},
        )
    ).first()
    return bool(row and row.created)


async def seed_calendar(conn: AsyncConnection, calendar: BusinessCalendar) -> None:
    """Store ``calendar`` unless one with its id exists (ops' edits win over the seed)."""
    await conn.execute(
        text(
            "INSERT INTO sla_calendars (calendar_id, body) VALUES (:id, CAST(:b AS jsonb)) "
            "ON CONFLICT (calendar_id) DO NOTHING"
        ),
        {"id": calendar.calendar_id, "b": _json(calendar.model_dump(mode="json"))},
    )


async def delete_calendar(conn: AsyncConnection, calendar_id: str) -> bool:
    result = await conn.execute(
        text("DELETE FROM sla_calendars WHERE calendar_id = :id"), {"id": calendar_id}
    )
    return bool(result.rowcount)


# -- lead facts -----------------------------------------------------------------------


async def lead_state(
    conn: AsyncConnection, lead_id: uuid.UUID
) -> tuple[LeadFacts, dict[str, datetime]] | None:
    """The lead's facts and when each event type was last seen, locked for this transaction."""
    row = (
        await conn.execute(
            text(
                "SELECT grade, region, country, channel, rep_id, team_id, seen FROM sla_leads "
                "WHERE lead_id = :id FOR UPDATE"
            ),
            {"id": lead_id},
        )
    ).first()
    if row is None:
        return None
    facts = LeadFacts(
        grade=row.grade,
        region=row.region,
        country=row.country,
        channel=row.channel,
        rep_id=row.rep_id,
        team_id=row.team_id,
    )
    seen = {k: datetime.fromisoformat(v) for k, v in (row.seen or {}).items()}
    return facts, seen


async def save_lead_state(
    conn: AsyncConnection, lead_id: uuid.UUID, facts: LeadFacts, seen: dict[str, datetime]
) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO sla_leads (lead_id, grade, region, country, channel, rep_id, team_id, seen)
            VALUES (:id, :grade, :region, :country, :channel, :rep_id, :team_id,
                    CAST(:seen AS jsonb))
            ON CONFLICT (lead_id) DO UPDATE SET grade = EXCLUDED.grade,
                region = EXCLUDED.region, country = EXCLUDED.country,
                channel = EXCLUDED.channel, rep_id = EXCLUDED.rep_id,
                team_id = EXCLUDED.team_id, seen = EXCLUDED.seen, updated_at = now()
            """
        ),
        {
            "id": lead_id,
            "grade": facts.grade,
            "region": facts.region,
            "country": facts.country,
            "channel": facts.channel,
            "rep_id": facts.rep_id,
            "team_id": facts.team_id,
            "seen": _json({k: v.isoformat() for k, v in seen.items()}),
        },
    )


# -- SLA instances --------------------------------------------------------------------

_INSTANCE_COLUMNS = (
    "sla_id, lead_id, policy_id, policy_version, status, started_at, due_at, warn_at, "
    "business_time, calendar_id, rep_id, team_id, escalation_step"
)


def _instance(row: Any) -> SlaInstance:
    return SlaInstance(
        sla_id=row.sla_id,
        policy_id=row.policy_id,
        policy_version=row.policy_version,
        started_at=row.started_at,
        due_at=row.due_at,
        warn_at=row.warn_at,
        business_time=row.business_time,
        calendar_id=row.calendar_id,
        status=row.status,
        rep_id=row.rep_id,
        team_id=row.team_id,
        escalation_step=row.escalation_step,
    )


async def active_slas(conn: AsyncConnection, lead_id: uuid.UUID) -> list[SlaInstance]:
    """Open or breached-unmet clocks of a lead, locked against a timer firing concurrently."""
    rows = await conn.execute(
        text(
            f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances WHERE lead_id = :id "
            "AND status IN ('open', 'breached') ORDER BY started_at, sla_id FOR UPDATE"
        ),
        {"id": lead_id},
    )
    return [_instance(r) for r in rows]


async def get_sla(conn: AsyncConnection, sla_id: str) -> tuple[uuid.UUID, SlaInstance] | None:
    row = (
        await conn.execute(
            text(f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances WHERE sla_id = :id FOR UPDATE"),
            {"id": sla_id},
        )
    ).first()
    return (row.lead_id, _instance(row)) if row else None


async def insert_sla(
    conn: AsyncConnection,
    lead_id: uuid.UUID,
    sla: SlaInstance,
    policy: SlaPolicy,
    started_by_event: str,
) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO sla_instances (sla_id, lead_id, policy_id, policy_version, measures, side,
                status, started_by_event, started_at, warn_at, due_at, business_time,
                calendar_id, rep_id, team_id)
            VALUES (:sla_id, :lead_id, :policy_id, :policy_version, :measures, :side, 'open',
                :started_by, :started_at, :warn_at, :due_at, :business, :calendar_id,
                :rep_id, :team_id)
            """
        ),
        {
            "sla_id": sla.sla_id,
            "lead_id": lead_id,
            "policy_id": sla.policy_id,
            "policy_version": sla.policy_version,
            "measures": policy.measures,
            "side": policy.side,
            "started_by": started_by_event,
            "started_at": sla.started_at,
            "warn_at": sla.warn_at,
            "due_at": sla.due_at,
            "business": sla.business_time,
            "calendar_id": sla.calendar_id,
            "rep_id": sla.rep_id,
            "team_id": sla.team_id,
        },
    )


async def mark_met(
    conn: AsyncConnection,
    sla_id: str,
    *,
    met_at: datetime,
    met_by_event: str,
    on_time: bool,
    elapsed_seconds: float,
    elapsed_business_seconds: float,
) -> None:
    await conn.execute(
        text(
            """
            UPDATE sla_instances SET status = 'met', met_at = :at, met_by_event = :by,
                on_time = :on_time, elapsed_seconds = :e, elapsed_business_seconds = :eb,
                closed_at = :at, closed_by_event = :by
            WHERE sla_id = :id
            """
        ),
        {
            "id": sla_id,
            "at": met_at,
            "by": met_by_event,
            "on_time": on_time,
            "e": elapsed_seconds,
            "eb": elapsed_business_seconds,
        },
    )


async def mark_stopped(conn: AsyncConnection, sla_id: str, *, at: datetime, by_event: str) -> None:
    await conn.execute(
        text(
            "UPDATE sla_instances SET status = 'stopped', closed_at = :at, closed_by_event = :by "
            "WHERE sla_id = :id"
        ),
        {"id": sla_id, "at": at, "by": by_event},
    )


async def mark_warned(conn: AsyncConnection, sla_id: str, at: datetime) -> None:
    await conn.execute(
        text("UPDATE sla_instances SET warned_at = :at WHERE sla_id = :id"),
        {"id": sla_id, "at": at},
    )


async def mark_breached(
    conn: AsyncConnection, sla_id: str, *, at: datetime, late_by_seconds: float
) -> None:
    await conn.execute(
        text(
            "UPDATE sla_instances SET status = 'breached', breached_at = :at, "
            "late_by_seconds = :late WHERE sla_id = :id"
        ),
        {"id": sla_id, "at": at, "late": late_by_seconds},
    )


async def record_escalation(
    conn: AsyncConnection, sla_id: str, step: int, action: str, at: datetime, notify: list[str]
) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO sla_escalations (sla_id, step, action, raised_at, notify)
            VALUES (:id, :step, :action, :at, CAST(:notify AS jsonb)) ON CONFLICT DO NOTHING
            """
        ),
        {"id": sla_id, "step": step, "action": action, "at": at, "notify": _json(notify)},
    )
    await conn.execute(
        text(
            "UPDATE sla_instances SET escalation_step = GREATEST(escalation_step, :step), "
            "last_action = :action WHERE sla_id = :id"
        ),
        {"id": sla_id, "step": step, "action": action},
    )


# -- reads ----------------------------------------------------------------------------

_READ_COLUMNS = (
    "sla_id, lead_id, policy_id, policy_version, measures, side, status, started_by_event, "
    "started_at, warn_at, due_at, business_time, calendar_id, rep_id, team_id, warned_at, "
    "breached_at, late_by_seconds, escalation_step, last_action, met_at, met_by_event, on_time, "
    "elapsed_seconds, elapsed_business_seconds, closed_at, closed_by_event"
)


async def open_breaches(
    conn: AsyncConnection,
    *,
    rep_id: str | None,
    team_id: str | None,
    policy_id: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"""
            SELECT {_READ_COLUMNS} FROM sla_instances
            WHERE status = 'breached'
              AND (CAST(:rep AS text) IS NULL OR rep_id = :rep)
              AND (CAST(:team AS text) IS NULL OR team_id = :team)
              AND (CAST(:policy AS text) IS NULL OR policy_id = :policy)
            ORDER BY due_at, sla_id LIMIT :limit OFFSET :offset
            """
        ),
        {"rep": rep_id, "team": team_id, "policy": policy_id, "limit": limit, "offset": offset},
    )
    return [dict(r._mapping) for r in rows]


async def lead_slas(conn: AsyncConnection, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"SELECT {_READ_COLUMNS} FROM sla_instances WHERE lead_id = :id "
            "ORDER BY started_at, sla_id"
        ),
        {"id": lead_id},
    )
    slas = [dict(r._mapping) for r in rows]
    if not slas:
        return slas
    esc = await conn.execute(
        text(
            "SELECT sla_id, step, action, raised_at, notify FROM sla_escalations "
            "WHERE sla_id = ANY(CAST(:ids AS text[])) ORDER BY sla_id, step"
        ),
        {"ids": [s["sla_id"] for s in slas]},
    )
    by_sla: dict[str, list[dict[str, Any]]] = {}
    for r in esc:
        by_sla.setdefault(r.sla_id, []).append(
            {"step": r.step, "action": r.action, "raised_at": r.raised_at, "notify": r.notify}
        )
    for s in slas:
        s["escalations"] = by_sla.get(s["sla_id"], [])
    return slas


async def lead_known(conn: AsyncConnection, lead_id: uuid.UUID) -> bool:
    return bool(
        await conn.scalar(
            text("SELECT EXISTS (SELECT 1 FROM sla_leads WHERE lead_id = :id)"), {"id": lead_id}
        )
    )


@dataclass(frozen=True)
class OutcomeRow:
    policy_id: str
    measures: str | None
    team_id: str | None
    rep_id: str | None
    outcome: Outcome


async def outcomes(
    conn: AsyncConnection,
    *,
    policy_id: str | None,
    team_id: str | None,
    rep_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[OutcomeRow]:
    rows = await conn.execute(
        text(
            """
            SELECT policy_id, measures, team_id, rep_id, status, on_time, elapsed_seconds,
                   elapsed_business_seconds
            FROM sla_instances
            WHERE (CAST(:policy AS text) IS NULL OR policy_id = :policy)
              AND (CAST(:team AS text) IS NULL OR team_id = :team)
              AND (CAST(:rep AS text) IS NULL OR rep_id = :rep)
              AND (CAST(:since AS timestamptz) IS NULL OR started_at >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR started_at < :until)
            """
        ),
        {"policy": policy_id, "team": team_id, "rep": rep_id, "since": since, "until": until},
    )
    return [
        OutcomeRow(
            r.policy_id,
            r.measures,
            r.team_id,
            r.rep_id,
            Outcome(r.status, r.on_time, r.elapsed_seconds, r.elapsed_business_seconds),
        )
        for r in rows
    ]
