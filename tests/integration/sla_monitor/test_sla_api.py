"""Admin API (versioned policies, calendars) and handler decisions against real Postgres.

Consumers are off here (``run_consumers=False``): events are handed to the real handler in a
real unit of work, so these tests prove the SQL and the decisions without waiting on Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadContacted, LeadReassigned
from leadflow.events.catalogue.scoring import (
    LeadQualified,
    NurtureEnrolled,
    NurtureExited,
    NurtureTouchDue,
)
from leadflow.events.envelope import new_id, stream_id
from leadflow.sla_monitor.settings import SlaSettings
from tests.integration.sla_monitor.helpers import (
    ADMIN,
    MONDAY_10,
    accepted,
    assigned,
    deliver,
    envelope,
    kit_of_app,
    of_type,
    sla_app,
    sla_events,
)

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def sla(
    settings_for: Callable[..., SlaSettings],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with sla_app(settings_for, sla_default_timezone="Europe/Berlin") as running:
        yield running


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def accept_policy(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "policy_id": "accept-4bh",
        "name": "accept fast",
        "measures": "accept",
        "start_on": ["lead.assigned", "lead.reassigned"],
        "met_on": ["lead.accepted", "lead.rejected"],
        "stop_on": ["lead.reassigned", "lead.recycled"],
        "duration": {"amount": 1, "unit": "hours", "business": True},
        "warn_at_pct": 50,
        "escalation": [{"action": "remind_owner"}],
    }
    body.update(overrides)
    return body


# -- auth and problem+json -----------------------------------------------------------


async def test_admin_endpoints_need_the_admin_token(sla: Any) -> None:
    _, client = sla
    none = {"X-Admin-Token": ""}
    problem(await client.get("/v1/sla/policies", headers=none), 401)
    problem(await client.get("/v1/sla/policies", headers={"Authorization": "Bearer nope"}), 401)
    problem(await client.put("/v1/sla/calendars/x", json={}, headers=none), 401)
    problem(await client.get("/v1/sla/breaches", headers=none), 401)
    assert (await client.get("/v1/sla/policies", headers=ADMIN)).status_code == 200


# -- policies ------------------------------------------------------------------------


async def test_fresh_system_holds_sales_to_built_in_defaults(sla: Any) -> None:
    _, client = sla
    body = (await client.get("/v1/sla/policies", headers=ADMIN)).json()
    assert body["version"] == 0 and body["source"] == "built-in"
    assert {p["measures"] for p in body["policies"]} >= {"accept", "contact", "sal_age"}
    default = (await client.get("/v1/sla/calendars/default", headers=ADMIN)).json()
    assert default["timezone"] == "Europe/Berlin"  # from LEADFLOW_SLA_DEFAULT_TIMEZONE


async def test_editing_a_policy_publishes_a_new_version_event(sla: Any) -> None:
    app, client = sla
    response = await client.put("/v1/sla/policies/accept-4bh", json=accept_policy(), headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["source"] == "published"
    created = await client.put(
        "/v1/sla/policies/vip-30m",
        json=accept_policy(policy_id="vip-30m", segment={"grades": ["A"]}),
        headers=ADMIN,
    )
    assert created.status_code == 201 and created.json()["version"] == 2
    ids = [p["policy_id"] for p in created.json()["policies"]]
    assert "vip-30m" in ids and "contact-1bd" in ids

    versions = (await client.get("/v1/sla/policies/versions", headers=ADMIN)).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    v1 = (await client.get("/v1/sla/policies/versions/1", headers=ADMIN)).json()
    assert "vip-30m" not in [p["policy_id"] for p in v1["policies"]]

    published = await sla_events(kit_of_app(app), stream_id("sla-policies"))
    assert [e.payload.policies_version for e in published] == [1, 2]
    assert published[0].event_type == "sla.policies_published"

    deleted = await client.delete("/v1/sla/policies/vip-30m", headers=ADMIN)
    assert deleted.json()["version"] == 3
    problem(await client.get("/v1/sla/policies/vip-30m", headers=ADMIN), 404)
    problem(await client.delete("/v1/sla/policies/vip-30m", headers=ADMIN), 404)


async def test_invalid_policies_are_refused_naming_the_field(sla: Any) -> None:
    _, client = sla
    body = problem(
        await client.put(
            "/v1/sla/policies/accept-4bh",
            json=accept_policy(duration={"amount": 1, "unit": "fortnights"}),
            headers=ADMIN,
        ),
        422,
    )
    assert any("duration" in e["field"] for e in body["errors"])
    body = problem(
        await client.post(
            "/v1/sla/policies",
            json={"policies": [accept_policy(calendar_id="nowhere")]},
            headers=ADMIN,
        ),
        422,
    )
    assert body["errors"][0]["field"] == "policies[0].calendar_id"
    body = problem(
        await client.post(
            "/v1/sla/policies", json={"policies": [accept_policy(), accept_policy()]}, headers=ADMIN
        ),
        422,
    )
    assert body["errors"][0]["field"] == "policies[1].policy_id"
    body = problem(
        await client.put("/v1/sla/policies/other", json=accept_policy(), headers=ADMIN), 422
    )
    assert body["errors"][0]["field"] == "policy_id"
    # Nothing was published by any of them.
    assert (await client.get("/v1/sla/policies", headers=ADMIN)).json()["version"] == 0


async def test_new_policy_version_applies_to_clocks_started_after_it(sla: Any) -> None:
    app, client = sla
    before, after = new_id(), new_id()
    await deliver(app, assigned(before, MONDAY_10))
    await client.put("/v1/sla/policies/accept-4bh", json=accept_policy(), headers=ADMIN)
    await deliver(app, assigned(after, MONDAY_10))
    kit = kit_of_app(app)
    (old,) = of_type(await sla_events(kit, before), "sla.started")
    (new,) = of_type(await sla_events(kit, after), "sla.started")
    assert (old.payload.policy_version, old.payload.due_at) == (0, MONDAY_10 + timedelta(hours=4))
    assert (new.payload.policy_version, new.payload.due_at) == (1, MONDAY_10 + timedelta(hours=1))
    assert new.payload.warn_at == MONDAY_10 + timedelta(minutes=30)


async def test_segment_filters_decide_which_policies_start(sla: Any) -> None:
    app, client = sla
    vip = accept_policy(
        policy_id="vip-30m",
        duration={"amount": 30, "unit": "minutes"},
        segment={"grades": ["A"], "regions": ["EMEA"]},
    )
    await client.put("/v1/sla/policies/vip-30m", json=vip, headers=ADMIN)
    a_lead, c_lead = new_id(), new_id()
    await deliver(
        app, assigned(a_lead, MONDAY_10, grade="A-"), assigned(c_lead, MONDAY_10, grade="C")
    )
    kit = kit_of_app(app)
    assert {e.payload.policy_id for e in of_type(await sla_events(kit, a_lead), "sla.started")} == {
        "accept-4bh",
        "vip-30m",
    }
    assert {e.payload.policy_id for e in of_type(await sla_events(kit, c_lead), "sla.started")} == {
        "accept-4bh"
    }


# -- calendars -----------------------------------------------------------------------


async def test_calendar_crud_and_rep_calendars_drive_deadlines(sla: Any) -> None:
    app, client = sla
    ny = {
        "calendar_id": "us-east",
        "timezone": "America/New_York",
        "hours": {
            d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
        },
        "holidays": ["2026-03-10"],
        "rep_ids": ["rep-ny"],
    }
    assert (
        await client.put("/v1/sla/calendars/us-east", json=ny, headers=ADMIN)
    ).status_code == 201
    assert (
        await client.put("/v1/sla/calendars/us-east", json=ny, headers=ADMIN)
    ).status_code == 200
    listed = (await client.get("/v1/sla/calendars", headers=ADMIN)).json()["calendars"]
    assert {c["calendar_id"] for c in listed} == {"default", "us-east"}

    lead = new_id()
    # Monday 19:00 UTC = 15:00 EDT (US DST began 2026-03-08): 2h on Monday, Tuesday is the
    # rep's holiday, 2h on Wednesday from 09:00 EDT -> 11:00 EDT = 15:00 UTC.
    await deliver(app, assigned(lead, MONDAY_10 + timedelta(hours=9), rep="rep-ny"))
    (started,) = of_type(await sla_events(kit_of_app(app), lead), "sla.started")
    assert started.payload.calendar_id == "us-east"
    assert started.payload.due_at == datetime(2026, 3, 11, 15, 0, tzinfo=UTC)

    bad = problem(
        await client.put(
            "/v1/sla/calendars/mars",
            json={**ny, "calendar_id": "mars", "timezone": "Mars/Base"},
            headers=ADMIN,
        ),
        422,
    )
    assert any("timezone" in e["field"] for e in bad["errors"])
    await client.put(
        "/v1/sla/policies/accept-4bh", json=accept_policy(calendar_id="us-east"), headers=ADMIN
    )
    problem(await client.delete("/v1/sla/calendars/us-east", headers=ADMIN), 409)
    problem(await client.delete("/v1/sla/calendars/default", headers=ADMIN), 409)
    await client.put("/v1/sla/policies/accept-4bh", json=accept_policy(), headers=ADMIN)
    assert (await client.delete("/v1/sla/calendars/us-east", headers=ADMIN)).status_code == 204
    problem(await client.get("/v1/sla/calendars/us-east", headers=ADMIN), 404)


# -- lifecycle decisions ------------------------------------------------------------


async def test_reassignment_stops_the_old_clock_and_starts_one_for_the_new_owner(sla: Any) -> None:
    app, client = sla
    lead = new_id()
    await deliver(app, assigned(lead, MONDAY_10))
    await deliver(
        app,
        envelope(
            LeadReassigned(
                from_rep_id="rep-1",
                assignee_kind="rep",
                rep_id="rep-2",
                team_id="team-b",
                reason="sla_breach",
            ),
            lead,
            MONDAY_10 + timedelta(hours=5),
        ),
    )
    view = (await client.get(f"/v1/leads/{lead}/sla")).json()["slas"]
    assert [(s["status"], s["rep_id"]) for s in view] == [("stopped", "rep-1"), ("open", "rep-2")]
    assert view[0]["closed_by_event"] == "lead.reassigned"
    assert view[1]["started_by_event"] == "lead.reassigned"
    # Monday 15:00 + 4 business hours in Berlin (09-17 CET = 08-16 UTC) -> Tuesday 11:00 UTC
    assert view[1]["due_at"].startswith("2026-03-10T11:00:00")


async def test_contact_meets_contact_sla_with_business_elapsed_time(sla: Any) -> None:
    app, _ = sla
    lead = new_id()
    await deliver(app, assigned(lead, MONDAY_10), accepted(lead, MONDAY_10 + timedelta(hours=1)))
    contacted = envelope(LeadContacted(rep_id="rep-1"), lead, MONDAY_10 + timedelta(hours=23))
    await deliver(app, contacted)
    (met,) = of_type(await sla_events(kit_of_app(app), lead), "sla.met", policy_id="contact-1bd")
    assert met.payload.elapsed_seconds == 22 * 3600
    # Berlin 09-17 = 08:00-16:00 UTC: Mon 11:00-16:00 (5h) + Tue 08:00-09:00 (1h).
    assert met.payload.elapsed_business_seconds == 6 * 3600
    assert met.payload.on_time is True


async def test_assignment_consumed_before_its_qualification_still_meets_the_mql_clock(
    sla: Any,
) -> None:
    app, _ = sla
    lead = new_id()
    qualified = envelope(
        LeadQualified(
            fit=80,
            engagement=60,
            grade="A",
            matrix_cell="A1",
            model_version=1,
            lead=LeadSnapshot(grade="A"),
        ),
        lead,
        MONDAY_10,
    )
    # routing's topic got ahead of scoring's
    await deliver(app, assigned(lead, MONDAY_10 + timedelta(minutes=5)), qualified)
    kit = kit_of_app(app)
    (met,) = of_type(await sla_events(kit, lead), "sla.met", policy_id="mql-assigned-30m")
    assert met.payload.on_time and met.payload.elapsed_seconds == 300
    async with kit.connect() as conn:
        timers = [r[0] for r in await conn.fetch("SELECT key FROM timers")]
    assert all(not key.startswith(met.payload.sla_id) for key in timers)


async def test_nurture_cadence_restarts_on_each_touch_and_stops_on_exit(sla: Any) -> None:
    app, client = sla
    lead = new_id()
    await deliver(app, envelope(NurtureEnrolled(track_id="t1"), lead, MONDAY_10))
    touch = NurtureTouchDue(
        track_id="t1",
        step=1,
        content_id="c",
        channel="email",
        due_at=MONDAY_10 + timedelta(days=10),
    )
    await deliver(app, envelope(touch, lead, MONDAY_10 + timedelta(days=10)))
    await deliver(
        app,
        envelope(
            NurtureExited(track_id="t1", reason="qualified"), lead, MONDAY_10 + timedelta(days=12)
        ),
    )
    view = (await client.get(f"/v1/leads/{lead}/sla")).json()["slas"]
    assert [s["status"] for s in view] == ["met", "stopped"]
    # touch + 30 calendar days at the same Berlin wall-clock time (11:00 CET -> 11:00 CEST)
    assert view[1]["due_at"].startswith("2026-04-18T09:00:00")


async def test_unknown_lead_is_404_problem(sla: Any) -> None:
    _, client = sla
    body = problem(await client.get(f"/v1/leads/{uuid.uuid4()}/sla"), 404)
    assert "lead" in body["detail"]
    problem(await client.get("/v1/sla/breaches", params={"limit": 0}), 422)
