"""Who a figure counts: the predicates that pick, lead by lead, the leads behind a report's
figure, so a drill-down (``GET /v1/leads/search?reached=...``) lists exactly what was counted.

The funnel, its weekly cohorts and the sources report add up the ``Effects`` of folding each
lead's events into its ``LeadJourney`` (``domain.fold``), kept per lead in ``analytics_fold``.
A milestone is counted in the lead's inquiry cohort once the cohort is known
(``counted``), the first time it is reached (``reached``); an outcome (``lost``,
``disqualified``) while it holds; money per currency as ``money[currency]`` =
``[open pipeline, won revenue, won deals]``. So the leads behind a figure are the states
that satisfy the same conditions, read here from the state itself, never re-derived from
the log. Stuck leads share ``stuck_condition`` with ``store.stuck`` (one SQL text for both).

``tests/integration/analytics/test_drill_down.py`` checks every figure against its list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadflow.analytics import domain, report_math
from leadflow.analytics.rep_projection import REP_COLUMNS, SLA_COLUMNS

# Milestones and outcomes a cohort figure counts (the funnel's bars and ``outcomes``).
REACHABLE: tuple[str, ...] = (*domain.MILESTONES, "lost", "disqualified")
# The fold state as jsonb, joined as ``fs`` (``analytics_fold.state`` is stored as text).
FOLD_JOIN = "JOIN (SELECT lead_id, state::jsonb AS s FROM analytics_fold) fs ON fs.lead_id = {lead}"
# The inquiry cohort day: ``LeadJourney.cohort_day`` (the UTC day of ``inquiry_at``).
COHORT_DAY = "((fs.s->>'inquiry_at')::timestamptz AT TIME ZONE 'UTC')::date"


@dataclass(frozen=True)
class CohortQuery:
    """A figure's selection: the inquiry cohort's days (inclusive, UTC), the milestone or
    outcome reached, and money held in a currency (won deals / open pipeline)."""

    start: date | None = None
    end: date | None = None
    reached: str | None = None
    won_in: str | None = None
    pipeline_in: str | None = None

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (self.start, self.end, self.reached, self.won_in, self.pipeline_in)
        )


def cohort_condition(q: CohortQuery) -> tuple[str, dict[str, Any]]:
    """The SQL condition over ``fs`` (``FOLD_JOIN``) a cohort figure counts a lead by."""
    conds = ["(fs.s->>'counted')::boolean"]
    params: dict[str, Any] = {}
    if q.start is not None:
        conds.append(f"{COHORT_DAY} >= :cohort_start")
        params["cohort_start"] = q.start
    if q.end is not None:
        conds.append(f"{COHORT_DAY} <= :cohort_end")
        params["cohort_end"] = q.end
    if q.reached in ("lost", "disqualified"):
        conds.append(f"coalesce((fs.s->>'{q.reached}')::boolean, false)")
    elif q.reached is not None:
        conds.append("fs.s->'reached' @> jsonb_build_array(CAST(:reached AS text))")
        params["reached"] = q.reached
    if q.won_in is not None:
        conds.append("coalesce((fs.s->'money'->CAST(:won_in AS text)->>2)::float8, 0) > 0")
        params["won_in"] = q.won_in
    if q.pipeline_in is not None:
        conds.append("coalesce((fs.s->'money'->CAST(:pipeline_in AS text)->>0)::float8, 0) <> 0")
        params["pipeline_in"] = q.pipeline_in
    return " AND ".join(conds), params


# The money of the selected leads, per currency: the figure's own sums over the same leads.
MONEY_SUMS = (
    "SELECT m.key, sum((m.value->>0)::numeric), sum((m.value->>1)::numeric), "
    "sum((m.value->>2)::numeric) FROM picked, jsonb_each(picked.money) m GROUP BY 1 ORDER BY 1"
)


def stuck_condition(
    where: str,
    where_params: dict[str, Any],
    now: datetime,
    expected_days: dict[str, float],
    stage: str | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """Open leads of ``lead_current`` in a stage for longer than its expected duration
    (None: no stage qualifies); ``where`` is the report's date/segment filter on the same
    table. ``store.stuck`` counts with it and the drill-down lists with it."""
    stages = [s for s in expected_days if stage in (None, s)]
    if not stages:
        return None
    ors: list[str] = []
    params: dict[str, Any] = dict(where_params)
    for i, s in enumerate(stages):
        ors.append(f"(stage = :s{i} AND stage_entered_at < :c{i})")
        params[f"s{i}"] = s
        params[f"c{i}"] = report_math.stuck_cutoff(s, now, expected_days)
    return f"is_open AND ({' OR '.join(ors)}) AND {where}", params


# The reps and SLA figures count events (``RepsProjection``): each count column has its rows
# in ``rep_fact`` / ``sla_fact`` (``kind`` = the column), written by the same fold step.
HANDOFF_KINDS: tuple[str, ...] = REP_COLUMNS[:8]
SLA_KINDS: tuple[str, ...] = SLA_COLUMNS[:7]


@dataclass(frozen=True)
class FactQuery:
    """A reps or SLA figure: its count column (``kind``) and the row it is on."""

    table: str  # rep_fact | sla_fact
    kind: str
    rep: str | None = None
    team: str | None = None
    queue: str | None = None
    policy: str | None = None


def fact_condition(
    where: str, where_params: dict[str, Any], q: FactQuery
) -> tuple[str, dict[str, Any]]:
    """The events a reps/SLA figure counts: the report's own date/segment filter (``where``,
    ``Filters.where("day")`` as ``store.reps`` uses it) and the row's keys, over ``q.table``."""
    conds = [where, "kind = :fact_kind"]
    params = {**where_params, "fact_kind": q.kind}
    for column, value in (
        ("rep_id", q.rep),
        ("team_id", q.team),
        ("queue_id", q.queue),
        ("policy_id", q.policy),
    ):
        if value is not None:
            conds.append(f"{column} = :fact_{column}")
            params[f"fact_{column}"] = value
    return " AND ".join(conds), params
