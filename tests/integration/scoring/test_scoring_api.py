"""Scoring's admin API against a real Postgres: versioned model publish, validation errors as
problem+json naming the rule, simulate, backtest, track admin, lead score explanations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.intake import (
    AccountMatch,
    ActivityRecorded,
    Contact,
    LeadCaptured,
    QualificationAnswers,
)
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.events.kit import ServiceKit
from leadflow.scoring.app import create_app
from leadflow.scoring.builtin import default_model_data
from leadflow.scoring.settings import ScoringSettings
from leadflow.testing import app_client
from leadflow.testing.between import write_after_statement

pytestmark = [pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def client(settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(ScoringSettings, run_consumers=False)
    app = create_app(settings, clock=ManualClock(T0))
    async with app_client(app) as c:
        yield c


def kit_of(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client._transport.app.state.kit  # type: ignore[attr-defined]
    return kit


async def feed(client: httpx.AsyncClient, *envelopes: Envelope) -> None:
    """Run the real handlers in one unit of work, as the consumer would."""
    kit = kit_of(client)
    for envelope in envelopes:
        async with kit.unit_of_work(envelope) as uow:
            await kit.handlers[type(envelope.payload)](envelope, uow)


def captured(lead_id: uuid.UUID, title: str = "VP Marketing") -> Envelope:
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(email="a@acme.com", title=title, department="Marketing", company="Acme"),
        email_domain="acme.com",
        answers=QualificationAnswers(
            company_size="1000+", compelling_event="renewal", authority="yes", budget="80k"
        ),
    )
    return Envelope.new(payload, lead_id=lead_id, occurred_at=T0)


def activity(lead_id: uuid.UUID, kind: str) -> Envelope:
    payload = ActivityRecorded(activity_id=uuid.uuid4().hex, activity_type=kind)
    return Envelope.new(payload, lead_id=lead_id, occurred_at=T0)


async def test_admin_token_is_required(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/scoring/model")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    # A credential that proves nothing is no credential (RFC 6750 invalid_token): 401, not 403.
    r = await client.get("/v1/scoring/model", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401  # not a valid credential (RFC 6750: invalid_token)
    assert "invalid_token" in r.headers["www-authenticate"]


async def test_publish_appends_versions_that_stay_readable(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/scoring/model", headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 0
    first = default_model_data() | {"name": "first"}
    r = await client.put("/v1/scoring/model", json=first, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    second = default_model_data() | {"name": "second"}
    r = await client.put("/v1/scoring/model", json=second, headers={**AUTH, "If-Match": '"1"'})
    assert r.status_code == 201 and r.json()["version"] == 2
    stale = await client.put("/v1/scoring/model", json=second, headers={**AUTH, "If-Match": '"1"'})
    assert stale.status_code == 409
    assert (await client.get("/v1/scoring/model", headers=AUTH)).json()["name"] == "second"
    v1 = await client.get("/v1/scoring/model/versions/1", headers=AUTH)
    assert v1.status_code == 200 and v1.json()["name"] == "first" and v1.json()["version"] == 1
    listing = (await client.get("/v1/scoring/model/versions", headers=AUTH)).json()["versions"]
    assert [(v["version"], v["name"]) for v in listing] == [(2, "second"), (1, "first")]
    assert (await client.get("/v1/scoring/model/versions/0", headers=AUTH)).json()["source"] == (
        "built-in"
    )
    missing = await client.get("/v1/scoring/model/versions/9", headers=AUTH)
    assert missing.status_code == 404
    # each publish is an event on the model stream
    async with kit_of(client).connect() as conn:
        from leadflow.events.envelope import stream_id

        events = await kit_of(client).store.read_stream(conn, stream_id("scoring-model"))
    assert [e.payload.model_version for e in events] == [1, 2]  # type: ignore[attr-defined]


async def test_invalid_model_is_refused_naming_the_rule(client: httpx.AsyncClient) -> None:
    bad = default_model_data()
    bad["fit_rules"][3]["attribute"] = "shoe_size"
    bad["decay"] = {"half_life_days": 0}
    bad["fit_grades"][1] = {"grade": "A", "min": 75, "max": 90}
    r = await client.put("/v1/scoring/model", json=bad, headers=AUTH)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"fit_rules[3].attribute", "decay.half_life_days"} <= fields
    assert any(f.startswith("fit_grades[") for f in fields)
    assert (await client.get("/v1/scoring/model", headers=AUTH)).json()["version"] == 0


async def test_a_rule_on_an_activity_type_intake_refuses_is_not_published(
    client: httpx.AsyncClient,
) -> None:
    draft = default_model_data()
    draft["engagement_rules"][0]["activity_types"] = ["demo_request", "carrier_pigeon"]
    r = await client.put("/v1/scoring/model", json=draft, headers=AUTH)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    (error,) = r.json()["errors"]
    assert error["field"] == "engagement_rules[0].activity_types[1]"
    assert "carrier_pigeon" in error["message"]
    # an alias of a catalogued type is fine, in any spelling
    draft["engagement_rules"][0]["activity_types"] = ["Demo Requested", "trial_started"]
    assert (await client.put("/v1/scoring/model", json=draft, headers=AUTH)).status_code == 201


async def test_simulate_scores_samples_without_storing(client: httpx.AsyncClient) -> None:
    body = {
        "now": T0.isoformat(),
        "leads": [
            {"id": "vp", "profile": {"title": "VP Sales", "company_size": 900},
             "activities": [{"activity_type": "Demo Request", "occurred_at": T0.isoformat()}]},
            {"id": "student", "profile": {"title": "Student"}},
        ],
    }  # fmt: skip
    r = await client.post("/v1/scoring/simulate", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    vp, student = r.json()["results"]
    assert vp["id"] == "vp" and vp["engagement"] == 30
    assert {c["rule_id"] for c in vp["contributions"]} >= {"seniority_vp", "demo_request"}
    assert student["disqualified_by"] == "student" and not student["mql_ready"]
    draft = default_model_data()
    draft["engagement_rules"][0]["points"] = 5
    r = await client.post("/v1/scoring/simulate", json={**body, "model": draft}, headers=AUTH)
    assert r.json()["results"][0]["engagement"] == 5
    bad = await client.post(
        "/v1/scoring/simulate",
        json={"leads": [{"profile": {"shoe_size": 9}}]},
        headers=AUTH,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "leads[0].profile.shoe_size"
    async with kit_of(client).connect() as conn:
        assert await conn.fetchval("SELECT count(*) FROM leads") == 0


async def test_backtest_counts_leads_changing_mql_status(client: httpx.AsyncClient) -> None:
    hot = [uuid.uuid4() for _ in range(3)]
    cold = [uuid.uuid4() for _ in range(2)]
    for lead_id in hot:
        await feed(client, captured(lead_id), activity(lead_id, "demo_request"),
                   activity(lead_id, "webinar_attended"))  # fmt: skip
    for lead_id in cold:
        await feed(client, captured(lead_id, title="Marketing Manager"))
    strict = default_model_data()
    strict["mql"] = {"cells": ["A1"]}
    r = await client.post("/v1/scoring/backtest", json={"model": strict}, headers=AUTH)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["leads"] == 5
    assert report["would_stop_being_mql"] == 3 and report["would_become_mql"] == 0
    assert report["mql_status_changed"] == 3
    assert {e["lead_id"] for e in report["examples"]} == {str(i) for i in hot}


async def test_a_backtest_reads_one_moment_while_a_lead_is_captured(
    client: httpx.AsyncClient,
) -> None:
    """The backtest pages through the open leads by id. A lead captured while it pages must
    be counted whole or not at all: here one with the highest id commits right after the
    first page was read. The backtest counts the moment it started (2 leads), the next one
    counts 3; without one snapshot the second page would have found it."""
    for _ in range(2):
        await feed(client, captured(uuid.uuid4()))
    last = uuid.UUID(int=2**128 - 1)  # after every page of the first run
    draft = default_model_data()

    async def capture() -> None:  # after the first page of open leads
        await feed(client, captured(last))

    with write_after_statement("fetch", "status = 'open'", capture) as b:
        during = await client.post("/v1/scoring/backtest", json={"model": draft}, headers=AUTH)
    after = await client.post("/v1/scoring/backtest", json={"model": draft}, headers=AUTH)
    assert b.wrote_after  # the lead was captured between two pages
    assert (during.json()["leads"], after.json()["leads"]) == (2, 3)


async def test_an_account_score_reads_one_moment_while_an_activity_commits(
    client: httpx.AsyncClient,
) -> None:
    """``GET /v1/accounts/{key}/score`` reads the account's people, the model, then each
    one's activities. A demo request committing after the people were read is not rolled
    up beside the people as they were (engagement 10 each, one inquiry); the next read
    rolls it up."""
    people = [uuid.uuid4(), uuid.uuid4()]
    account = AccountMatch(account_id="initrode", domain="initrode.com", registered=True)
    for lead_id in people:
        event = captured(lead_id)
        payload = event.payload.model_copy(update={"account": account})
        await feed(client, Envelope.new(payload, lead_id=lead_id, occurred_at=T0))

    async def demo() -> None:  # after the people are read, before their activities
        await feed(client, activity(people[0], "demo_request"))

    with write_after_statement("fetch", "account_domain", demo) as b:
        during = (await client.get("/v1/accounts/initrode/score", headers=AUTH)).json()
    after = (await client.get("/v1/accounts/initrode/score", headers=AUTH)).json()
    assert b.wrote_after  # the demo did commit in between
    assert [p["engagement"] for p in during["people"]] == [10.0, 10.0]
    assert after["engagement"] > during["engagement"]


async def test_lead_score_explains_with_reasons(client: httpx.AsyncClient) -> None:
    lead_id = uuid.uuid4()
    await feed(client, captured(lead_id), activity(lead_id, "demo_request"))
    r = await client.get(f"/v1/leads/{lead_id}/score", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["engagement"] == 40  # inquiry 10 + demo 30
    rules = {c["rule_id"]: c for c in body["contributions"]}
    assert rules["demo_request"]["points"] == 30 and rules["demo_request"]["reason"]
    assert body["matrix_cell"] == f"{body['grade'][0]}{body['engagement_level']}"
    unknown = await client.get(f"/v1/leads/{uuid.uuid4()}/score", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_a_lead_score_reads_one_moment_while_an_activity_commits(
    client: httpx.AsyncClient,
) -> None:
    """``GET /v1/leads/{id}/score`` reads the lead, the model, then the lead's activities. A
    consumer batch committing an activity between them must not be scored beside the lead's
    published score and status from before it. Here a webinar commits right after the lead
    was read: the answer is the moment it started (engagement 40, as published), the next
    one scores the webinar too."""
    lead_id = uuid.uuid4()
    await feed(client, captured(lead_id), activity(lead_id, "demo_request"))

    async def webinar() -> None:  # between the lead and its activities
        await feed(client, activity(lead_id, "webinar_attended"))

    with write_after_statement("fetchrow", "FROM leads", webinar) as b:
        during = (await client.get(f"/v1/leads/{lead_id}/score", headers=AUTH)).json()
    after = (await client.get(f"/v1/leads/{lead_id}/score", headers=AUTH)).json()
    assert b.wrote_after  # the activity did commit in between
    assert (during["engagement"], during["last_published"]["engagement"]) == (40, 40)
    rules = {c["rule_id"] for c in during["contributions"]}
    assert "demo_request" in rules and "webinar_attended" not in rules
    assert after["engagement"] > 40
    assert "webinar_attended" in {c["rule_id"] for c in after["contributions"]}


async def test_track_admin_crud(client: httpx.AsyncClient) -> None:
    tracks = (await client.get("/v1/scoring/tracks", headers=AUTH)).json()["tracks"]
    assert {t["id"] for t in tracks} == {"recycled", "enterprise", "general"}
    body = {"name": "Healthcare", "priority": 5,
            "when": [{"attribute": "industry", "op": "contains", "value": "health"}],
            "steps": [{"content_id": "hipaa-guide", "wait_hours": 2}]}  # fmt: skip
    r = await client.put("/v1/scoring/tracks/health", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 1
    r = await client.put("/v1/scoring/tracks/health", json=body, headers=AUTH)
    assert r.json()["version"] == 2
    bad = await client.put(
        "/v1/scoring/tracks/x",
        json={"steps": [{"content_id": "c", "wait_hours": 1}],
              "when": [{"attribute": "mood", "op": "present"}]},
        headers=AUTH,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "when[0].attribute"
    assert (await client.delete("/v1/scoring/tracks/health", headers=AUTH)).status_code == 204
    tracks = (await client.get("/v1/scoring/tracks", headers=AUTH)).json()["tracks"]
    assert "health" not in {t["id"] for t in tracks}
    assert (await client.delete("/v1/scoring/tracks/health", headers=AUTH)).status_code == 404
