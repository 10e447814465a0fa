"""Decision state under the routing decision lock: open and daily counts and round-robin
credits read in one round trip, and a group of decisions written back in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.routing.domain import (
    LiveState,
)
from leadflow.routing.store.leads import AssignmentRow, LeadRow

# Held by whoever decides (a consumer batch, a reassignment) until its transaction ends:
# replicas take turns, each reading the counts and credits the previous one committed, so
# round-robin stays fair and caps hold across them. Scoped to the schema (tests and
# benchmarks share one database).
_DECISION_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.routing-decisions')), "
    "(SELECT revision FROM config_revision WHERE id = 1)"
)

# Open-lead counts come from ``rep_load`` plus the deltas the ``leads`` trigger appended
# since; the lock holder folds the deltas in while reading them (one statement).
_FOLD_DELTAS = """
    moved AS (DELETE FROM rep_load_delta RETURNING rep_id, delta),
    agg AS (SELECT rep_id, sum(delta)::integer AS d FROM moved GROUP BY rep_id),
    folded AS (
        INSERT INTO rep_load (rep_id, open) SELECT rep_id, d FROM agg ORDER BY rep_id
        ON CONFLICT (rep_id) DO UPDATE SET open = rep_load.open + EXCLUDED.open
    )
"""
_READ_DELTAS = """
    agg AS (SELECT rep_id, sum(delta)::integer AS d FROM rep_load_delta GROUP BY rep_id)
"""
_STATE = """
    WITH {deltas}
    SELECT 'o', rep_id, NULL::date, coalesce(r.open, 0) + coalesce(a.d, 0), NULL::jsonb
    FROM rep_load r FULL JOIN agg a USING (rep_id)
    UNION ALL
    SELECT 'd', rep_id, day, assigned, NULL FROM rep_daily WHERE day BETWEEN :a AND :b
    UNION ALL
    SELECT 'p', pool, NULL, NULL, credits FROM rr_pointers
"""
_LOAD_FOR_DECISION = _STATE.format(deltas=_FOLD_DELTAS)
_LOAD_READ_ONLY = _STATE.format(deltas=_READ_DELTAS)


async def decision_lock(tx: Tx) -> int:
    """Take the routing decision lock (re-entrant within the transaction); returns the
    configuration revision, read by the same statement (one round trip, not two)."""
    row = await tx.fetchrow(_DECISION_LOCK)
    assert row is not None
    return int(row[1] or 0)


async def load_state(tx: Tx, now: datetime, *, fold: bool) -> LiveState:
    """Open counts, daily counts (days around ``now`` cover every time zone) and RR credits
    in one round trip. ``fold`` (only under the decision lock) compacts the load deltas."""
    statement = _LOAD_FOR_DECISION if fold else _LOAD_READ_ONLY
    rows = await tx.fetch(
        statement, a=now.date() - timedelta(days=1), b=now.date() + timedelta(days=1)
    )
    state = LiveState()
    for kind, key, day, n, credits in rows:
        if kind == "o":
            state.open_counts[key] = int(n)
        elif kind == "d":
            state.new_counts[(key, day)] = int(n)
        else:
            state.pointers[key] = {k: int(v) for k, v in (credits or {}).items()}
    return state


async def count_new(tx: Tx, rep_id: str, day: date) -> None:
    await tx.execute(
        "INSERT INTO rep_daily (rep_id, day, assigned) VALUES (:r, :d, 1) "
        "ON CONFLICT (rep_id, day) DO UPDATE SET assigned = rep_daily.assigned + 1",
        r=rep_id,
        d=day,
    )


_WRITE_DECISIONS = """
    WITH ins AS (
        INSERT INTO assignments (lead_id, cycle, decided_at, event_id, explanation)
        SELECT * FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_cycles AS integer[]),
                             CAST(:a_at AS timestamptz[]), CAST(:a_events AS uuid[]),
                             CAST(:a_expl AS jsonb[]))
        ON CONFLICT (lead_id, cycle) DO NOTHING RETURNING 1
    ),
    upd AS (
        UPDATE leads l SET stage = v.stage, held_from = v.held_from, cycle = v.cycle,
            buying_cycle = v.buying_cycle, snapshot = v.snapshot, assignee_kind = v.kind, rep_id = v.rep_id,
            team_id = v.team_id, queue_id = v.queue_id,
            excluded_reps = ARRAY(SELECT jsonb_array_elements_text(v.excluded)),
            assigned_at = v.assigned_at, updated_at = now()
        FROM unnest(CAST(:l_ids AS uuid[]), CAST(:l_stages AS text[]),
                    CAST(:l_held AS text[]), CAST(:l_cycles AS integer[]),
                    CAST(:l_snapshots AS jsonb[]), CAST(:l_kinds AS text[]),
                    CAST(:l_reps AS text[]), CAST(:l_teams AS text[]),
                    CAST(:l_queues AS text[]), CAST(:l_excluded AS jsonb[]),
                    CAST(:l_at AS timestamptz[]), CAST(:l_buying AS text[]))
             AS v(lead_id, stage, held_from, cycle, snapshot, kind, rep_id, team_id,
                  queue_id, excluded, assigned_at, buying_cycle)
        WHERE l.lead_id = v.lead_id
        RETURNING 1
    ),
    daily AS (
        INSERT INTO rep_daily (rep_id, day, assigned)
        SELECT * FROM unnest(CAST(:d_reps AS text[]), CAST(:d_days AS date[]),
                             CAST(:d_counts AS integer[])) ORDER BY 1, 2
        ON CONFLICT (rep_id, day) DO UPDATE SET assigned = rep_daily.assigned + EXCLUDED.assigned
    ),
    ptr AS (
        INSERT INTO rr_pointers (pool, credits)
        SELECT * FROM unnest(CAST(:p_pools AS text[]), CAST(:p_credits AS jsonb[])) ORDER BY 1
        ON CONFLICT (pool) DO UPDATE SET credits = EXCLUDED.credits, updated_at = now()
    )
    SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)
    """


async def write_decisions(
    tx: Tx,
    assignments: Sequence[AssignmentRow],
    leads: Sequence[LeadRow],
    state: LiveState | None,
) -> None:
    """Everything a group of decisions changed, in one statement: the arbiter rows, each
    lead's owner and stage, the daily counts and the pool credits (no ``state``: only
    stages moved). The caller holds the lead rows and the decision lock, so every arbiter
    row must go in; one that does not means the state was not what the decisions were made
    on, and the transaction must not commit."""
    daily: list[tuple[tuple[str, date], int]] = []
    pools: list[str] = []
    credits: list[str] = []
    if state is not None:
        daily = sorted(state.new_delta.items())
        pools = sorted(state.dirty_pools)
        credits = [json_text(dict(state.pointers[p])) for p in pools]
    row = await tx.fetchrow(
        _WRITE_DECISIONS,
        a_ids=[a.lead_id for a in assignments],
        a_cycles=[a.cycle for a in assignments],
        a_at=[a.decided_at for a in assignments],
        a_events=[a.event_id for a in assignments],
        a_expl=[json_text(a.explanation) for a in assignments],
        l_ids=[r.lead_id for r in leads],
        l_stages=[r.stage.value if r.stage else None for r in leads],
        l_held=[r.held_from.value if r.held_from else None for r in leads],
        l_cycles=[r.cycle for r in leads],
        l_snapshots=[r.snapshot.model_dump_json() for r in leads],
        l_kinds=[r.assignee_kind for r in leads],
        l_reps=[r.rep_id for r in leads],
        l_teams=[r.team_id for r in leads],
        l_queues=[r.queue_id for r in leads],
        l_excluded=[json_text(r.excluded_reps) for r in leads],
        l_at=[r.assigned_at for r in leads],
        l_buying=[r.buying_cycle.value for r in leads],
        d_reps=[k[0] for k, _ in daily],
        d_days=[k[1] for k, _ in daily],
        d_counts=[n for _, n in daily],
        p_pools=pools,
        p_credits=credits,
    )
    assert row is not None
    if row[0] != len(assignments) or row[1] != len(leads):
        raise RuntimeError(
            f"routing decisions not recorded whole: {row[0]}/{len(assignments)} assignments, "
            f"{row[1]}/{len(leads)} leads"
        )
    if state is not None:
        state.new_delta.clear()
        state.dirty_pools.clear()
