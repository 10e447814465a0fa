"""Analytics end to end on real Kafka + Postgres: a scripted history produced to the topics,
consumed into the log, projected, and read back through the HTTP API with exact numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.analytics.app import create_app
from leadflow.analytics.projections import PROJECTION_NAMES
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}


async def consumer_done(iso: Any) -> bool:
    """The analytics group has committed every offset of every topic it reads."""
    group = f"{iso.topic_prefix}leadflow.analytics"
    admin = AIOKafkaAdminClient(bootstrap_servers=iso.kafka_bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=iso.kafka_bootstrap)
    await admin.start()
    await probe.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = [
            TopicPartition(iso.topic(p), n)
            for p in ("intake", "scoring", "routing", "sla")
            for n in (probe.partitions_for_topic(iso.topic(p)) or set())
        ]
        ends = await probe.end_offsets(parts)
        return all(
            committed.get(tp) is not None and committed[tp].offset >= end
            for tp, end in ends.items()
            if end > 0
        )
    finally:
        await probe.stop()
        await admin.close()


@pytest.fixture
def scripted() -> list[Envelope]:
    return sc.envelopes()


@pytest.fixture
async def loaded(
    settings_for: Any, isolation: Any, scripted: list[Envelope]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(AnalyticsSettings)
    app = create_app(settings, clock=ManualClock(sc.NOW))
    # Reports need a credential: the client reads them all as the admin token would.
    async with app_client(app, headers={"X-Admin-Token": "test-admin-token"}) as client:
        await sc.load(isolation, scripted)
        await wait_until(lambda: sc.caught_up(client), timeout=60, message="projections caught up")
        yield client


async def test_funnel_waterfall_cohorts_and_flows_have_the_scripted_numbers(
    loaded: httpx.AsyncClient,
) -> None:
    body = (await loaded.get("/v1/funnel", params={"grain": "week"})).json()
    assert {r["stage"]: r["count"] for r in body["waterfall"]} == sc.WATERFALL
    assert {r["stage"]: r["conversion_to_next"] for r in body["waterfall"]} == sc.CONVERSION_TO_NEXT
    assert body["outcomes"] == {"lost": 1, "disqualified": 1}
    weekly: dict[str, dict[str, int]] = {}
    for r in body["cohorts"]:
        weekly.setdefault(r["cohort"], {})[r["stage"]] = r["count"]
    assert weekly == sc.WEEKLY
    assert body["period"]["recycled"] == 1
    assert body["period"]["rejected"] == 1
    assert body["period"]["disqualified"] == 1
    assert body["period"]["entries"]["inquiry"] == 6
    # Date range: only the second week's cohort.
    week2 = await loaded.get("/v1/funnel", params={"from": "2025-03-10", "to": "2025-03-16"})
    assert {r["stage"]: r["count"] for r in week2.json()["waterfall"]} == sc.WEEKLY["2025-03-10"]
    # Segment: the badge_scan channel only.
    badge = (await loaded.get("/v1/funnel", params={"channel": "badge_scan"})).json()
    assert [r["count"] for r in badge["waterfall"]] == [2, 1, 1, 1, 0, 0]


async def test_velocity_median_and_p90_per_stage_and_open_lead_age(
    loaded: httpx.AsyncClient,
) -> None:
    body = (await loaded.get("/v1/velocity")).json()
    got = {r["stage"]: (r["median_days"], r["p90_days"]) for r in body["stages"]}
    assert got == sc.VELOCITY_DAYS
    assert body["open_lead_age"] == {"leads": 3, "median_days": 27.0, "p90_days": 27.8}


async def test_sources_rates_revenue_and_roi_with_entered_campaign_costs(
    loaded: httpx.AsyncClient,
) -> None:
    cost = {
        "campaign": "spring",
        "channel": "web_form",
        "period_start": "2025-03-01",
        "period_end": "2025-03-31",
        "amount": 400,
    }
    no_credential = {"X-Admin-Token": ""}
    assert (
        await loaded.post("/v1/campaign-costs", json=cost, headers=no_credential)
    ).status_code == 401
    created = await loaded.post("/v1/campaign-costs", json=cost, headers=ADMIN)
    assert created.status_code == 201, created.text
    bad = await loaded.post(
        "/v1/campaign-costs", headers=ADMIN, json={**cost, "period_end": "2025-02-01"}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")

    rows = {r["source"]: r for r in (await loaded.get("/v1/sources")).json()["rows"]}
    web = rows["web_form"]
    assert (web["inquiries"], web["mqls"], web["sqls"], web["opportunities"], web["won"]) == (
        4,
        3,
        2,
        2,
        1,
    )
    assert (web["mql_rate"], web["sql_rate"], web["win_rate"]) == (0.75, 0.5, 0.5)
    # Pipeline is open opportunities only: L1's was won and L6's lost, so none is left.
    assert web["money"] == [
        {
            "currency": "USD",
            "pipeline": 0.0,
            "won_revenue": 1200.0,
            "won_deals": 1,
            "cost": 400.0,
            "cost_per_lead": 100.0,
            "roi": 2.0,
        }
    ]
    badge = rows["badge_scan"]
    assert (badge["inquiries"], badge["mqls"], badge["disqualified"], badge["money"]) == (
        2,
        1,
        1,
        [],
    )
    assert badge["win_rate"] is None
    campaigns = await loaded.get("/v1/sources", params={"group_by": "campaign"})
    by_campaign = {r["source"]: r for r in campaigns.json()["rows"]}
    assert by_campaign["spring"]["money"][0]["cost_per_lead"] == 100.0
    # Half of March: half the cost, over the leads of that half (L1, L2, L5, L6 all early March).
    half = {
        r["source"]: r
        for r in (
            await loaded.get(
                "/v1/sources",
                params={"group_by": "campaign", "from": "2025-03-01", "to": "2025-03-15"},
            )
        ).json()["rows"]
    }
    assert half["spring"]["money"][0]["cost"] == round(400 * 15 / 31, 2)
    events = (await loaded.get("/v1/sources", params={"group_by": "event"})).json()["rows"]
    assert {r["source"]: r["inquiries"] for r in events} == {"(none)": 5, "expo25": 1}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", {"spring": 1200.0}),
        ("last_touch", {"webinar": 1200.0}),
        ("linear", {"spring": 600.0, "webinar": 600.0}),
        ("u_shaped", {"spring": 600.0, "webinar": 600.0}),
        # W: first touch (spring) 30 %; the MQL and opportunity touch are both the webinar
        # (60 %); no other touches, so the last 10 % is split over the three key slots.
        ("w_shaped", {"spring": 400.0, "webinar": 800.0}),
    ],
)
async def test_attribution_models_split_the_won_revenue(
    loaded: httpx.AsyncClient, model: str, expected: dict[str, float]
) -> None:
    body = (await loaded.get("/v1/attribution", params={"model": model})).json()
    assert {r["campaign"]: r["revenue"] for r in body["rows"]} == expected
    assert {r["currency"] for r in body["rows"]} == {"USD"}
    assert body["totals"] == [{"currency": "USD", "revenue": 1200.0}]


async def test_unknown_attribution_model_is_a_problem_naming_the_field(
    loaded: httpx.AsyncClient,
) -> None:
    r = await loaded.get("/v1/attribution", params={"model": "time_decay"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "model"


async def test_reps_acceptance_reasons_and_sla_compliance(loaded: httpx.AsyncClient) -> None:
    body = (await loaded.get("/v1/reps")).json()
    reps = {r["rep_id"]: r for r in body["rows"]}
    r1, r2 = reps["r1"], reps["r2"]
    assert (r1["team_id"], r1["assigned"], r1["accepted"], r1["rejected"]) == ("t1", 2, 1, 1)
    assert (r1["acceptance_rate"], r1["rejection_rate"]) == (0.5, 0.5)
    assert (r1["won"], r1["money"]) == (1, [{"currency": "USD", "won_revenue": 1200.0}])
    assert (r2["assigned"], r2["accepted"], r2["recycled"], r2["sqls"], r2["lost"]) == (
        2,
        2,
        1,
        2,
        1,
    )
    assert r2["acceptance_rate"] == 1.0
    assert {(x["kind"], x["reason"]): x["count"] for x in body["reasons"]} == {
        ("rejected", "bad_fit"): 1,
        ("recycled", "timing"): 1,
        ("lost", "price"): 1,
    }
    (p1,) = body["sla_by_policy"]
    assert (p1["started"], p1["met_on_time"], p1["met_late"], p1["breached"]) == (3, 1, 1, 2)
    assert p1["late"] == 2  # L2 breached; L3 breached, then met late: one verdict per clock
    assert p1["compliance"] == 0.3333
    teams = {t["team_id"]: t["compliance"] for t in body["sla_by_team"]}
    assert teams == {"t1": 0.5, "t2": 0.0}


async def test_stuck_leads_are_open_leads_past_their_stage_expectation(
    loaded: httpx.AsyncClient,
) -> None:
    body = (await loaded.get("/v1/stuck")).json()
    assert body["total"] == 1
    (row,) = body["rows"]
    assert row["lead_id"] == str(sc.LEADS["L5"])
    assert (row["stage"], row["days_in_stage"], row["expected_days"]) == ("inquiry", 27.0, 7)


async def test_lead_plan_works_back_from_the_goal_with_measured_rates(
    loaded: httpx.AsyncClient,
) -> None:
    body = (await loaded.get("/v1/plan", params={"revenue": 12000, "period": "quarter"})).json()
    plan = body["plan"]
    assert (
        plan["avg_deal"],
        plan["won"],
        plan["opportunity"],
        plan["sql"],
        plan["sal"],
        plan["mql"],
        plan["inquiry"],
    ) == (1200.0, 10, 20, 30, 30, 40, 60)
    assert body["currency"] == plan["currency"] == "USD"
    (web,) = body["by_source"]  # only web_form has won revenue, so it carries the whole goal
    assert (web["segment"], web["won"], web["mql"], web["inquiry"]) == ("web_form", 10, 30, 40)
    bad = await loaded.get("/v1/plan", params={"revenue": -5})
    assert bad.status_code == 422


async def test_timeline_shows_history_in_order_and_hides_erased_personal_fields(
    loaded: httpx.AsyncClient,
) -> None:
    l1 = (await loaded.get(f"/v1/leads/{sc.LEADS['L1']}/timeline")).json()
    assert len(l1["events"]) == 10
    times = [e["occurred_at"] for e in l1["events"]]
    assert times == sorted(times)
    assert l1["events"][0]["payload"]["contact"]["email"] == sc.EMAIL["L1"]
    assert not l1["erased"]
    l4 = (await loaded.get(f"/v1/leads/{sc.LEADS['L4']}/timeline")).json()
    assert l4["erased"]
    assert [e["event_type"] for e in l4["events"]] == [
        "lead.captured",
        "lead.disqualified",
        "lead.erased",
    ]
    assert "contact" not in l4["events"][0]["payload"]
    assert sc.EMAIL["L4"] not in str(l4)
    missing = await loaded.get("/v1/leads/00000000-0000-0000-0000-0000000000ff/timeline")
    assert missing.status_code == 404


async def test_every_report_exports_csv(loaded: httpx.AsyncClient) -> None:
    for path in (
        "/v1/funnel",
        "/v1/velocity",
        "/v1/sources",
        "/v1/attribution",
        "/v1/reps",
        "/v1/stuck",
        "/v1/plan?revenue=1000",
        f"/v1/leads/{sc.LEADS['L1']}/timeline",
    ):
        r = await loaded.get(path, headers={"Accept": "text/csv"})
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/csv"), path
        assert len(r.text.strip().splitlines()) >= 2, path
    csv = (await loaded.get("/v1/funnel?format=csv")).text.splitlines()
    assert csv[0].startswith("cohort,stage,count")
    assert csv[1] == "all,inquiry,6,0.6667,1.0"


async def _snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    out = {}
    for path in (
        "/v1/funnel?grain=week",
        "/v1/velocity",
        "/v1/sources?group_by=campaign",
        "/v1/reps",
        "/v1/stuck",
        "/v1/attribution?model=w_shaped",
        "/v1/attribution?model=linear",
    ):
        out[path] = (await client.get(path)).json()
    return out


async def test_redelivered_events_are_logged_and_counted_once(
    loaded: httpx.AsyncClient, isolation: Any, scripted: list[Envelope]
) -> None:
    before = await _snapshot(loaded)
    # The same records again (same event ids), as after a consumer crash before commit.
    await sc.produce(isolation, scripted)
    await wait_until(
        lambda: consumer_done(isolation), timeout=60, message="redelivered records consumed"
    )
    await wait_until(lambda: sc.caught_up(loaded), timeout=60)
    assert await sc.log_count(isolation) == len(scripted)
    assert await _snapshot(loaded) == before


async def test_rebuild_of_every_projection_equals_the_incremental_result(
    loaded: httpx.AsyncClient, scripted: list[Envelope]
) -> None:
    before = await _snapshot(loaded)
    no_credential = {"X-Admin-Token": ""}
    assert (
        await loaded.post("/v1/projections/funnel/rebuild", headers=no_credential)
    ).status_code == 401
    for name in PROJECTION_NAMES:
        r = await loaded.post(f"/v1/projections/{name}/rebuild", headers=ADMIN)
        assert r.status_code == 202, r.text

        async def done(n: str = name) -> dict[str, Any] | None:
            body = (await loaded.get(f"/v1/projections/{n}")).json()
            return body if body["rebuild"]["state"] == "done" else None

        status = await wait_until(done, timeout=60, message=f"{name} rebuilt")
        # The live projection loop may apply some replay batches itself (the checkpoint lock
        # serialises it with the rebuild), so progress counts at most the whole log.
        assert status["rebuild"]["processed"] <= len(scripted)
        assert status["rebuild"]["total"] == status["head"] == status["position"]
    assert await _snapshot(loaded) == before
    unknown = await loaded.post("/v1/projections/nope/rebuild", headers=ADMIN)
    assert unknown.status_code == 404
