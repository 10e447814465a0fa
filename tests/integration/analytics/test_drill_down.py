"""Every figure's drill-down lists exactly the leads the figure counts (``scenario``'s scripted
history through real Kafka + Postgres): funnel bars and outcomes, overall and for a period
and a channel, the weekly cohorts, per-channel and per-campaign rows, revenue, won deals and
open pipeline per currency, and stuck leads overall and per stage. Each list's total (and
its money sums) must equal the figure the report shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.cohort import HANDOFF_KINDS, SLA_KINDS
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.clock import ManualClock
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}
NAME = {str(lead_id): name for name, lead_id in sc.LEADS.items()}
# The report's count column -> the milestone or outcome its drill-down asks for.
COLUMNS = {
    "inquiries": "inquiry",
    "mqls": "mql",
    "sals": "sal",
    "sqls": "sql",
    "opportunities": "opportunity",
    "won": "won",
    "lost": "lost",
    "disqualified": "disqualified",
}


@pytest.fixture
async def client(settings_for: Any, isolation: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(sc.NOW))
    async with app_client(app) as c:
        c.headers.update(ADMIN)
        await sc.load(isolation, sc.envelopes())
        await wait_until(lambda: sc.caught_up(c), timeout=60, message="projections caught up")
        yield c


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def drill(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    """The whole list (every page) behind a figure: names, total, money."""
    names: list[str] = []
    offset = 0
    while True:
        body = await get(client, "/v1/leads/search", limit=2, offset=offset, **params)
        names += [NAME[i["lead_id"]] for i in body["items"]]
        offset += 2
        if offset >= body["total"]:
            break
    assert len(names) == body["total"] == len(set(names)), (params, names, body["total"])
    return {
        "names": sorted(names),
        "total": body["total"],
        "money": body["money"],
        "facts": body.get("facts"),
    }


async def check_funnel(client: httpx.AsyncClient, **f: Any) -> dict[str, int]:
    report = await get(client, "/v1/funnel", **f)
    figures = {r["stage"]: r["count"] for r in report["waterfall"]} | report["outcomes"]
    for milestone, count in figures.items():
        listed = await drill(client, reached=milestone, **f)
        assert listed["total"] == count, (f, milestone, listed, count)
    return figures


async def test_every_figure_drills_down_to_the_leads_it_counts(
    client: httpx.AsyncClient,
) -> None:
    # The funnel, all time: the scripted waterfall, each bar's list its count.
    figures = await check_funnel(client)
    assert {k: figures[k] for k in sc.WATERFALL} == sc.WATERFALL
    assert (await drill(client, reached="won"))["names"] == ["L1"]
    assert (await drill(client, reached="opportunity"))["names"] == ["L1", "L6"]
    assert (await drill(client, reached="disqualified"))["names"] == ["L4"]
    assert (await drill(client, reached="lost"))["names"] == ["L6"]
    # A period (the second week's cohort) and a channel.
    second = await check_funnel(client, **{"from": "2025-03-10", "to": "2025-03-16"})
    assert second["inquiry"] == 2
    assert (await drill(client, reached="inquiry", **{"from": "2025-03-10", "to": "2025-03-16"}))[
        "names"
    ] == ["L3", "L4"]
    await check_funnel(client, channel="web_form")
    await check_funnel(client, channel="badge_scan", campaign="expo")

    # The weekly trend points: each week's cohort, through its own dates.
    weekly = await get(client, "/v1/funnel", grain="week")
    points = [r for r in weekly["cohorts"] if r["stage"] in sc.WATERFALL]
    shown = {(r["cohort"], r["stage"]): r["count"] for r in points}
    for week, counts in sc.WEEKLY.items():
        assert all(shown.get((week, s), 0) == n for s, n in counts.items()), week
    for r in points:
        start = date.fromisoformat(r["cohort"])
        week = {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}
        assert (await drill(client, reached=r["stage"], **week))["total"] == r["count"], r
    # ... and each week's revenue per currency (L1's 1,200 USD in the first week).
    assert [(m["cohort"], m["currency"], m["won_revenue"]) for m in weekly["cohort_money"]] == [
        ("2025-03-03", "USD", 1200.0)
    ]
    for m in weekly["cohort_money"]:
        start = date.fromisoformat(m["cohort"])
        week = {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}
        won = await drill(client, won_in=m["currency"], **week)
        assert _money(won, m["currency"], "won_revenue") == m["won_revenue"]
        assert _money(won, m["currency"], "won_deals") == m["won_deals"]

    # Per channel and per campaign rows, every count column; money per currency.
    for group_by in ("channel", "campaign"):
        report = await get(client, "/v1/sources", group_by=group_by)
        assert report["rows"]
        for row in report["rows"]:
            segment = {group_by: row["source"]}
            for column, milestone in COLUMNS.items():
                listed = await drill(client, reached=milestone, **segment)
                assert listed["total"] == row[column], (segment, column, listed)
            for m in row["money"]:
                won = await drill(client, won_in=m["currency"], **segment)
                assert _money(won, m["currency"], "won_deals") == m["won_deals"]
                assert _money(won, m["currency"], "won_revenue") == m["won_revenue"]
                open_ = await drill(client, pipeline_in=m["currency"], **segment)
                assert _money(open_, m["currency"], "pipeline") == m["pipeline"]

    # The dashboard's headline revenue: 1,200 USD won by L1, no open pipeline left.
    won = await drill(client, won_in="USD")
    assert won["names"] == ["L1"] and _money(won, "USD", "won_revenue") == 1200.0
    assert (await drill(client, pipeline_in="USD"))["total"] == 0

    # Stuck leads: the total and every stage's count.
    stuck = await get(client, "/v1/stuck")
    assert stuck["total"] > 0
    listed = await drill(client, stuck="true")
    assert listed["total"] == stuck["total"]
    assert set(listed["names"]) == {NAME[r["lead_id"]] for r in stuck["rows"]}
    for stage, count in stuck["by_stage"].items():
        assert (await drill(client, stuck="true", stage=stage))["total"] == count, stage
    web = await get(client, "/v1/stuck", channel="web_form")
    assert (await drill(client, stuck="true", channel="web_form"))["total"] == web["total"]


async def test_reps_and_sla_figures_drill_down_to_the_events_they_count(
    client: httpx.AsyncClient,
) -> None:
    for period in ({}, {"from": "2025-03-03", "to": "2025-03-09"}):
        reps = await get(client, "/v1/reps", **period)
        assert reps["rows"] and reps["sla_by_policy"]
        for row in reps["rows"]:
            for kind in HANDOFF_KINDS:
                listed = await drill(client, handoff=kind, by_rep=row["rep_id"], **period)
                assert listed["facts"] == row[kind], (period, row["rep_id"], kind, listed)
                assert (listed["total"] > 0) == (row[kind] > 0)
        for queue in reps["queues"]:
            listed = await drill(client, handoff="assigned", by_queue=queue["queue_id"], **period)
            assert listed["facts"] == queue["assigned"]
        for keys, rows in (("policy_id", "sla_by_policy"), ("rep_id", "sla_by_rep")):
            for row in reps[rows]:
                key = {"policy": row[keys]} if keys == "policy_id" else {"by_rep": row[keys]}
                for kind in SLA_KINDS:
                    listed = await drill(client, sla=kind, **key, **period)
                    assert listed["facts"] == row[kind], (period, row, kind, listed)
    # By name: p1's breaches are L2's and L3's clocks; r1 accepted L1 only.
    assert (await drill(client, sla="breached", policy="p1"))["names"] == ["L2", "L3"]
    assert (await drill(client, handoff="accepted", by_rep="r1"))["names"] == ["L1"]
    channel = await get(client, "/v1/reps", channel="web_form")
    r2 = next(r for r in channel["rows"] if r["rep_id"] == "r2")
    listed = await drill(client, handoff="accepted", by_rep="r2", channel="web_form")
    assert listed["facts"] == r2["accepted"] and listed["names"] == ["L6"]


def _money(listed: dict[str, Any], currency: str, column: str) -> float:
    return float(sum(m[column] for m in listed["money"] if m["currency"] == currency))


async def test_a_drill_down_refuses_what_no_figure_counts(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({"reached": "nurture"}, "reached"),
        ({"won_in": "dollars"}, "won_in"),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "to"),
        ({"stuck": "true", "stage": "won"}, "stage"),
        ({"handoff": "breached"}, "handoff"),
        ({"sla": "breached", "handoff": "won"}, "sla"),
    ):
        r = await client.get("/v1/leads/search", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in r.text, (params, r.text)
