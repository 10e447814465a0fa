"""The process map, the audit and the plan's capacity through analytics' HTTP API, on the
scripted history of ``scenario`` produced to real Kafka and logged in real Postgres; then a
published process definition (``sla.process_published``) changes what analytics reports.

Hand-computed from ``scenario`` (the built-in process, all time, NOW = T0 + 29 d):

* MQLs L1, L2, L3, L6; nobody recorded a contact: speed to lead has 4 never contacted.
* L2 was rejected (bad_fit) from MQL: a defect of 1 in 4; L3 recycled (timing) from SQL;
  neither came back as an MQL: return rate 0.
* Leakage: inquiry L4 (disqualified: student), mql L2, sql L3, opportunity L6 (lost: price).
* Maturity: not agreed (built-in), no lead.scored events; 4 of 7 met.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.sla import ProcessPublished
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, stream_id
from leadflow.events.process import ExpectedDuration, built_in_process
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def loaded(settings_for: Any, isolation: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(sc.NOW))
    async with app_client(app) as client:
        await sc.load(isolation, sc.envelopes())
        await wait_until(lambda: sc.caught_up(client), timeout=60, message="projections caught up")
        yield client, isolation


async def test_audit_map_plan_then_a_published_process_changes_them(
    loaded: tuple[httpx.AsyncClient, Any],
) -> None:
    client, iso = loaded
    assert (await client.get("/v1/audit")).status_code == 401
    audit = (await client.get("/v1/audit", headers=ADMIN)).json()
    assert audit["process_version"] == 0
    assert audit["speed_to_lead"] == {
        "mqls": 4,
        "contacted": 0,
        "median_seconds": None,
        "p90_seconds": None,
        "within_5_minutes": 0,
        "within_1_hour": 0,
        "never_contacted": 4,
    }
    assert audit["defect_rate"] == {
        "mqls": 4,
        "rejected": 1,
        "rate": 0.25,
        "reasons": {"bad_fit": 1},
    }
    assert audit["recycled_return"] == {"handed_back": 2, "returned_to_mql": 0, "rate": 0.0}
    assert audit["leakage"] == {
        "inquiry": {"total": 1, "by_reason": {"lead.disqualified:student": 1}},
        "mql": {"total": 1, "by_reason": {"lead.rejected:bad_fit": 1}},
        "sql": {"total": 1, "by_reason": {"lead.recycled:timing": 1}},
        "opportunity": {"total": 1, "by_reason": {"deal.lost:price": 1}},
    }
    assert audit["gaps"]["stages_without_sla"] == ["inquiry", "sql", "opportunity", "on_hold"]
    assert audit["gaps"]["sources_without_conversion"] == []
    assert audit["gaps"]["reps_without_activity"] == []
    failed = [k for k, c in audit["maturity"]["criteria"].items() if not c["met"]]
    assert failed == ["sales_ready_definition", "agreed_statuses", "scoring"]
    assert audit["maturity"]["score"] == 4

    # A period: the second week only (L3, L4 captured; L6's hand-raise at the expo).
    week2 = (
        await client.get(
            "/v1/audit", headers=ADMIN, params={"from": "2025-03-10", "to": "2025-03-16"}
        )
    ).json()
    assert week2["speed_to_lead"]["mqls"] == 1  # L3
    bad = await client.get(
        "/v1/audit", headers=ADMIN, params={"from": "2025-03-10", "to": "2025-03-01"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to"

    page = await client.get("/v1/audit.html", headers=ADMIN)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Maturity: 4 of 7" in page.text and "bad_fit 1" in page.text

    pmap = (await client.get("/v1/process/map", headers=ADMIN)).json()
    boxes = {b["stage"]: b for b in pmap["stages"]}
    # Inquiry: 6 entered, L5 still there (27 d > 7 d expected), L4 leaked; 4 moved on.
    assert boxes["inquiry"]["figures"]["count"] == 6
    assert boxes["inquiry"]["figures"]["current"] == 1
    assert boxes["inquiry"]["figures"]["over_expected"] == 1
    assert boxes["inquiry"]["figures"]["conversion"] == 0.6667
    assert boxes["mql"]["figures"]["conversion"] == 0.75
    arrows = {(a["from"], a["to"], a["event_type"]): a["count"] for a in pmap["arrows"]}
    assert arrows[("mql", "nurture", "lead.rejected")] == 1
    assert arrows[("sql", "nurture", "lead.recycled")] == 1

    dashboard = (await client.get("/", headers=ADMIN)).text
    assert 'id="process-map"' in dashboard and 'data-stage="on_hold"' in dashboard
    # The allowed moves drawn as arrows, with their counts (L3 recycled from SQL).
    assert re.search(
        r'<svg id="process-diagram".*data-kind="recycle" data-from="sql" data-to="nurture" '
        r'data-count="1"',
        dashboard,
        re.S,
    )
    assert (
        "<td>mql</td><td>nurture</td><td>reject</td><td>lead.rejected</td><td>1</td>" in dashboard
    )

    plan = (
        await client.get("/v1/plan", headers=ADMIN, params={"revenue": 12000, "period": "quarter"})
    ).json()
    (web,) = plan["by_source"]
    assert web["share"] == 1.0
    assert web["measured_rates"] == {
        "inquiry": 0.75,
        "mql": 0.6667,
        "sal": 1.0,
        "sql": 1.0,
        "opportunity": 0.5,
    }
    # 4 assignments to 2 reps over the 20 days rep activity spans (Mar 4 .. Mar 23):
    # 4 / 2 / 20 * 91 = 9.1 MQLs a rep a quarter; 40 planned MQLs need 5 reps.
    assert plan["capacity"] == {
        "active_reps": 2,
        "assigned": 4,
        "measured_days": 20,
        "mqls_per_rep_per_period": 9.1,
        "planned_mqls": 40,
        "reps_needed": 5,
        "reps_short": 3,
    }

    # Marketing and sales agree a process: inquiries may take 30 days, sql has no owner.
    stages = [
        s.model_copy(
            update={"expected_duration": ExpectedDuration(amount=30, unit="days")}
            if s.stage == "inquiry"
            else {"owner": None}
            if s.stage == "sql"
            else {}
        )
        for s in built_in_process().stages
    ]
    published = ProcessPublished(
        process_version=1,
        stages=[s.model_dump(mode="json") for s in stages],
        sla_policies={"mql": ["accept-4bh"], "sal": ["contact-1bd"], "sql": ["sql-5d"]},
        published_by="ops",
    )
    await sc.produce(
        iso, [Envelope.new(published, lead_id=stream_id("lead-process"), occurred_at=sc.NOW)]
    )

    async def follows() -> bool:
        body = (await client.get("/v1/process/map", headers=ADMIN)).json()
        return bool(body["process_version"] == 1)

    await wait_until(follows, timeout=60, message="analytics follows the published process")
    stuck = (await client.get("/v1/stuck", headers=ADMIN)).json()
    assert stuck["total"] == 0  # L5's 27 days are within the agreed 30
    pmap = (await client.get("/v1/process/map", headers=ADMIN)).json()
    inquiry = next(b for b in pmap["stages"] if b["stage"] == "inquiry")
    assert inquiry["expected_duration"] == {"amount": 30.0, "unit": "days"}
    assert inquiry["figures"]["over_expected"] == 0
    audit = (await client.get("/v1/audit", headers=ADMIN)).json()
    assert audit["process_version"] == 1
    assert audit["gaps"]["stages_without_owner"] == ["sql"]
    assert audit["gaps"]["stages_without_sla"] == ["inquiry", "nurture", "opportunity", "on_hold"]
    criteria = audit["maturity"]["criteria"]
    assert criteria["sales_ready_definition"]["met"]
    assert not criteria["agreed_statuses"]["met"]  # sql has no owner
