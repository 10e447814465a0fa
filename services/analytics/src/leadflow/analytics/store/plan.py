"""The lead plan: the inquiries, MQLs, ... a revenue goal needs at the measured rates,
per source, with the reps it takes."""

from __future__ import annotations

from typing import Any

from leadflow.analytics import domain, planning, report_math, segments
from leadflow.analytics.domain import MILESTONES
from leadflow.analytics.projections import MILESTONE_COLUMNS
from leadflow.analytics.store.query import Filters, rounded, stage_row
from leadflow.analytics.store.sources import source_counts
from leadflow.events.sql import Tx


class PlanCurrencyError(ValueError):
    """The goal's currency is ambiguous (several currencies won, none named)."""

    def __init__(self, currencies: list[str]) -> None:
        super().__init__(f"revenue was won in {', '.join(currencies)}: name the goal's currency")
        self.currencies = currencies


async def plan(
    tx: Tx,
    f: Filters,
    revenue: float,
    period: str,
    mix: dict[str, float] | None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Leads needed for a revenue goal in one currency: the average deal is measured on the
    deals won in that currency only (conversion rates are currency-free counts)."""
    per_channel = await source_counts(tx, f, "channel")
    won_in = sorted(
        {cur for c in per_channel.values() for cur, m in c["money"].items() if m["won_deals"]}
    )
    if currency is None:
        if len(won_in) > 1:
            raise PlanCurrencyError(won_in)
        currency = won_in[0] if won_in else domain.DEFAULT_CURRENCY

    def milestones(c: dict[str, Any]) -> dict[str, int]:
        return {
            m: int(c[col])
            for m, col in zip(
                MILESTONES,
                ("inquiries", "mqls", "sals", "sqls", "opportunities", "won"),
                strict=True,
            )
        }

    def money(c: dict[str, Any], column: str) -> float:
        return float(c["money"].get(currency, {}).get(column, 0.0))

    total = dict.fromkeys(MILESTONE_COLUMNS, 0)
    won_revenue = won_deals = 0.0
    for c in per_channel.values():
        for k in MILESTONE_COLUMNS:
            total[k] += c["counts"][k]
        won_revenue += money(c, "won_revenue")
        won_deals += money(c, "won_deals")
    overall = planning.lead_plan(revenue, milestones(total), won_revenue, "all", int(won_deals))
    lines = planning.plan_mix(
        revenue,
        {
            s: (milestones(c["counts"]), money(c, "won_revenue"), int(money(c, "won_deals")))
            for s, c in per_channel.items()
        },
        mix,
    )
    # Measured run rate over the filtered range, scaled to one plan period.
    days = None
    if f.start and f.end:
        days = (f.end - f.start).days + 1
    measured_per_period = (
        {m: round(n * planning.period_days(period) / days, 1) for m, n in milestones(total).items()}
        if days
        else None
    )

    def line(p: planning.PlanLine) -> dict[str, Any]:
        return {
            "segment": p.segment,
            "currency": currency,
            "revenue": round(p.revenue, 2),
            "avg_deal": rounded(p.avg_deal, 2),
            "feasible": p.feasible,
            **p.needed,
        }

    rows = [line(overall), *(line(p) for p in lines)]
    goal = sum(p.revenue for p in lines)
    for row in rows[1:]:
        counts = per_channel.get(row["segment"], {}).get("counts")
        row["share"] = round(row["revenue"] / goal, 4) if goal else None
        row["measured_rates"] = planning.measured_rates(milestones(counts)) if counts else None
    capacity = await _rep_capacity(tx, f, rows[0].get("mql"), planning.period_days(period))
    return {
        "capacity": capacity,
        "filters": f.as_dict(),
        "revenue": revenue,
        "currency": currency,
        "period": period,
        "measured_rates": {
            r["stage"]: r["conversion_to_next"]
            for r in map(stage_row, report_math.waterfall(milestones(total)))
        },
        "measured_per_period": measured_per_period,
        "plan": rows[0],
        "by_source": rows[1:],
        "rows": rows,
    }


async def _rep_capacity(
    tx: Tx, f: Filters, planned_mqls: int | None, period_days: int
) -> dict[str, Any]:
    """The reps the planned MQLs need, at the per-rep assignment rate measured in range."""
    where, params = f.where("day")
    row = await tx.fetchrow(
        "SELECT count(DISTINCT rep_id) FILTER (WHERE assigned > 0), "
        "coalesce(sum(assigned), 0), min(day), max(day) "
        f"FROM rep_daily WHERE {where} AND rep_id <> :none",
        **params,
        none=segments.UNKNOWN,
    )
    assert row is not None  # an aggregate without GROUP BY has one row
    days = None
    if f.start and f.end:
        days = (f.end - f.start).days + 1
    elif row[2] is not None and row[3] is not None:
        days = (row[3] - row[2]).days + 1
    return planning.rep_capacity(planned_mqls, int(row[1]), int(row[0]), days, period_days)
