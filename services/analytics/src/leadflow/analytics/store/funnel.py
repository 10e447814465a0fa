"""The funnel, velocity and attribution reports: milestones per inquiry cohort and flows,
stays per stage, won revenue per attribution model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from leadflow.analytics import domain, report_math
from leadflow.analytics.domain import MILESTONES
from leadflow.analytics.projections import MILESTONE_COLUMNS, MILESTONE_OF_COLUMN, MILESTONE_SUMS
from leadflow.analytics.store.query import Filters, number, rollup_where, rounded, stage_row
from leadflow.events.sql import Tx


async def funnel(tx: Tx, f: Filters, grain: str = "month") -> dict[str, Any]:
    """Read from the rollups: whole weeks/months from their rows, edge days from daily rows,
    for the filtered channel/campaign (or its total row): a handful of rows per period."""
    params: dict[str, Any] = {"grain": grain}
    where = rollup_where(
        report_math.split_range(f.start, f.end, grain), report_math.ROLLUP_GRAINS[grain], params, f
    )
    cohorts: dict[date, dict[str, int]] = {}
    totals = {m: 0 for m in (*MILESTONES, "lost", "disqualified")}
    for cohort, *column_sums in await tx.fetch(
        f"SELECT date_trunc(:grain, period::timestamp)::date AS c, {MILESTONE_SUMS} "
        f"FROM funnel_cohort WHERE {where} "
        "GROUP BY 1 ORDER BY 1",
        **params,
    ):
        reached = cohorts.setdefault(cohort, {})
        for column, n in zip(MILESTONE_COLUMNS, column_sums, strict=True):
            if n:
                milestone = MILESTONE_OF_COLUMN[column]
                reached[milestone] = int(n)
                totals[milestone] += int(n)
    fparams: dict[str, Any] = {}
    fwhere = rollup_where(report_math.split_range(f.start, f.end, "month"), "m", fparams, f)
    entries = {s: 0 for s in domain.STAGES}
    flows = []
    for from_stage, to_stage, via, n in await tx.fetch(
        f"SELECT from_stage, to_stage, via, sum(n) FROM funnel_flow WHERE {fwhere} "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
        **fparams,
    ):
        entries[to_stage] = entries.get(to_stage, 0) + int(n)
        flows.append({"from": from_stage, "to": to_stage, "via": via, "count": int(n)})
    waterfall = [stage_row(r) for r in report_math.waterfall(totals)]
    money = await _cohort_money(tx, f, grain)
    cohort_rows = []
    for cohort, counts in cohorts.items():
        for r in report_math.waterfall(counts):
            cohort_rows.append({"cohort": cohort.isoformat(), **stage_row(r)})
    return {
        "filters": f.as_dict(),
        "grain": grain,
        "waterfall": waterfall,
        "outcomes": {"lost": totals["lost"], "disqualified": totals["disqualified"]},
        "cohorts": cohort_rows,
        "period": {
            "entries": entries,
            "recycled": sum(x["count"] for x in flows if x["via"] == "lead.recycled"),
            "rejected": sum(x["count"] for x in flows if x["via"] == "lead.rejected"),
            "disqualified": entries.get("disqualified", 0),
            "flows": flows,
        },
        "rows": [{"cohort": "all", **r} for r in waterfall] + cohort_rows,
        # per cohort and currency: open pipeline, won revenue and won deals of its leads
        "cohort_money": money,
    }


async def _cohort_money(tx: Tx, f: Filters, grain: str) -> list[dict[str, Any]]:
    """Each cohort's money per currency, from the sources rollup's daily rows (the same
    sums as ``sources``, by inquiry cohort): never added across currencies."""
    where, params = f.where("period")
    out = []
    for cohort, currency, pipeline, won, deals in await tx.fetch(
        "SELECT date_trunc(:grain, period::timestamp)::date, currency, sum(pipeline), "
        f"sum(won_revenue), sum(won_deals) FROM source_cohort WHERE grain = 'd' "
        f"AND currency <> '' AND {where} GROUP BY 1, 2 ORDER BY 1, 2",
        **params,
        grain=grain,
    ):
        out.append(
            {
                "cohort": cohort.isoformat(),
                "currency": currency,
                "pipeline": round(number(pipeline), 2),
                "won_revenue": round(number(won), 2),
                "won_deals": int(deals or 0),
            }
        )
    return out


async def velocity(tx: Tx, f: Filters, now: datetime) -> dict[str, Any]:
    where, params = f.where("exited_at::date")
    rows = []
    for stage, n, median, p90, mean in await tx.fetch(
        "SELECT stage, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
        "percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds), avg(seconds) "
        f"FROM stage_stay WHERE {where} GROUP BY stage",
        **params,
    ):
        rows.append(
            {
                "stage": stage,
                "stays": int(n),
                "median_days": rounded(median / 86400),
                "p90_days": rounded(p90 / 86400),
                "mean_days": rounded(mean / 86400),
            }
        )
    order = {s: i for i, s in enumerate(domain.STAGES)}
    rows.sort(key=lambda r: order.get(r["stage"], 99))
    awhere, aparams = f.where("inquiry_at::date")
    age = await tx.fetchrow(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY a), "
        "percentile_cont(0.9) WITHIN GROUP (ORDER BY a) FROM (SELECT "
        "extract(epoch FROM (CAST(:now AS timestamptz) - inquiry_at)) AS a FROM lead_current "
        f"WHERE is_open AND inquiry_at IS NOT NULL AND {awhere}) x",
        **aparams,
        now=now,
    )
    assert age is not None  # an aggregate without GROUP BY has one row
    return {
        "filters": f.as_dict(),
        "stages": rows,
        "open_lead_age": {
            "leads": int(age[0]),
            "median_days": rounded(age[1] / 86400) if age[1] is not None else None,
            "p90_days": rounded(age[2] / 86400) if age[2] is not None else None,
        },
        "rows": rows,
    }


async def attribution(tx: Tx, f: Filters, model: str, group_by: str = "campaign") -> dict[str, Any]:
    """Won revenue credited to each channel or campaign under ``model``: one row per
    channel or campaign and currency (a campaign run through two channels is one row)."""
    where, params = f.where("won_day")
    col = {"channel": "channel", "campaign": "campaign"}[group_by]
    rows = []
    for key, currency, revenue, credit in await tx.fetch(
        f"SELECT {col}, currency, sum(revenue), sum(credit) FROM attribution_revenue "
        f"WHERE model = :model AND {where} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        **params,
        model=model,
    ):
        rows.append(
            {
                group_by: key,
                "currency": currency,
                "revenue": round(number(revenue), 2),
                "deals": round(number(credit), 4),
            }
        )
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["currency"]] = totals.get(r["currency"], 0.0) + r["revenue"]
    return {
        "filters": f.as_dict(),
        "model": model,
        "group_by": group_by,
        "totals": [{"currency": c, "revenue": round(v, 2)} for c, v in sorted(totals.items())],
        "rows": rows,
    }
