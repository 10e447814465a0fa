"""Report queries: every answer comes from the projection tables, never from scanning the log.

The projection tables are small pre-aggregates (per day x segment), so a report is a
``GROUP BY`` over a date range; the rates, percentiles of finished stays, ROI and plans are
then computed with ``domain``. The one exception is a lead's timeline, read from the log by
its ``(lead_id, occurred_at)`` index (one lead, not a scan).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.analytics import domain, planning, report_math, segments
from leadflow.analytics.cohort import stuck_condition
from leadflow.analytics.domain import MILESTONES
from leadflow.analytics.projections import (
    MILESTONE_COLUMNS,
    MILESTONE_OF_COLUMN,
    MILESTONE_SUMS,
    SOURCE_COLUMNS,
)
from leadflow.analytics.rep_projection import REP_COLUMNS, SLA_COLUMNS
from leadflow.analytics.report_math import CostRow, SourceMetrics


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive days) and segment filters shared by every report."""

    start: date | None = None
    end: date | None = None
    channel: str | None = None
    campaign: str | None = None

    def where(
        self, day_column: str, *, segments: bool = True, dates: bool = True
    ) -> tuple[str, dict[str, Any]]:
        conds: list[str] = ["TRUE"]
        params: dict[str, Any] = {}
        if not dates:
            pass
        elif self.start is not None:
            conds.append(f"{day_column} >= :start")
            params["start"] = self.start
        if dates and self.end is not None:
            conds.append(f"{day_column} <= :end")
            params["end"] = self.end
        if segments and self.channel:
            conds.append("channel = :channel")
            params["channel"] = self.channel
        if segments and self.campaign:
            conds.append("campaign = :campaign")
            params["campaign"] = self.campaign
        return " AND ".join(conds), params

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "channel": self.channel,
            "campaign": self.campaign,
        }


def _num(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    return float(value or 0)


def _r(value: float | None, ndigits: int = 4) -> float | None:
    return None if value is None else round(value, ndigits)


# -- funnel -------------------------------------------------------------------------------


def _rollup_where(
    split: report_math.RangeSplit,
    coarse: str,
    params: dict[str, Any],
    segments: Filters | None = None,
) -> str:
    """Rows of a rollup table covering ``split``: whole periods from the ``coarse`` grain,
    the edge days from the daily rows (one index range each).

    With ``segments`` the table has total rows (segment ''): weekly and monthly rows exist
    for every (channel, campaign, both, neither) total, daily rows only per (channel,
    campaign) and for the grand total, so a filtered edge day sums its campaigns."""
    coarse_seg = daily_seg = ""
    if segments is not None:
        params["ch"] = segments.channel or report_math.ALL
        params["cp"] = segments.campaign or report_math.ALL
        coarse_seg = " AND channel = :ch AND campaign = :cp"
        if not segments.channel and not segments.campaign:
            daily_seg = " AND channel = :ch AND campaign = :cp"
        else:
            daily_seg = " AND channel <> '' AND campaign <> ''"
            daily_seg += " AND channel = :ch" if segments.channel else ""
            daily_seg += " AND campaign = :cp" if segments.campaign else ""
    ors: list[str] = []
    if split.has_full:
        conds = [f"grain = '{coarse}'{coarse_seg}"]
        if split.full_from is not None:
            conds.append("period >= :full_from")
            params["full_from"] = split.full_from
        if split.full_to is not None:
            conds.append("period <= :full_to")
            params["full_to"] = split.full_to
        ors.append(" AND ".join(conds))
    for i, (lo, hi) in enumerate(split.edges):
        conds = [f"grain = 'd'{daily_seg}"]
        if lo is not None:
            conds.append(f"period >= :edge_lo{i}")
            params[f"edge_lo{i}"] = lo
        if hi is not None:
            conds.append(f"period <= :edge_hi{i}")
            params[f"edge_hi{i}"] = hi
        ors.append(" AND ".join(conds))
    return "(" + " OR ".join(f"({o})" for o in ors) + ")"


async def funnel(conn: AsyncConnection, f: Filters, grain: str = "month") -> dict[str, Any]:
    """Read from the rollups: whole weeks/months from their rows, edge days from daily rows,
    for the filtered channel/campaign (or its total row): a handful of rows per period."""
    params: dict[str, Any] = {"grain": grain}
    where = _rollup_where(
        report_math.split_range(f.start, f.end, grain), report_math.ROLLUP_GRAINS[grain], params, f
    )
    cohorts: dict[date, dict[str, int]] = {}
    totals = {m: 0 for m in (*MILESTONES, "lost", "disqualified")}
    for cohort, *column_sums in await conn.execute(
        text(
            f"SELECT date_trunc(:grain, period::timestamp)::date AS c, {MILESTONE_SUMS} "
            f"FROM funnel_cohort WHERE {where} "
            "GROUP BY 1 ORDER BY 1"
        ),
        params,
    ):
        reached = cohorts.setdefault(cohort, {})
        for column, n in zip(MILESTONE_COLUMNS, column_sums, strict=True):
            if n:
                milestone = MILESTONE_OF_COLUMN[column]
                reached[milestone] = int(n)
                totals[milestone] += int(n)
    fparams: dict[str, Any] = {}
    fwhere = _rollup_where(report_math.split_range(f.start, f.end, "month"), "m", fparams, f)
    entries = {s: 0 for s in domain.STAGES}
    flows = []
    for from_stage, to_stage, via, n in await conn.execute(
        text(
            f"SELECT from_stage, to_stage, via, sum(n) FROM funnel_flow WHERE {fwhere} "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3"
        ),
        fparams,
    ):
        entries[to_stage] = entries.get(to_stage, 0) + int(n)
        flows.append({"from": from_stage, "to": to_stage, "via": via, "count": int(n)})
    waterfall = [_stage_row(r) for r in report_math.waterfall(totals)]
    money = await _cohort_money(conn, f, grain)
    cohort_rows = []
    for cohort, counts in cohorts.items():
        for r in report_math.waterfall(counts):
            cohort_rows.append({"cohort": cohort.isoformat(), **_stage_row(r)})
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


async def _cohort_money(conn: AsyncConnection, f: Filters, grain: str) -> list[dict[str, Any]]:
    """Each cohort's money per currency, from the sources rollup's daily rows (the same
    sums as ``sources``, by inquiry cohort): never added across currencies."""
    where, params = f.where("period")
    out = []
    for cohort, currency, pipeline, won, deals in await conn.execute(
        text(
            "SELECT date_trunc(:grain, period::timestamp)::date, currency, sum(pipeline), "
            f"sum(won_revenue), sum(won_deals) FROM source_cohort WHERE grain = 'd' "
            f"AND currency <> '' AND {where} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {**params, "grain": grain},
    ):
        out.append(
            {
                "cohort": cohort.isoformat(),
                "currency": currency,
                "pipeline": round(_num(pipeline), 2),
                "won_revenue": round(_num(won), 2),
                "won_deals": int(deals or 0),
            }
        )
    return out


def _stage_row(r: report_math.StageRow) -> dict[str, Any]:
    return {
        "stage": r.stage,
        "count": r.count,
        "conversion_to_next": _r(r.conversion_to_next),
        "conversion_from_inquiry": _r(r.conversion_from_inquiry),
    }


# -- velocity -----------------------------------------------------------------------------


async def velocity(conn: AsyncConnection, f: Filters, now: datetime) -> dict[str, Any]:
    where, params = f.where("exited_at::date")
    rows = []
    for stage, n, median, p90, mean in await conn.execute(
        text(
            "SELECT stage, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
            "percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds), avg(seconds) "
            f"FROM stage_stay WHERE {where} GROUP BY stage"
        ),
        params,
    ):
        rows.append(
            {
                "stage": stage,
                "stays": int(n),
                "median_days": _r(median / 86400),
                "p90_days": _r(p90 / 86400),
                "mean_days": _r(mean / 86400),
            }
        )
    order = {s: i for i, s in enumerate(domain.STAGES)}
    rows.sort(key=lambda r: order.get(r["stage"], 99))
    awhere, aparams = f.where("inquiry_at::date")
    age = (
        await conn.execute(
            text(
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY a), "
                "percentile_cont(0.9) WITHIN GROUP (ORDER BY a) FROM (SELECT "
                "extract(epoch FROM (CAST(:now AS timestamptz) - inquiry_at)) AS a FROM lead_current "
                f"WHERE is_open AND inquiry_at IS NOT NULL AND {awhere}) x"
            ),
            {**aparams, "now": now},
        )
    ).one()
    return {
        "filters": f.as_dict(),
        "stages": rows,
        "open_lead_age": {
            "leads": int(age[0]),
            "median_days": _r(age[1] / 86400) if age[1] is not None else None,
            "p90_days": _r(age[2] / 86400) if age[2] is not None else None,
        },
        "rows": rows,
    }


# -- sources ------------------------------------------------------------------------------

SOURCE_DIMENSIONS = {
    "channel": "channel",
    "campaign": "campaign",
    "form": "form_id",
    "event": "event_key",
}


async def costs(conn: AsyncConnection) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            "SELECT id, campaign, channel, period_start, period_end, amount, currency "
            "FROM campaign_costs ORDER BY period_start, id"
        )
    )
    return [
        {
            "id": r[0],
            "campaign": r[1],
            "channel": r[2],
            "period_start": r[3].isoformat(),
            "period_end": r[4].isoformat(),
            "amount": _num(r[5]),
            "currency": r[6],
        }
        for r in result
    ]


MONEY_COLUMNS = ("pipeline", "won_revenue", "won_deals")


async def source_counts(
    conn: AsyncConnection, f: Filters, group_by: str
) -> dict[str, dict[str, Any]]:
    """Per source: the milestone counts (``counts``) and, per currency, open pipeline, won
    revenue and won deals (``money``)."""
    col = SOURCE_DIMENSIONS[group_by]
    where, params = f.where("period", dates=False)
    where += " AND " + _rollup_where(report_math.split_range(f.start, f.end, "month"), "m", params)
    sums = ", ".join(f"sum({c})" for c in SOURCE_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(
        text(
            f"SELECT {col}, currency, {sums} FROM source_cohort WHERE {where} "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        params,
    ):
        values = {c: _num(v) for c, v in zip(SOURCE_COLUMNS, row[2:], strict=True)}
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


async def sources(conn: AsyncConnection, f: Filters, group_by: str = "channel") -> dict[str, Any]:
    """Per source: counts and rates, and every money figure per currency (``money``: open
    pipeline, won revenue, cost, cost per lead, ROI), never added across currencies."""
    counts = await source_counts(conn, f, group_by)
    cost_rows = _cost_rows(await costs(conn))
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
                    "cost": _r(metrics.cost, 2),
                    "cost_per_lead": _r(metrics.cost_per_lead, 2),
                    "roi": _r(metrics.roi),
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
                "mql_rate": _r(base.mql_rate),
                "sql_rate": _r(base.sql_rate),
                "win_rate": _r(base.win_rate),
                "money": money,
            }
        )
    rows.sort(key=lambda r: (-int(r["won"]), -int(r["inquiries"]), str(r["source"])))
    return {"filters": f.as_dict(), "group_by": group_by, "rows": rows}


# -- attribution --------------------------------------------------------------------------


async def attribution(
    conn: AsyncConnection, f: Filters, model: str, group_by: str = "campaign"
) -> dict[str, Any]:
    """Won revenue credited to each channel or campaign under ``model``: one row per
    channel or campaign and currency (a campaign run through two channels is one row)."""
    where, params = f.where("won_day")
    col = {"channel": "channel", "campaign": "campaign"}[group_by]
    rows = []
    for key, currency, revenue, credit in await conn.execute(
        text(
            f"SELECT {col}, currency, sum(revenue), sum(credit) FROM attribution_revenue "
            f"WHERE model = :model AND {where} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        ),
        {**params, "model": model},
    ):
        rows.append(
            {
                group_by: key,
                "currency": currency,
                "revenue": round(_num(revenue), 2),
                "deals": round(_num(credit), 4),
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


# -- reps and SLA -------------------------------------------------------------------------


async def reps(
    conn: AsyncConnection,
    f: Filters,
    team: str | None = None,
    rep: str | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    """One row per rep (its team: the latest it worked in), queues apart; the channel and
    campaign filters apply (the lead's first touch), as in every other report."""
    where, params = f.where("day")
    extra = ""
    if team:
        extra += " AND team_id = :team"
        params["team"] = team
    if rep:
        extra += " AND rep_id = :rep"
        params["rep"] = rep
    sums = ", ".join(f"sum({c})" for c in REP_COLUMNS)
    rows = []
    queues = []
    money: dict[str, dict[str, float]] = {}
    for rep_id, currency, revenue in await conn.execute(
        text(
            f"SELECT rep_id, currency, sum(won_revenue) FROM rep_daily WHERE {where}{extra} "
            "AND currency <> '' AND rep_id <> :none GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {**params, "none": segments.UNKNOWN},
    ):
        money.setdefault(rep_id, {})[currency] = _num(revenue)
    for row in await conn.execute(
        text(
            f"SELECT rep_id, (array_agg(team_id ORDER BY day DESC, team_id))[1], {sums} "
            f"FROM rep_daily WHERE {where}{extra} AND rep_id <> :none GROUP BY 1 ORDER BY 1"
        ),
        {**params, "none": segments.UNKNOWN},
    ):
        c = {k: _num(v) for k, v in zip(REP_COLUMNS, row[2:], strict=True)}
        decided = c["accepted"] + c["rejected"]
        rows.append(
            {
                "rep_id": row[0],
                "team_id": row[1],
                **{k: int(v) for k, v in c.items() if k != "won_revenue"},
                "money": [
                    {"currency": cur, "won_revenue": round(v, 2)}
                    for cur, v in sorted(money.get(row[0], {}).items())
                ],
                "acceptance_rate": _r(report_math.rate(c["accepted"], decided)),
                "rejection_rate": _r(report_math.rate(c["rejected"], decided)),
            }
        )
    if not rep:
        for queue_id, team_id, n in await conn.execute(
            text(
                "SELECT queue_id, (array_agg(team_id ORDER BY day DESC, team_id))[1], "
                f"sum(assigned) FROM rep_daily WHERE {where}{extra} AND queue_id <> :none "
                "GROUP BY 1 ORDER BY 1"
            ),
            {**params, "none": segments.UNKNOWN},
        ):
            queues.append({"queue_id": queue_id, "team_id": team_id, "assigned": int(n)})
    reasons = [
        {"kind": k, "reason": r, "count": int(n)}
        for k, r, n in await conn.execute(
            text(
                f"SELECT kind, reason, sum(n) FROM rep_reasons WHERE {where}{extra} "
                "GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
            ),
            params,
        )
    ]
    sla_extra = extra
    if policy:
        sla_extra += " AND policy_id = :policy"
        params["policy"] = policy
    sums = ", ".join(f"sum({c})" for c in SLA_COLUMNS)
    sla_rows = []
    for row in await conn.execute(
        text(
            f"SELECT policy_id, team_id, rep_id, {sums} FROM sla_daily WHERE {where}{sla_extra} "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
        params,
    ):
        c = {k: _num(v) for k, v in zip(SLA_COLUMNS, row[3:], strict=True)}
        sla_rows.append({"policy_id": row[0], "team_id": row[1], "rep_id": row[2], **c})
    return {
        "filters": {**f.as_dict(), "team": team, "rep": rep, "policy": policy},
        "rows": rows,
        "queues": queues,
        "reasons": reasons,
        "sla": [_sla(r) for r in sla_rows],
        "sla_by_policy": _sla_rollup(sla_rows, ("policy_id",)),
        "sla_by_team": _sla_rollup(sla_rows, ("team_id",)),
        "sla_by_rep": _sla_rollup(sla_rows, ("rep_id",)),
    }


def _sla(c: dict[str, Any]) -> dict[str, Any]:
    """Compliance = clocks met on time / clocks with a verdict (on time + late), each clock
    counted once, on the day it started: sla-monitor's ``met_on_time_pct`` / 100
    (docs/metrics.md)."""
    out = {k: (int(v) if k in SLA_COLUMNS[:7] else v) for k, v in c.items()}
    out["compliance"] = _r(report_math.rate(c["met_on_time"], c["met_on_time"] + c["late"]))
    met = c["met_on_time"] + c["met_late"]
    out["mean_response_hours"] = _r(c["elapsed_seconds"] / met / 3600) if met else None
    del out["elapsed_seconds"]
    return out


def _sla_rollup(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    acc: dict[tuple[Any, ...], dict[str, float]] = {}
    for r in rows:
        k = tuple(r[x] for x in keys)
        tot = acc.setdefault(k, dict.fromkeys(SLA_COLUMNS, 0.0))
        for c in SLA_COLUMNS:
            tot[c] += r[c]
    return [_sla({**dict(zip(keys, k, strict=True)), **v}) for k, v in sorted(acc.items())]


# -- stuck leads ----------------------------------------------------------------------------


async def stuck(
    conn: AsyncConnection,
    f: Filters,
    now: datetime,
    expected_days: dict[str, float],
    stage: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    where, fparams = f.where("inquiry_at::date")
    found = stuck_condition(where, fparams, now, expected_days, stage)
    if found is None:
        return {"filters": f.as_dict(), "total": 0, "by_stage": {}, "rows": []}
    cond, params = found
    by_stage = {
        s: int(n)
        for s, n in await conn.execute(
            text(f"SELECT stage, count(*) FROM lead_current WHERE {cond} GROUP BY stage"), params
        )
    }
    rows = []
    for r in await conn.execute(
        text(
            "SELECT lead_id, stage, stage_entered_at, inquiry_at, channel, campaign, rep_id, "
            f"team_id FROM lead_current WHERE {cond} ORDER BY stage_entered_at, lead_id "
            "LIMIT :limit"
        ),
        {**params, "limit": limit},
    ):
        rows.append(
            {
                "lead_id": str(r[0]),
                "stage": r[1],
                "entered_at": r[2].isoformat(),
                "days_in_stage": round((now - r[2]).total_seconds() / 86400, 2),
                "expected_days": expected_days[r[1]],
                "inquiry_at": r[3].isoformat() if r[3] else None,
                "channel": r[4],
                "campaign": r[5],
                "rep_id": r[6],
                "team_id": r[7],
            }
        )
    return {
        "filters": f.as_dict(),
        "total": sum(by_stage.values()),
        "by_stage": by_stage,
        "rows": rows,
    }


# -- timeline -------------------------------------------------------------------------------


async def timeline(
    conn: AsyncConnection, lead_id: uuid.UUID, *, personal: bool = True
) -> dict[str, Any] | None:
    """A lead's events in order; ``personal=False`` leaves out the personal fields (name,
    e-mail, phone, free text), which are kept apart in ``lead_personal``."""
    erased_at = await conn.scalar(
        text("SELECT erased_at FROM erased_leads WHERE lead_id = :l"), {"l": lead_id}
    )
    result = await conn.execute(
        text(
            "SELECT l.global_position, l.event_id, l.producer, l.event_type, l.occurred_at, "
            "l.recorded_at, l.payload, p.fields FROM lead_event_log l "
            "LEFT JOIN lead_personal p ON p.lead_id = l.lead_id AND p.event_id = l.event_id "
            "WHERE l.lead_id = :l ORDER BY l.occurred_at, l.global_position"
        ),
        {"l": lead_id},
    )
    events = []
    for pos, event_id, producer, event_type, occurred, recorded, payload, fields in result:
        events.append(
            {
                "position": pos,
                "event_id": str(event_id),
                "producer": producer,
                "event_type": event_type,
                "occurred_at": occurred.isoformat(),
                "recorded_at": recorded.isoformat(),
                "stage": report_math.stage_of_event(event_type),
                "payload": {**payload, **(fields or {})} if personal else payload,
            }
        )
    if not events:
        return None
    return {
        "lead_id": str(lead_id),
        "erased": erased_at is not None,
        "erased_at": erased_at.isoformat() if erased_at else None,
        "personal_fields": "shown" if personal else "withheld",
        "events": events,
        "rows": [{k: v for k, v in e.items() if k != "payload"} for e in events],
    }


# -- lead plan ------------------------------------------------------------------------------


class PlanCurrencyError(ValueError):
    """The goal's currency is ambiguous (several currencies won, none named)."""

    def __init__(self, currencies: list[str]) -> None:
        super().__init__(f"revenue was won in {', '.join(currencies)}: name the goal's currency")
        self.currencies = currencies


async def plan(
    conn: AsyncConnection,
    f: Filters,
    revenue: float,
    period: str,
    mix: dict[str, float] | None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Leads needed for a revenue goal in one currency: the average deal is measured on the
    deals won in that currency only (conversion rates are currency-free counts)."""
    per_channel = await source_counts(conn, f, "channel")
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
            "avg_deal": _r(p.avg_deal, 2),
            "feasible": p.feasible,
            **p.needed,
        }

    rows = [line(overall), *(line(p) for p in lines)]
    goal = sum(p.revenue for p in lines)
    for row in rows[1:]:
        counts = per_channel.get(row["segment"], {}).get("counts")
        row["share"] = round(row["revenue"] / goal, 4) if goal else None
        row["measured_rates"] = planning.measured_rates(milestones(counts)) if counts else None
    capacity = await _rep_capacity(conn, f, rows[0].get("mql"), planning.period_days(period))
    return {
        "capacity": capacity,
        "filters": f.as_dict(),
        "revenue": revenue,
        "currency": currency,
        "period": period,
        "measured_rates": {
            r["stage"]: r["conversion_to_next"]
            for r in map(_stage_row, report_math.waterfall(milestones(total)))
        },
        "measured_per_period": measured_per_period,
        "plan": rows[0],
        "by_source": rows[1:],
        "rows": rows,
    }


async def _rep_capacity(
    conn: AsyncConnection, f: Filters, planned_mqls: int | None, period_days: int
) -> dict[str, Any]:
    """The reps the planned MQLs need, at the per-rep assignment rate measured in range."""
    where, params = f.where("day")
    row = (
        await conn.execute(
            text(
                "SELECT count(DISTINCT rep_id) FILTER (WHERE assigned > 0), "
                "coalesce(sum(assigned), 0), min(day), max(day) "
                f"FROM rep_daily WHERE {where} AND rep_id <> :none"
            ),
            {**params, "none": segments.UNKNOWN},
        )
    ).one()
    days = None
    if f.start and f.end:
        days = (f.end - f.start).days + 1
    elif row[2] is not None and row[3] is not None:
        days = (row[3] - row[2]).days + 1
    return planning.rep_capacity(planned_mqls, int(row[1]), int(row[0]), days, period_days)


# -- projections status --------------------------------------------------------------------


async def checkpoints(conn: AsyncConnection) -> dict[str, int]:
    return {
        n: int(p)
        for n, p in await conn.execute(text("SELECT name, position FROM projection_checkpoints"))
    }


def day_after(d: date) -> date:
    return d + timedelta(days=1)
