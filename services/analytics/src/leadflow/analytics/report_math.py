"""Report arithmetic: pure rules that turn summed counts into what a report shows (rates,
the waterfall, rollup periods, percentiles, prorated cost and ROI, stuck leads)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from leadflow.analytics.domain import CLOSED_STAGES, DEFAULT_EXPECTED_DAYS, MILESTONES
from leadflow.events.lifecycle import target_stage


def rate(numerator: float, denominator: float) -> float | None:
    """A ratio, or None when there is nothing to divide by (never a fake 0 %)."""
    if not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True, slots=True)
class StageRow:
    stage: str
    count: int
    conversion_to_next: float | None  # share of this stage that reached the next milestone
    conversion_from_inquiry: float | None


def waterfall(counts: Mapping[str, int]) -> list[StageRow]:
    """Milestone counts with conversion to the next milestone and from inquiry."""
    rows = []
    inquiries = counts.get("inquiry", 0)
    for i, m in enumerate(MILESTONES):
        n = counts.get(m, 0)
        nxt = counts.get(MILESTONES[i + 1], 0) if i + 1 < len(MILESTONES) else None
        rows.append(
            StageRow(
                stage=m,
                count=n,
                conversion_to_next=rate(nxt, n) if nxt is not None else None,
                conversion_from_inquiry=rate(n, inquiries),
            )
        )
    return rows


def stage_of_event(event_type: str) -> str | None:
    """The stage an event type enters (for display), per the kernel's lifecycle table."""
    stage = target_stage(event_type)
    return stage.value if stage is not None else None


# -- rollups ----------------------------------------------------------------------------

ALL = ""  # segment value of a rollup row that sums every channel (or campaign)
ROLLUP_GRAINS: dict[str, str] = {"day": "d", "week": "w", "month": "m"}


def next_period(start: date, grain: str) -> date:
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    if grain == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown grain {grain!r}")


@dataclass(frozen=True, slots=True)
class RangeSplit:
    """A date range as whole ``grain`` periods [full_from, full_to] (period starts; None =
    unbounded) plus the leftover days at the edges, each an inclusive (first, last) pair."""

    full_from: date | None
    full_to: date | None
    has_full: bool
    edges: tuple[tuple[date | None, date | None], ...]


def split_range(start: date | None, end: date | None, grain: str) -> RangeSplit:
    """Split [start, end] (inclusive, None = open) into whole periods and edge days."""
    first = None if start is None else cohort_start(start, grain)
    if first is not None and start is not None and first != start:
        first = next_period(first, grain)
    last = None if end is None else cohort_start(end, grain)
    if last is not None and end is not None and next_period(last, grain) - timedelta(days=1) != end:
        last = _previous_period(last, grain)
    if first is not None and last is not None and first > last:
        return RangeSplit(None, None, False, ((start, end),))
    edges: list[tuple[date | None, date | None]] = []
    if start is not None and first is not None and start < first:
        edges.append((start, first - timedelta(days=1)))
    if end is not None and last is not None:
        after = next_period(last, grain)
        if after <= end:
            edges.append((after, end))
    return RangeSplit(first, last, True, tuple(edges))


def _previous_period(start: date, grain: str) -> date:
    if grain == "week":
        return start - timedelta(days=7)
    if grain == "month":
        return (start - timedelta(days=1)).replace(day=1)
    return start - timedelta(days=1)


def cohort_start(day: date, grain: str) -> date:
    """First day of the ISO week (Monday) or month containing ``day``."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "day":
        return day
    raise ValueError(f"unknown cohort grain {grain!r}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile, the same definition as SQL ``percentile_cont``."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class CostRow:
    campaign: str
    channel: str
    start: date
    end: date  # inclusive
    amount: float


def prorated_cost(costs: Iterable[CostRow], start: date | None, end: date | None) -> float:
    """Cost falling inside [start, end], spread evenly over each cost row's days."""
    total = 0.0
    for c in costs:
        lo = max(c.start, start) if start else c.start
        hi = min(c.end, end) if end else c.end
        if hi < lo:
            continue
        days = (c.end - c.start).days + 1
        total += c.amount * ((hi - lo).days + 1) / days
    return total


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    inquiries: int
    mqls: int
    sqls: int
    opportunities: int
    won: int
    pipeline: float
    won_revenue: float
    cost: float | None

    @property
    def mql_rate(self) -> float | None:
        return rate(self.mqls, self.inquiries)

    @property
    def sql_rate(self) -> float | None:
        return rate(self.sqls, self.inquiries)

    @property
    def win_rate(self) -> float | None:
        return rate(self.won, self.opportunities)

    @property
    def cost_per_lead(self) -> float | None:
        return rate(self.cost, self.inquiries) if self.cost is not None else None

    @property
    def roi(self) -> float | None:
        """(won revenue - cost) / cost."""
        if self.cost is None or not self.cost:
            return None
        return (self.won_revenue - self.cost) / self.cost


def is_stuck(
    stage: str,
    entered_at: datetime,
    now: datetime,
    expected_days: Mapping[str, float] = DEFAULT_EXPECTED_DAYS,
) -> bool:
    """An open lead is stuck once it sat in its stage longer than the stage's expected time."""
    if stage in CLOSED_STAGES or stage not in expected_days:
        return False
    return now - entered_at > timedelta(days=expected_days[stage])


def stuck_cutoff(
    stage: str, now: datetime, expected_days: Mapping[str, float] = DEFAULT_EXPECTED_DAYS
) -> datetime:
    """Leads that entered ``stage`` before this moment are stuck (the SQL form of is_stuck)."""
    return now - timedelta(days=expected_days[stage])
