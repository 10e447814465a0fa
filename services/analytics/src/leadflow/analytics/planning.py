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
from typing import Any

from leadflow.analytics.domain import MILESTONES, rate


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
