"""SLA clocks (``sla_instances``, ``sla_escalations``): the consumer batch's set-based
reads and its one write (``save_leads``, which also writes the leads' facts), and the
timer handlers' writes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.sla_monitor.domain import Closing, LeadClocks, RaisedStep, SlaInstance

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


_ACTIVE_SLAS = (
    f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances "
    "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND status IN ('open', 'breached') "
    "ORDER BY lead_id, started_at, sla_id FOR UPDATE"
)


async def active_slas(tx: Tx, lead_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[SlaInstance]]:
    """Open or breached-unmet clocks of the leads, locked against a timer firing concurrently."""
    rows = await tx.fetch(_ACTIVE_SLAS, ids=sorted(set(lead_ids)))
    out: dict[uuid.UUID, list[SlaInstance]] = {}
    for r in rows:
        out.setdefault(r.lead_id, []).append(_instance(r))
    return out


async def get_sla(tx: Tx, sla_id: str) -> tuple[uuid.UUID, SlaInstance] | None:
    row = await tx.fetchrow(
        f"SELECT {_INSTANCE_COLUMNS} FROM sla_instances WHERE sla_id = :id FOR UPDATE", id=sla_id
    )
    return (row.lead_id, _instance(row)) if row else None


# -- one batch's writes ---------------------------------------------------------------


async def save_leads(tx: Tx, changed: Mapping[uuid.UUID, LeadClocks]) -> None:
    """The batch's changed leads in one round trip: their facts and last-seen times, the
    clocks they started (inserted with their final status when they also ended) and the
    stored clocks they ended. Every part touches different rows, which is what lets them
    share one statement; the timers are the kernel's (``Decision.schedule`` / ``cancel``)."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    new = [(lead_id, n) for lead_id, s in changed.items() for n in s.started.values()]
    closings = {k: c for s in changed.values() for k, c in s.ended.items()}
    if changed:
        ids = list(changed)
        facts = [changed[i].facts for i in ids]
        params |= {
            "l_ids": ids,
            "l_grade": [f.grade for f in facts],
            "l_region": [f.region for f in facts],
            "l_country": [f.country for f in facts],
            "l_channel": [f.channel for f in facts],
            "l_rep": [f.rep_id for f in facts],
            "l_team": [f.team_id for f in facts],
            "l_seen": [
                json_text({k: v.isoformat() for k, v in changed[i].seen.items()}) for i in ids
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
    if new:
        rows = [n for _, n in new]
        ends = [closings.get(n.sla.sla_id) for n in rows]
        params |= {
            "n_id": [n.sla.sla_id for n in rows],
            "n_lead": [lead_id for lead_id, _ in new],
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
    started = {n.sla.sla_id for _, n in new}
    existing = {k: c for k, c in closings.items() if k not in started}
    if existing:
        params |= {
            "c_id": list(existing),
            "c_status": [c.status for c in existing.values()],
            **_closing_params("c_", list(existing.values())),
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
    if parts:
        await tx.execute("WITH " + ",".join(parts) + " SELECT 1", **params)


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


async def mark_warned(tx: Tx, sla_id: str, at: datetime) -> None:
    await tx.execute(
        "UPDATE sla_instances SET warned_at = :at WHERE sla_id = :id", id=sla_id, at=at
    )


async def record_escalations(
    tx: Tx,
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
    await tx.execute(
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
            """,
        id=sla_id,
        steps=[s.step for s in steps],
        actions=[s.action for s in steps],
        ats=[s.at for s in steps],
        notify=[json_text(s.notify) for s in steps],
        breached=breached_at,
        late=late_by_seconds,
        top=max((s.step for s in steps), default=None),
        last=steps[-1].action if steps else None,
    )
