"""The lead plan's grown-up parts: each source's measured rates beside its share of the goal,
and the sales capacity (reps) the planned MQL volume needs. Pure; ``store.plan`` feeds it.

Capacity is measured, not configured: the MQLs one active rep was assigned per day over the
measured range, scaled to the plan period. A rep is active when assigned at least one lead
in the range. The reps needed are the planned MQLs over that per-rep figure, rounded up.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadflow.analytics.domain import MILESTONES
from leadflow.analytics.report_math import rate


def measured_rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Milestone -> conversion to the next one (``inquiry`` -> MQL rate, ...)."""
    out: dict[str, float | None] = {}
    for here, nxt in itertools.pairwise(MILESTONES):
        r = rate(counts.get(nxt, 0), counts.get(here, 0))
        out[here] = round(r, 4) if r is not None else None
    return out


def rep_capacity(
    planned_mqls: int | None,
    assigned: int,
    active_reps: int,
    measured_days: int | None,
    period_days: int,
) -> dict[str, Any]:
    """How many reps the planned MQLs need at the measured per-rep assignment rate."""
    per_rep = None
    if active_reps and measured_days:
        per_rep = assigned / active_reps / measured_days * period_days
    needed = (
        math.ceil(round(planned_mqls / per_rep, 9))
        if per_rep and planned_mqls is not None
        else None
    )
    return {
        "active_reps": active_reps,
        "assigned": assigned,
        "measured_days": measured_days,
        "mqls_per_rep_per_period": round(per_rep, 2) if per_rep is not None else None,
        "planned_mqls": planned_mqls,
        "reps_needed": needed,
        "reps_short": max(0, needed - active_reps) if needed is not None else None,
    }


PLAN_STEPS: tuple[str, ...] = ("inquiry", "mql", "sal", "sql", "opportunity", "won")


@dataclass(frozen=True, slots=True)
class PlanLine:
    segment: str
    revenue: float
    avg_deal: float | None
    needed: dict[str, int]  # milestone -> how many
    feasible: bool  # False when a measured rate is zero/unknown


def lead_plan(
    revenue: float,
    counts: Mapping[str, int],
    won_revenue: float,
    segment: str = "all",
    won_deals: int | None = None,
) -> PlanLine:
    """Work back from a revenue goal through measured milestone conversion rates.

    wins = ceil(revenue / average deal); each earlier milestone = ceil(next / rate). The
    average deal is ``won_revenue`` over ``won_deals`` (the deals won in the goal's
    currency; default: every won lead).
    """
    won = counts.get("won", 0) if won_deals is None else won_deals
    avg_deal = rate(won_revenue, won)
    needed: dict[str, int] = {}
    if not avg_deal or revenue <= 0:
        return PlanLine(
            segment,
            revenue,
            avg_deal,
            {m: 0 for m in PLAN_STEPS} if revenue <= 0 else {},
            revenue <= 0,
        )
    n = math.ceil(round(revenue / avg_deal, 9))
    needed["won"] = n
    for i in range(len(PLAN_STEPS) - 2, -1, -1):
        here, nxt = PLAN_STEPS[i], PLAN_STEPS[i + 1]
        r = rate(counts.get(nxt, 0), counts.get(here, 0))
        if not r:
            return PlanLine(segment, revenue, avg_deal, needed, False)
        n = math.ceil(round(n / r, 9))
        needed[here] = n
    return PlanLine(segment, revenue, avg_deal, {m: needed[m] for m in PLAN_STEPS}, True)


def plan_mix(
    revenue: float,
    per_source: Mapping[
        str, tuple[Mapping[str, int], float] | tuple[Mapping[str, int], float, int]
    ],
    mix: Mapping[str, float] | None = None,
) -> list[PlanLine]:
    """Split the goal over sources (by ``mix`` or by each source's share of won revenue)
    and plan each with its own measured rates (and, given, its won deals)."""
    if mix is None:
        total = sum(v[1] for v in per_source.values())
        mix = {s: (v[1] / total if total else 0.0) for s, v in per_source.items()}
    share_sum = sum(mix.values())
    lines = []
    for source, share in mix.items():
        if share <= 0:
            continue
        entry = per_source.get(source, ({}, 0.0))
        deals = entry[2] if len(entry) > 2 else None
        lines.append(lead_plan(revenue * share / share_sum, entry[0], entry[1], source, deals))
    return lines


PERIOD_DAYS: dict[str, int] = {"week": 7, "month": 30, "quarter": 91, "year": 365}


def period_days(period: str) -> int:
    if period not in PERIOD_DAYS:
        raise ValueError(f"period must be one of {sorted(PERIOD_DAYS)}")
    return PERIOD_DAYS[period]
