"""The sources report: milestones, money, cost and ROI per first-touch source."""

from __future__ import annotations

from datetime import date
from typing import Any

from leadflow.analytics import report_math
from leadflow.analytics.projections import MILESTONE_COLUMNS, SOURCE_COLUMNS
from leadflow.analytics.report_math import CostRow, SourceMetrics
from leadflow.analytics.store.costs import costs
from leadflow.analytics.store.query import Filters, number, rollup_where, rounded
from leadflow.events.sql import Tx

SOURCE_DIMENSIONS = {
    "channel": "channel",
    "campaign": "campaign",
    "form": "form_id",
    "event": "event_key",
}


MONEY_COLUMNS = ("pipeline", "won_revenue", "won_deals")


async def source_counts(tx: Tx, f: Filters, group_by: str) -> dict[str, dict[str, Any]]:
    """Per source: the milestone counts (``counts``) and, per currency, open pipeline, won
    revenue and won deals (``money``)."""
    col = SOURCE_DIMENSIONS[group_by]
    where, params = f.where("period", dates=False)
    where += " AND " + rollup_where(report_math.split_range(f.start, f.end, "month"), "m", params)
    sums = ", ".join(f"sum({c})" for c in SOURCE_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    for row in await tx.fetch(
        f"SELECT {col}, currency, {sums} FROM source_cohort WHERE {where} "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        **params,
    ):
        values = {c: number(v) for c, v in zip(SOURCE_COLUMNS, row[2:], strict=True)}
        source = out.setdefault(
            row[0], {"counts": dict.fromkeys(MILESTONE_COLUMNS, 0), "money": {}}
        )
        for c in MILESTONE_COLUMNS:
            source["counts"][c] += int(values[c])
        if row[1]:
            source["money"][row[1]] = {c: values[c] for c in MONEY_COLUMNS}
    return out


def _cost_rows(raw: list[dict[str, Any]]) -> list[tuple[str, CostRow]]:
    return [
        (
            c["currency"],
            CostRow(
                c["campaign"],
                c["channel"],
                date.fromisoformat(c["period_start"]),
                date.fromisoformat(c["period_end"]),
                c["amount"],
            ),
        )
        for c in raw
    ]


async def sources(tx: Tx, f: Filters, group_by: str = "channel") -> dict[str, Any]:
    """Per source: counts and rates, and every money figure per currency (``money``: open
    pipeline, won revenue, cost, cost per lead, ROI), never added across currencies."""
    counts = await source_counts(tx, f, group_by)
    cost_rows = _cost_rows(await costs(tx))
    rows: list[dict[str, Any]] = []
    for source, data in counts.items():
        c = data["counts"]
        costs_by_currency: dict[str, float] = {}
        if group_by in ("channel", "campaign"):
            mine = [
                (cur, x)
                for cur, x in cost_rows
                if getattr(x, group_by) == source
                and (not f.channel or x.channel == f.channel)
                and (not f.campaign or x.campaign == f.campaign)
            ]
            for cur in sorted({cur for cur, _ in mine}):
                costs_by_currency[cur] = report_math.prorated_cost(
                    [x for k, x in mine if k == cur], f.start, f.end
                )
        base = SourceMetrics(
            int(c["inquiries"]),
            int(c["mqls"]),
            int(c["sqls"]),
            int(c["opportunities"]),
            int(c["won"]),
            0.0,
            0.0,
            None,
        )
        money = []
        for cur in sorted(set(data["money"]) | set(costs_by_currency)):
            m = data["money"].get(cur, dict.fromkeys(MONEY_COLUMNS, 0.0))
            metrics = SourceMetrics(
                base.inquiries,
                base.mqls,
                base.sqls,
                base.opportunities,
                base.won,
                m["pipeline"],
                m["won_revenue"],
                costs_by_currency.get(cur),
            )
            money.append(
                {
                    "currency": cur,
                    "pipeline": round(metrics.pipeline, 2),
                    "won_revenue": round(metrics.won_revenue, 2),
                    "won_deals": int(m["won_deals"]),
                    "cost": rounded(metrics.cost, 2),
                    "cost_per_lead": rounded(metrics.cost_per_lead, 2),
                    "roi": rounded(metrics.roi),
                }
            )
        rows.append(
            {
                "source": source,
                "inquiries": base.inquiries,
                "mqls": base.mqls,
                "sals": int(c["sals"]),
                "sqls": base.sqls,
                "opportunities": base.opportunities,
                "won": base.won,
                "lost": int(c["lost"]),
                "disqualified": int(c["disqualified"]),
                "mql_rate": rounded(base.mql_rate),
                "sql_rate": rounded(base.sql_rate),
                "win_rate": rounded(base.win_rate),
                "money": money,
            }
        )
    rows.sort(key=lambda r: (-int(r["won"]), -int(r["inquiries"]), str(r["source"])))
    return {"filters": f.as_dict(), "group_by": group_by, "rows": rows}
