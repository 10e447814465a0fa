"""SQL for sla-monitor's own tables (unqualified names: the engine pins ``search_path``).

Tables: ``sla_policy_sets`` (every published policy set version: a kernel versioned
document, ``POLICIES``), ``sla_calendars``,
``sla_leads`` (segment + owner facts learnt from consumed events), ``sla_instances`` (one row
per SLA clock with its verdict), ``sla_escalations`` (ladder steps raised) and
``sla_config_revision`` (bumped by triggers whenever policy sets or calendars change).

The consumer path is set-based: a batch locks its leads and reads their running clocks with
one statement each and writes everything back with one (``write_batch``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.catalogue.sla import SlaPolicyPublished
from leadflow.events.db import DriverSql, driver_sql, json_text
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.envelope import EventPayload
from leadflow.events.timers import Timer, timer_writes
from leadflow.sla_monitor.domain import (
    DEFAULT_CALENDAR_ID,
    LeadFacts,
    Outcome,
    SlaInstance,
    SlaPolicy,
    default_calendar,
    default_policies,
)

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


class PolicySetDoc(BaseModel):
    """The published document: the whole policy set (editing one policy publishes it all)."""

    model_config = ConfigDict(extra="forbid")
    policies: list[SlaPolicy]


def policy_errors(
    policies: Sequence[SlaPolicy], calendar_ids: set[str], prefix: str
) -> list[dict[str, Any]]:
    """Duplicate policy ids and unknown calendars, each naming its field (``prefix[i].x``)."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, p in enumerate(policies):
        where = f"{prefix}[{i}]" if prefix else ""
        if p.policy_id in seen:
            errors.append({"field": f"{where}.policy_id".lstrip("."), "message": "duplicate id"})
        seen.add(p.policy_id)
        if p.calendar_id is not None and p.calendar_id not in calendar_ids:
            errors.append(
                {
                    "field": f"{where}.calendar_id".lstrip("."),
                    "message": f"unknown calendar {p.calendar_id!r}",
                }
            )
    return errors


async def _check_policy_set(conn: AsyncConnection, doc: PolicySetDoc) -> list[dict[str, Any]]:
    return policy_errors(doc.policies, set(await calendars(conn)), "policies")


async def _policies_published(
    conn: AsyncConnection, document: Document[PolicySetDoc]
) -> EventPayload:
    """``SlaPolicyPublished`` on ``stream_id("sla-policies")``: subscribers and the audit
    trail see every version. The policy set table's trigger bumps ``sla_config_revision``."""
    return SlaPolicyPublished(
        policies_version=document.version,
        policies=[p.model_dump(mode="json") for p in document.doc.policies],
        published_by=document.published_by,
    )


POLICIES: DocumentKind[PolicySetDoc] = DocumentKind(
    name="sla-policies",
    table="sla_policy_sets",
    model=PolicySetDoc,
    event=_policies_published,
    title="policy set",
    builtin=lambda: PolicySetDoc(policies=default_policies()),
    check=_check_policy_set,
    summary={"policies": "jsonb_array_length(doc->'policies')"},
)


def policy_set_of(document: Document[PolicySetDoc]) -> PolicySet:
    return PolicySet(
        version=document.version,
        policies=document.doc.policies,
        published_by=document.published_by,
        published_at=document.published_at,
    )


async def current_policy_set(conn: AsyncConnection) -> PolicySet:
    return policy_set_of(await POLICIES.current(conn))


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
            {"id": calendar.calendar_id, "b": json_text(calendar.model_dump(mode="json"))},
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
        {"id": calendar.calendar_id, "b": json_text(calendar.model_dump(mode="json"))},
    )


async def delete_calendar(conn: AsyncConnection, calendar_id: str) -> bool:
    result = await conn.execute(
        text("DELETE FROM sla_calendars WHERE calendar_id = :id"), {"id": calendar_id}
    )
    return bool(result.rowcount)


# -- configuration cache --------------------------------------------------------------


@dataclass(frozen=True)
class SlaConfig:
    """The parsed policy set and calendars as of one ``sla_config_revision``."""

    schema: str
    revision: int
    policy_set: PolicySet
    calendars: dict[str, BusinessCalendar]


_REVISION = text("SELECT current_schema() AS schema, revision FROM sla_config_revision")


class ConfigCache:
    """Policy set + calendars parsed once per configuration revision, per schema.

    The admin API changes them at any time and on any replica; a statement trigger bumps
    ``sla_config_revision`` on every change (migration 0002), so one cheap read of that row
    per transaction decides whether the cached copy is still current. Inside one transaction
    (a consumer batch, a timer sweep) the configuration is read at most once.
    """

    def __init__(self) -> None:
        self._by_schema: dict[str, SlaConfig] = {}
        self._by_tx: WeakKeyDictionary[Any, SlaConfig] = WeakKeyDictionary()

    async def get(self, conn: AsyncConnection, known: tuple[str, int] | None = None) -> SlaConfig:
        """``known`` is ``(schema, revision)`` when the caller read it already (piggybacked)."""
        tx = conn.sync_connection.get_transaction() if conn.sync_connection else None
        if tx is not None and (memo := self._by_tx.get(tx)) is not None:
            return memo
        if known is None:
            row = (await conn.execute(_REVISION)).one()
            known = (row.schema, int(row.revision))
        schema, revision = known
        config = self._by_schema.get(schema)
        if config is None or config.revision != revision:
            config = SlaConfig(
                schema, revision, await current_policy_set(conn), await calendars(conn)
            )
            self._by_schema[schema] = config
        if tx is not None:
            self._by_tx[tx] = config
        return config


# -- lead facts -----------------------------------------------------------------------

LeadState = tuple[LeadFacts, dict[str, datetime]]

# Creating missing rows and locking existing ones in one statement, in lead id order: two
# transactions handling the same lead (its routing and scoring events on different replicas)
# serialise here, and the second reads what the first committed. The configuration revision
# rides along so the batch needs no separate round trip for it.
_LOCK_LEADS = DriverSql(
    """
    WITH up AS (
        INSERT INTO sla_leads (lead_id)
        SELECT id FROM unnest(CAST(:ids AS uuid[])) AS t(id) ORDER BY id
        ON CONFLICT (lead_id) DO UPDATE SET lead_id = EXCLUDED.lead_id
        RETURNING lead_id, grade, region, country, channel, rep_id, team_id, seen
    )
    SELECT up.*, r.revision, current_schema() AS schema FROM up CROSS JOIN sla_config_revision r
    """
)


async def lock_leads(
    conn: AsyncConnection, lead_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, LeadState], tuple[str, int]]:
    """Every lead's facts and when each event type was last seen, row-locked for this
    transaction (created empty when new), plus ``(schema, config revision)``."""
    rows = await _LOCK_LEADS.fetch(conn, {"ids": sorted(set(lead_ids))})
    if not rows:  # pragma: no cover - migration 0002 inserts the one revision row
        raise RuntimeError("lock_leads: no lead ids given, or the sla_config_revision row is gone")
    states: dict[uuid.UUID, LeadState] = {}
    for row in rows:
        facts = LeadFacts(
            grade=row.grade,
            region=row.region,
            country=row.country,
            channel=row.channel,
            rep_id=row.rep_id,
            team_id=row.team_id,
        )
        seen = {k: datetime.fromisoformat(v) for k, v in (row.seen or {}).items()}
        states[row.lead_id] = (facts, seen)
    return states, (rows[0].schema, int(rows[0].revision))


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


_ACTIVE_SLAS = DriverSql(
    f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances "
    "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND status IN ('open', 'breached') "
    "ORDER BY lead_id, started_at, sla_id FOR UPDATE"
)


async def active_slas(
    conn: AsyncConnection, lead_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SlaInstance]]:
    """Open or breached-unmet clocks of the leads, locked against a timer firing concurrently."""
    rows = await _ACTIVE_SLAS.fetch(conn, {"ids": sorted(set(lead_ids))})
    out: dict[uuid.UUID, list[SlaInstance]] = {}
    for r in rows:
        out.setdefault(r.lead_id, []).append(_instance(r))
    return out


async def get_sla(conn: AsyncConnection, sla_id: str) -> tuple[uuid.UUID, SlaInstance] | None:
    row = (
        await conn.execute(
            text(f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances WHERE sla_id = :id FOR UPDATE"),
            {"id": sla_id},
        )
    ).first()
    return (row.lead_id, _instance(row)) if row else None


# -- one batch's writes ---------------------------------------------------------------


@dataclass(frozen=True)
class Closing:
    """How a clock ended: ``met`` (with its verdict) or ``stopped`` (no verdict)."""

    status: Literal["met", "stopped"]
    at: datetime
    by_event: str
    on_time: bool | None = None
    elapsed_seconds: float | None = None
    elapsed_business_seconds: float | None = None
    late_by_seconds: float | None = None  # met: how long after the deadline (0 on time)


@dataclass(frozen=True)
class NewSla:
    lead_id: uuid.UUID
    sla: SlaInstance
    policy: SlaPolicy
    started_by_event: str


@dataclass
class BatchWrites:
    """Everything one consumer batch changes, written with one statement at flush.

    Every part touches different rows (a clock started in this batch is inserted with its
    final status; ``closings`` only name clocks that existed before; a timer key is either
    scheduled or deleted), which is what lets them share one statement.
    """

    leads: dict[uuid.UUID, LeadState] = field(default_factory=dict)
    new: dict[str, NewSla] = field(default_factory=dict)
    closings: dict[str, Closing] = field(default_factory=dict)  # new or existing clocks
    schedule: dict[str, Timer] = field(default_factory=dict)
    cancel: set[str] = field(default_factory=set)

    def schedule_timer(self, timer: Timer) -> None:
        self.cancel.discard(timer.key)
        self.schedule[timer.key] = timer

    def cancel_timer(self, key: str, *, stored: bool) -> None:
        """``stored`` is False for a clock started in this batch: its timers never hit disk."""
        self.schedule.pop(key, None)
        if stored:
            self.cancel.add(key)


async def write_batch(conn: AsyncConnection, w: BatchWrites) -> None:
    """Lead facts, new clocks, ended clocks and timers of a batch in one round trip."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if w.leads:
        ids = list(w.leads)
        facts = [w.leads[i][0] for i in ids]
        params |= {
            "l_ids": ids,
            "l_grade": [f.grade for f in facts],
            "l_region": [f.region for f in facts],
            "l_country": [f.country for f in facts],
            "l_channel": [f.channel for f in facts],
            "l_rep": [f.rep_id for f in facts],
            "l_team": [f.team_id for f in facts],
            "l_seen": [
                json_text({k: v.isoformat() for k, v in w.leads[i][1].items()}) for i in ids
            ],
        }
        parts.append(
            """
            leads_w AS (
                INSERT INTO sla_leads (lead_id, grade, region, country, channel, rep_id,
                                       team_id, seen)
                SELECT * FROM unnest(CAST(:l_ids AS uuid[]), CAST(:l_grade AS text[]),
                    CAST(:l_region AS text[]), CAST(:l_country AS text[]),
                    CAST(:l_channel AS text[]), CAST(:l_rep AS text[]), CAST(:l_team AS text[]),
                    CAST(:l_seen AS jsonb[]))
                ON CONFLICT (lead_id) DO UPDATE SET grade = EXCLUDED.grade,
                    region = EXCLUDED.region, country = EXCLUDED.country,
                    channel = EXCLUDED.channel, rep_id = EXCLUDED.rep_id,
                    team_id = EXCLUDED.team_id, seen = EXCLUDED.seen, updated_at = now()
            )"""
        )
    if w.new:
        rows = list(w.new.values())
        ends = [w.closings.get(n.sla.sla_id) for n in rows]
        params |= {
            "n_id": [n.sla.sla_id for n in rows],
            "n_lead": [n.lead_id for n in rows],
            "n_policy": [n.sla.policy_id for n in rows],
            "n_version": [n.sla.policy_version for n in rows],
            "n_measures": [n.policy.measures for n in rows],
            "n_side": [n.policy.side for n in rows],
            "n_status": [e.status if e else "open" for e in ends],
            "n_started_by": [n.started_by_event for n in rows],
            "n_started": [n.sla.started_at for n in rows],
            "n_warn": [n.sla.warn_at for n in rows],
            "n_due": [n.sla.due_at for n in rows],
            "n_business": [n.sla.business_time for n in rows],
            "n_calendar": [n.sla.calendar_id for n in rows],
            "n_rep": [n.sla.rep_id for n in rows],
            "n_team": [n.sla.team_id for n in rows],
            **_closing_params("n_", ends),
        }
        parts.append(
            """
            new_w AS (
                INSERT INTO sla_instances (sla_id, lead_id, policy_id, policy_version, measures,
                    side, status, started_by_event, started_at, warn_at, due_at, business_time,
                    calendar_id, rep_id, team_id, met_at, met_by_event, on_time,
                    elapsed_seconds, elapsed_business_seconds, closed_at, closed_by_event,
                    late_by_seconds)
                SELECT u.sla_id, u.lead_id, u.policy_id, u.policy_version, u.measures, u.side,
                    u.status, u.started_by, u.started_at, u.warn_at, u.due_at, u.business,
                    u.calendar_id, u.rep_id, u.team_id,
                    CASE WHEN u.status = 'met' THEN u.closed_at END,
                    CASE WHEN u.status = 'met' THEN u.closed_by END,
                    u.on_time, u.e, u.eb, u.closed_at, u.closed_by, u.late
                FROM unnest(CAST(:n_id AS text[]), CAST(:n_lead AS uuid[]),
                    CAST(:n_policy AS text[]), CAST(:n_version AS integer[]),
                    CAST(:n_measures AS text[]), CAST(:n_side AS text[]),
                    CAST(:n_status AS text[]), CAST(:n_started_by AS text[]),
                    CAST(:n_started AS timestamptz[]), CAST(:n_warn AS timestamptz[]),
                    CAST(:n_due AS timestamptz[]), CAST(:n_business AS boolean[]),
                    CAST(:n_calendar AS text[]), CAST(:n_rep AS text[]),
                    CAST(:n_team AS text[]), CAST(:n_closed_at AS timestamptz[]),
                    CAST(:n_closed_by AS text[]), CAST(:n_on_time AS boolean[]),
                    CAST(:n_e AS double precision[]), CAST(:n_eb AS double precision[]),
                    CAST(:n_late AS double precision[]))
                    AS u(sla_id, lead_id, policy_id, policy_version, measures, side, status,
                         started_by, started_at, warn_at, due_at, business, calendar_id,
                         rep_id, team_id, closed_at, closed_by, on_time, e, eb, late)
            )"""
        )
    existing = {k: c for k, c in w.closings.items() if k not in w.new}
    if existing:
        closings = list(existing.values())
        params |= {
            "c_id": list(existing),
            "c_status": [c.status for c in closings],
            **_closing_params("c_", closings),
        }
        parts.append(
            """
            closed_w AS (
                UPDATE sla_instances AS s SET status = u.status,
                    met_at = CASE WHEN u.status = 'met' THEN u.closed_at END,
                    met_by_event = CASE WHEN u.status = 'met' THEN u.closed_by END,
                    on_time = u.on_time, elapsed_seconds = u.e,
                    elapsed_business_seconds = u.eb, closed_at = u.closed_at,
                    closed_by_event = u.closed_by,
                    late_by_seconds = CASE
                        WHEN u.status = 'met' THEN u.late
                        WHEN s.breached_at IS NOT NULL
                            THEN GREATEST(CAST(extract(epoch FROM u.closed_at - s.due_at)
                                 AS float8), 0)
                        ELSE s.late_by_seconds END
                FROM unnest(CAST(:c_id AS text[]), CAST(:c_status AS text[]),
                    CAST(:c_closed_at AS timestamptz[]), CAST(:c_closed_by AS text[]),
                    CAST(:c_on_time AS boolean[]), CAST(:c_e AS double precision[]),
                    CAST(:c_eb AS double precision[]), CAST(:c_late AS double precision[]))
                    AS u(sla_id, status, closed_at, closed_by, on_time, e, eb, late)
                WHERE s.sla_id = u.sla_id
            )"""
        )
    timer_parts, timer_params = timer_writes(
        sorted(w.cancel), [w.schedule[k] for k in sorted(w.schedule)]
    )
    parts += timer_parts
    params |= timer_params
    if parts:
        await driver_sql("WITH " + ",".join(parts) + " SELECT 1").execute(conn, params)


def _closing_params(prefix: str, ends: Sequence[Closing | None]) -> dict[str, list[Any]]:
    return {
        f"{prefix}closed_at": [e.at if e else None for e in ends],
        f"{prefix}closed_by": [e.by_event if e else None for e in ends],
        f"{prefix}on_time": [e.on_time if e else None for e in ends],
        f"{prefix}e": [e.elapsed_seconds if e else None for e in ends],
        f"{prefix}eb": [e.elapsed_business_seconds if e else None for e in ends],
        f"{prefix}late": [e.late_by_seconds if e else None for e in ends],
    }


# -- timer handlers' writes -----------------------------------------------------------


async def mark_warned(conn: AsyncConnection, sla_id: str, at: datetime) -> None:
    await conn.execute(
        text("UPDATE sla_instances SET warned_at = :at WHERE sla_id = :id"),
        {"id": sla_id, "at": at},
    )


@dataclass(frozen=True)
class RaisedStep:
    step: int
    action: str
    at: datetime
    notify: list[str]


async def record_escalations(
    conn: AsyncConnection,
    sla_id: str,
    steps: Sequence[RaisedStep],
    *,
    breached_at: datetime | None = None,
    late_by_seconds: float | None = None,
) -> None:
    """Mark the clock breached (when ``breached_at`` is given) and record the raised ladder
    steps, in one statement."""
    if breached_at is None and not steps:
        return
    await conn.execute(
        text(
            """
            WITH esc AS (
                INSERT INTO sla_escalations (sla_id, step, action, raised_at, notify)
                SELECT :id, * FROM unnest(CAST(:steps AS integer[]), CAST(:actions AS text[]),
                    CAST(:ats AS timestamptz[]), CAST(:notify AS jsonb[]))
                ON CONFLICT DO NOTHING
            )
            UPDATE sla_instances SET
                status = CASE WHEN CAST(:breached AS timestamptz) IS NULL THEN status
                              ELSE 'breached' END,
                breached_at = coalesce(CAST(:breached AS timestamptz), breached_at),
                late_by_seconds = CASE WHEN CAST(:breached AS timestamptz) IS NULL
                                       THEN late_by_seconds ELSE CAST(:late AS double precision) END,
                escalation_step = GREATEST(escalation_step, coalesce(CAST(:top AS integer), 0)),
                last_action = coalesce(CAST(:last AS text), last_action)
            WHERE sla_id = :id
            """
        ),
        {
            "id": sla_id,
            "steps": [s.step for s in steps],
            "actions": [s.action for s in steps],
            "ats": [s.at for s in steps],
            "notify": [json_text(s.notify) for s in steps],
            "breached": breached_at,
            "late": late_by_seconds,
            "top": max((s.step for s in steps), default=None),
            "last": steps[-1].action if steps else None,
        },
    )


# -- reads ----------------------------------------------------------------------------

_READ_COLUMNS = (
    "sla_id, lead_id, policy_id, policy_version, measures, side, status, started_by_event, "
    "started_at, warn_at, due_at, business_time, calendar_id, rep_id, team_id, warned_at, "
    "breached_at, CASE WHEN status = 'breached' THEN GREATEST(CAST(extract(epoch FROM "
    "CAST(:now AS timestamptz) - due_at) AS float8), 0) ELSE late_by_seconds END "
    "AS late_by_seconds, "
    "escalation_step, last_action, met_at, met_by_event, on_time, "
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
    now: datetime,
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
        {
            "rep": rep_id,
            "team": team_id,
            "policy": policy_id,
            "limit": limit,
            "offset": offset,
            "now": now,
        },
    )
    return [dict(r._mapping) for r in rows]


async def lead_slas(
    conn: AsyncConnection, lead_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Every SLA of the lead; ``late_by_seconds`` is how long after its deadline it was met,
    stopped (after a breach), or, still breached, how late it is ``now``."""
    rows = await conn.execute(
        text(
            f"SELECT {_READ_COLUMNS} FROM sla_instances WHERE lead_id = :id "
            "ORDER BY started_at, sla_id"
        ),
        {"id": lead_id, "now": now},
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
                   elapsed_business_seconds, breached_at IS NOT NULL AS breached
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
            Outcome(r.status, r.on_time, r.elapsed_seconds, r.elapsed_business_seconds, r.breached),
        )
        for r in rows
    ]
