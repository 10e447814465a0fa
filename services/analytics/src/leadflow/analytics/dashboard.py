"""The dashboard: one server-rendered page, charts as inline SVG (no build step, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from leadflow.analytics import process_reports, store
from leadflow.analytics.store import Filters
from leadflow.events import process_diagram
from leadflow.events.sql import Tx

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    y: float
    width: float


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart laid out in SVG user units (the template only draws it)."""

    id: str
    title: str
    bars: list[Bar]
    height: float
    empty: bool


BAR_H, GAP, LABEL_W, PLOT_W = 22.0, 8.0, 150.0, 330.0


def bar_chart(chart_id: str, title: str, items: list[tuple[str, float, str]]) -> Chart:
    top = max((v for _, v, _ in items), default=0.0)
    bars = [
        Bar(label, value, txt, i * (BAR_H + GAP), (value / top * PLOT_W) if top > 0 else 0.0)
        for i, (label, value, txt) in enumerate(items)
    ]
    return Chart(chart_id, title, bars, max(len(items), 1) * (BAR_H + GAP), top <= 0)


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


async def render(tx: Tx, f: Filters, now: datetime) -> str:
    expected_days = await process_reports.expected_days(tx)
    process_map = await process_reports.process_map(
        tx, process_reports.period_of(f.start, f.end), now
    )
    funnel = await store.funnel(tx, f, "month")
    sources = await store.sources(tx, f, "channel")
    velocity = await store.velocity(tx, f, now)
    reps = await store.reps(tx, f)
    stuck = await store.stuck(tx, f, now, expected_days, limit=10)
    counts = {r["stage"]: r["count"] for r in funnel["waterfall"]}
    # Revenue per currency: never one sum of EUR and USD.
    revenue: dict[str, float] = {}
    for r in sources["rows"]:
        for m in r["money"]:
            revenue[m["currency"]] = revenue.get(m["currency"], 0.0) + m["won_revenue"]
    charts = [
        bar_chart(
            "chart-funnel",
            "Funnel (leads reaching each stage)",
            [(r["stage"], r["count"], f"{r['count']:,}") for r in funnel["waterfall"]],
        ),
        bar_chart(
            "chart-conversion",
            "Inquiry → SQL conversion by source",
            [(r["source"], r["sql_rate"] or 0.0, _pct(r["sql_rate"])) for r in sources["rows"]],
        ),
        bar_chart(
            "chart-revenue",
            "Won revenue by source",
            [
                (f"{r['source']} ({m['currency']})", m["won_revenue"], _money(m["won_revenue"]))
                for r in sources["rows"]
                for m in r["money"]
                if m["won_revenue"]
            ],
        ),
        bar_chart(
            "chart-velocity",
            "Median days in stage",
            [
                (r["stage"], r["median_days"] or 0.0, f"{r['median_days']:.1f} d")
                for r in velocity["stages"]
            ],
        ),
        bar_chart(
            "chart-sla",
            "SLA compliance by policy",
            [
                (r["policy_id"], r["compliance"] or 0.0, _pct(r["compliance"]))
                for r in reps["sla_by_policy"]
            ],
        ),
    ]
    context: dict[str, Any] = {
        "filters": f.as_dict(),
        "headline": {
            "inquiries": counts.get("inquiry", 0),
            "opportunities": counts.get("opportunity", 0),
            "revenue": [
                {"currency": c, "text": f"{_money(v)} {c}"} for c, v in sorted(revenue.items())
            ],
        },
        "charts": charts,
        "layout": {"bar_h": BAR_H, "label_w": LABEL_W, "plot_w": PLOT_W},
        "sources": sources["rows"],
        "stuck": stuck,
        "process_map": process_map,
        "drawn": process_diagram.drawing(process_map["stages"], process_map["arrows"]),
        "duration": process_reports.duration_text,
        "waterfall": funnel["waterfall"],
        "pct": _pct,
        "money": _money,
    }
    return _ENV.get_template("dashboard.html").render(**context)
