"""The lead process definition (GET/PUT /v1/process) against real Postgres: versions, the
published event, the SLA policies that refer to each stage, permissions and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI

from leadflow.events.envelope import stream_id
from leadflow.sla_monitor.settings import SlaSettings
from tests.integration.sla_monitor.helpers import ADMIN, kit_of_app, sla_app

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def sla(settings_for: Callable[..., SlaSettings]) -> AsyncIterator[tuple[FastAPI, Any]]:
    async with sla_app(settings_for) as running:
        yield running


def _stage(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in body["stages"] if s["stage"] == name)


async def test_the_built_in_process_is_version_0_with_an_owner_and_duration_per_open_stage(
    sla: Any,
) -> None:
    _, client = sla
    # The fixture's client carries the admin token; X-Admin-Token "" is no credential.
    assert (await client.get("/v1/process", headers={"X-Admin-Token": ""})).status_code == 401
    body = (await client.get("/v1/process", headers=ADMIN)).json()
    assert (body["version"], body["source"]) == (0, "built-in")
    assert [s["stage"] for s in body["stages"]] == [
        "inquiry", "nurture", "mql", "sal", "sql", "opportunity",
        "won", "customer", "lost", "disqualified", "on_hold", "churned",
    ]  # fmt: skip
    mql = _stage(body, "mql")
    assert mql["owner"] == "marketing_ops"
    assert mql["expected_duration"] == {"amount": 2.0, "unit": "days"}
    assert mql["entry_criteria"] and mql["next_steps"] and mql["definition"]
    # SLA policies refer to the stage they hold.
    assert mql["sla_policies"] == ["accept-4bh", "mql-assigned-30m"]
    assert _stage(body, "sal")["sla_policies"] == ["contact-1bd", "sal-max-14d"]
    assert _stage(body, "sql")["sla_policies"] == []
    assert _stage(body, "won")["expected_duration"] is None
    # past the close (issue 30): a customer is customer success's, with no expected duration
    assert _stage(body, "customer")["owner"] == "customer_success"
    assert _stage(body, "customer")["expected_duration"] is None


async def test_put_publishes_the_next_version_and_appends_process_published(sla: Any) -> None:
    app, client = sla
    current = (await client.get("/v1/process", headers=ADMIN)).json()
    stages = [{k: v for k, v in s.items() if k != "sla_policies"} for s in current["stages"]]
    for s in stages:
        if s["stage"] == "sql":
            s["owner"] = "account_executives"
            s["expected_duration"] = {"amount": 21, "unit": "days"}
    put = await client.put(
        "/v1/process", headers=ADMIN, json={"stages": stages, "published_by": "ops@example.com"}
    )
    assert put.status_code == 201, put.text
    body = put.json()
    assert (body["version"], body["source"], body["published_by"]) == (
        1,
        "published",
        "ops@example.com",
    )
    assert _stage(body, "sql")["owner"] == "account_executives"
    again = await client.put("/v1/process", headers=ADMIN, json={"stages": stages[:3]})
    assert again.json()["version"] == 2
    assert [s["stage"] for s in again.json()["stages"]] == ["inquiry", "nurture", "mql"]
    versions = (await client.get("/v1/process/versions", headers=ADMIN)).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    v1 = (await client.get("/v1/process/versions/1", headers=ADMIN)).json()
    assert _stage(v1, "sql")["expected_duration"] == {"amount": 21.0, "unit": "days"}
    assert (await client.get("/v1/process/versions/0", headers=ADMIN)).json()["version"] == 0
    assert (await client.get("/v1/process/versions/9", headers=ADMIN)).status_code == 404

    kit = kit_of_app(app)
    async with kit.connect() as conn:
        events = await kit.store.read_stream(conn, stream_id("lead-process"))
    assert [(e.event_type, e.payload.process_version) for e in events] == [  # type: ignore[attr-defined]
        ("sla.process_published", 1),
        ("sla.process_published", 2),
    ]
    first = events[0].payload
    assert first.published_by == "ops@example.com"  # type: ignore[attr-defined]
    assert first.sla_policies["mql"] == ["accept-4bh", "mql-assigned-30m"]  # type: ignore[attr-defined]
    assert len(first.stages) == 12  # type: ignore[attr-defined]


async def test_bad_definitions_are_refused_naming_the_field(sla: Any) -> None:
    _, client = sla
    dup = {"stages": [{"stage": "mql"}, {"stage": "sal"}, {"stage": "mql"}]}
    r = await client.put("/v1/process", headers=ADMIN, json=dup)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["stages[2].stage"]
    unknown = await client.put("/v1/process", headers=ADMIN, json={"stages": [{"stage": "x"}]})
    assert unknown.status_code == 422
    assert "stage" in str(unknown.json()["errors"])
    bad_duration = {"stages": [{"stage": "mql", "expected_duration": {"amount": 0}}]}
    r = await client.put("/v1/process", headers=ADMIN, json=bad_duration)
    assert r.status_code == 422
    assert "expected_duration" in str(r.json()["errors"])
    assert (await client.get("/v1/process", headers=ADMIN)).json()["version"] == 0
