"""The leadership dashboard: revenue and pipeline per currency, the funnel, weekly cohorts,
per-channel and per-campaign rows and stuck leads, for a period and a channel.

Every figure links to the leads behind it: ``/leads`` with analytics' drill-down filters
(``reached``, ``from``/``to``, ``channel``, ``campaign``, ``won_in``, ``pipeline_in``,
``stuck``), which select exactly the leads the figure counts (analytics' ``cohort`` module:
the same predicates; ``tests/integration/analytics/test_drill_down.py``).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from leadflow.console.web.render import CtxDep
from leadflow.events.access import Permission, public

dashboard_pages = APIRouter(include_in_schema=False, dependencies=[public()])
# A report's count column -> the milestone or outcome its drill-down asks for.
COLUMN_MILESTONE = {"inquiries": "inquiry", "mqls": "mql", "sals": "sal", "sqls": "sql",
                    "opportunities": "opportunity", "won": "won"}  # fmt: skip

# The reps report's counts a row shows: each drills down to the events it counts.
HANDOFF_COLUMNS = ("assigned", "accepted", "rejected", "recycled", "won", "lost")
SLA_COLUMNS = ("started", "met_on_time", "breached", "late")


def _date(value: str) -> str:
    """An ISO day or nothing: a malformed one is dropped, not passed on."""
    try:
        return date.fromisoformat(value.strip()).isoformat() if value.strip() else ""
    except ValueError:
        return ""


@dashboard_pages.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    ctx: CtxDep,
    channel: Annotated[str, Query(max_length=200)] = "",
    campaign: Annotated[str, Query(max_length=200)] = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    if not ctx.who.can(Permission.REPORTS):
        return ctx.page(
            "message.html",
            status=403,
            title="Not for your role",
            message="The dashboard needs the reports permission.",
        )
    scope = {"channel": channel.strip(), "campaign": campaign.strip(),
             "from": _date(from_), "to": _date(to)}  # fmt: skip
    scope = {k: v for k, v in scope.items() if v}
    funnel, weekly, sources, campaigns, stuck, reps = await asyncio.gather(
        ctx.api.get("analytics", "/v1/funnel", **scope),
        ctx.api.get("analytics", "/v1/funnel", grain="week", **scope),
        ctx.api.get("analytics", "/v1/sources", **scope),
        ctx.api.get("analytics", "/v1/sources", group_by="campaign", **scope),
        ctx.api.get("analytics", "/v1/stuck", limit=1, **scope),
        ctx.api.get("analytics", "/v1/reps", **scope),
    )
    may_list = ctx.who.can(Permission.LEADS_READ)

    def leads(**figure: str) -> str:
        """The drill-down of a figure (within the dashboard's scope), or '' when the role
        may not list leads."""
        return "/leads?" + urlencode(scope | figure) if may_list else ""

    stages = _funnel_bars(funnel.body) if funnel.ok and isinstance(funnel.body, dict) else []
    source_rows = (sources.body or {}).get("rows", []) if sources.ok else []
    campaign_rows = (campaigns.body or {}).get("rows", []) if campaigns.ok else []
    trends = _weekly(weekly.body) if weekly.ok and isinstance(weekly.body, dict) else []
    week_money: dict[str, list[dict[str, Any]]] = {}
    for m in (weekly.body or {}).get("cohort_money", []) if weekly.ok else []:
        week_money.setdefault(str(m.get("cohort")), []).append(m)
    for t in trends:  # a week's point counts the week's days within the dashboard's period
        t["money"] = week_money.get(t["week"], [])
        t["first"] = max(t["week"], scope.get("from", ""))
        t["last"] = min(t["last"], scope.get("to") or t["last"])
    stuck_body = stuck.body if stuck.ok and isinstance(stuck.body, dict) else {}
    return ctx.page(
        "dashboard.html",
        stages=stages,
        outcomes=(funnel.body or {}).get("outcomes", {}) if funnel.ok else {},
        peak=max((s["count"] for s in stages), default=0) or 1,
        money=money_by_currency(source_rows),
        trends=trends,
        trend_peak=max((t["inquiry"] for t in trends), default=0) or 1,
        sources=source_rows,
        campaigns=campaign_rows,
        stuck=stuck_body,
        # The reps report needs ``reports.team``: a role without it sees no reps panel.
        reps=reps.body if reps.ok and isinstance(reps.body, dict) else None,
        handoffs=HANDOFF_COLUMNS,
        sla_columns=SLA_COLUMNS,
        columns=COLUMN_MILESTONE,
        scope=scope,
        channel=scope.get("channel", ""),
        leads=leads,
        error="; ".join(a.problem for a in (funnel, weekly, sources, campaigns, stuck) if not a.ok),
    )


def money_by_currency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Won revenue and open pipeline summed per currency over the sources: never across
    currencies (a USD and an EUR deal are two figures)."""
    totals: dict[str, dict[str, float]] = {}
    for row in rows:
        for m in row.get("money") or []:
            cur = m.get("currency")
            if not cur:
                continue
            t = totals.setdefault(cur, {"won_revenue": 0.0, "pipeline": 0.0, "won_deals": 0})
            t["won_revenue"] += float(m.get("won_revenue") or 0)
            t["pipeline"] += float(m.get("pipeline") or 0)
            t["won_deals"] += int(m.get("won_deals") or 0)
    return [{"currency": c, **v} for c, v in sorted(totals.items())]


def _weekly(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per inquiry week: inquiries, MQLs, opportunities and wins of that week's cohort, with
    the week's first and last day (its drill-down's dates)."""
    weeks: dict[str, dict[str, int]] = {}
    for row in report.get("cohorts") or []:
        week = weeks.setdefault(str(row.get("cohort")), {})
        week[str(row.get("stage"))] = int(row.get("count") or 0)
    out = []
    for w, c in sorted(weeks.items()):
        try:
            last = (date.fromisoformat(w) + timedelta(days=6)).isoformat()
        except ValueError:
            continue
        out.append(
            {
                "week": w,
                "last": last,
                **{k: c.get(k, 0) for k in ("inquiry", "mql", "opportunity", "won")},
            }
        )
    return out[-12:]


def _funnel_bars(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The funnel's waterfall (inquiry -> won, each stage counting the leads that reached
    it) as bars, with the conversion to the next stage and which stage that is."""
    rows = [r for r in report.get("waterfall") or [] if isinstance(r, dict) and "stage" in r]
    bars = []
    for i, row in enumerate(rows):
        conversion = row.get("conversion_to_next")
        bars.append(
            {
                "stage": str(row["stage"]),
                "count": int(row.get("count") or 0),
                "conversion": None if conversion is None else round(100 * conversion, 1),
                "next": str(rows[i + 1]["stage"]) if i + 1 < len(rows) else "",
            }
        )
    return bars
