"""Routing through the real broker and database: assignment exactly once (redelivery, two
instances in one consumer group), the hand-off walk, refused transitions, SLA escalations."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadQualified
from leadflow.events.catalogue.sla import EscalationRaised, SlaStarted
from leadflow.events.envelope import Envelope, EventPayload, new_id, stream_id
from leadflow.events.kit import ServiceKit
from leadflow.routing.app import create_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, consume_topic, produce_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}
US = LeadSnapshot(country="US", industry="Software", company_size=300, grade="A")


def _kit(client: httpx.AsyncClient) -> ServiceKit:
    app = client._transport.app  # type: ignore[attr-defined]
    kit: ServiceKit = app.state.kit
    return kit


def qualified(lead_id: uuid.UUID, lead: LeadSnapshot = US) -> Envelope:
    payload = LeadQualified(
        fit=80, engagement=60, grade=lead.grade or "A", matrix_cell="A1", model_version=1, lead=lead
    )
    return Envelope.new(payload, lead_id=lead_id)


def sla_event(lead_id: uuid.UUID, payload: EventPayload) -> Envelope:
    return Envelope.new(payload, lead_id=lead_id)


async def configure(client: httpx.AsyncClient, weights: dict[str, int]) -> None:
    """Reps on team na, a fallback queue, and one rule: the team by weighted round-robin."""
    for rep_id, weight in weights.items():
        r = await client.put(
            f"/v1/routing/reps/{rep_id}", json={"team_id": "na", "weight": weight}, headers=AUTH
        )
        assert r.status_code == 200, r.text
    for path, body in [
        ("/v1/routing/teams/na", {"members": list(weights)}),
        ("/v1/routing/queues/unassigned", {"name": "Unassigned"}),
    ]:
        assert (await client.put(path, json=body, headers=AUTH)).status_code == 200
    r = await client.post(
        "/v1/routing/rules",
        json={
            "rules": [
                {
                    "id": "emea",
                    "when": {"country": ["DE", "FR"]},
                    "target": {"kind": "queue", "queue_id": "unassigned"},
                },
                {
                    "id": "na-pool",
                    "when": {"grade": ["A", "B"]},
                    "target": {"kind": "team", "team_id": "na"},
                },
            ],
            "published_by": "ops@example.com",
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text


@contextlib.asynccontextmanager
async def routing(settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(RoutingSettings, consumer_batch_size=50))
    async with app_client(app) as client:
        yield client


async def scalar(client: httpx.AsyncClient, sql: str, **params: Any) -> Any:
    async with _kit(client).connect() as tx:
        return await tx.fetchval(sql, **params)


async def assignment(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict[str, Any]:
    r = await client.get(f"/v1/leads/{lead_id}/assignment", headers=AUTH)
    return r.json() if r.status_code == 200 else {}


async def test_each_qualified_lead_assigned_once_under_redelivery_with_two_instances(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as one, routing(settings_for) as two:
        await configure(one, {"a": 2, "b": 1})
        await wait_until(
            lambda: all(
                k.consumer is not None
                and k.consumer._consumer is not None
                and k.consumer._consumer.assignment()
                for k in (_kit(one), _kit(two))
            ),
            timeout=60,
            message="both instances own partitions of the consumer group",
        )
        leads = [new_id() for _ in range(21)]
        events = [qualified(lead) for lead in leads]
        # every record delivered twice, plus a second, distinct LeadQualified for one lead
        again = qualified(leads[0])
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [*events, again, *events]
        )

        async def settled() -> bool:
            seen = await scalar(one, "SELECT count(DISTINCT event_id) FROM inbox")
            pending = await scalar(one, "SELECT count(*) FROM outbox")
            return seen == 22 and pending == 0

        await wait_until(settled, timeout=60, message="all events consumed and published")
        published = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda evs: sum(e.event_type == "lead.assigned" for e in evs) >= 21,
        )
        assigned = [e for e in published if e.event_type == "lead.assigned"]
        assert len(assigned) == 21
        assert sorted(e.lead_id for e in assigned) == sorted(leads)
        # the pointer is shared through the database: 2:1 weights give exactly 14:7
        assert Counter(e.payload.rep_id for e in assigned) == {"a": 14, "b": 7}  # type: ignore[attr-defined]
        assert await scalar(one, "SELECT count(*) FROM assignments") == 21
        both = [k.consumer.processed for k in (_kit(one), _kit(two))]  # type: ignore[union-attr]
        assert all(n > 0 for n in both), f"each instance handled records: {both}"
        # publishing the rules appended to the routing-rules stream
        assert (
            await scalar(
                one,
                "SELECT count(*) FROM event_log WHERE lead_id = :s",
                s=stream_id("routing-rules"),
            )
            == 1
        )


async def _assigned_lead(
    client: httpx.AsyncClient, isolation: Any, lead: LeadSnapshot = US
) -> tuple[uuid.UUID, dict[str, Any]]:
    lead_id = new_id()
    await produce_events(
        isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead_id, lead)]
    )
    got = await wait_until(
        lambda: _when(assignment(client, lead_id), lambda a: a.get("assignee_kind")),
        timeout=90,
        message="lead assigned",
    )
    return lead_id, got


async def test_hand_off_walks_lead_from_mql_to_won_and_refuses_after(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead_id, got = await _assigned_lead(client, isolation)
        assert (got["stage"], got["rep_id"], got["team_id"]) == ("mql", "a", "na")
        expl = got["decisions"][0]["explanation"]
        assert expl["rule_id"] == "na-pool"
        assert expl["rules_not_matched"][0]["rule_id"] == "emea"

        # missing required fields are refused whole, naming the field
        r = await client.post(
            f"/v1/leads/{lead_id}/opportunity", json={"amount": "100"}, headers=AUTH
        )
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == ["currency"]
        r = await client.post(
            f"/v1/leads/{lead_id}/reject", json={"reason_code": "bogus"}, headers=AUTH
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason_code"

        steps = [
            ("accept", {}, "sal"),
            ("contacted", {"channel": "phone"}, "sal"),
            ("qualify", {"note": "BANT confirmed"}, "sql"),
            ("opportunity", {"amount": "12500.00", "currency": "EUR"}, "opportunity"),
            # won → customer: routing records customer.became with the win (issue 30)
            ("won", {"amount": "12000.00"}, "customer"),
        ]
        for action, body, stage in steps:
            r = await client.post(f"/v1/leads/{lead_id}/{action}", json=body, headers=AUTH)
            assert r.status_code == 200, (action, r.text)
            assert r.json()["stage"] == stage and r.json()["rep_id"] == "a"
            if action == "accept":  # a double click is answered, not recorded twice
                r = await client.post(f"/v1/leads/{lead_id}/accept", json={}, headers=AUTH)
                assert r.status_code == 200 and r.json()["repeated"] is True

        r = await client.post(
            f"/v1/leads/{lead_id}/recycle", json={"reason_code": "not_ready"}, headers=AUTH
        )
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["current_stage"] == "customer" and "customer" in r.json()["detail"]

        published = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda evs: any(e.event_type == "customer.became" for e in evs),
        )
        became = [e for e in published if e.event_type == "customer.became"]
        assert len(became) == 1 and became[0].payload.cycle == "new_business"
        won = next(e for e in published if e.event_type == "deal.won")
        assert won.payload.cycle == "new_business"
        assert became[0].stream_version == won.stream_version + 1
        assert became[0].payload.rep_id == "a"
        mine = [e for e in published if e.lead_id == lead_id]
        assert [e.event_type for e in mine] == [
            "lead.assigned",
            "lead.accepted",
            "lead.contacted",
            "lead.sales_qualified",
            "opportunity.opened",
            "deal.won",
            "customer.became",
        ]
        won = mine[-2].payload
        assert (str(won.amount), won.currency) == ("12000.00", "EUR")  # type: ignore[attr-defined]
        queue = (await client.get("/v1/reps/a/queue", headers=AUTH)).json()
        assert queue["count"] == 0  # won leads leave the rep's open queue


async def test_hand_off_recycles_lead_to_nurture_and_refuses_accept_after(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead_id, _ = await _assigned_lead(client, isolation)
        assert (
            await client.post(f"/v1/leads/{lead_id}/accept", json={}, headers=AUTH)
        ).status_code == 200
        r = await client.post(
            f"/v1/leads/{lead_id}/recycle",
            json={"reason_code": "timing", "note": "next quarter"},
            headers=AUTH,
        )
        assert r.status_code == 200 and r.json()["stage"] == "nurture"
        r = await client.post(f"/v1/leads/{lead_id}/accept", json={}, headers=AUTH)
        assert r.status_code == 409 and r.json()["current_stage"] == "nurture"
        assert (await client.get("/v1/reps/a/queue", headers=AUTH)).json()["count"] == 0
        # scoring qualifies it again: a new cycle, a second decision
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead_id)]
        )
        got = await wait_until(
            lambda: _when(assignment(client, lead_id), lambda a: len(a["decisions"]) == 2),
            timeout=90,
            message="requalified lead assigned again",
        )
        assert (got["stage"], got["rep_id"]) == ("mql", "a")
        assert [d["cycle"] for d in got["decisions"]] == [1, 2]
        # the configured list decides which reason codes exist
        r = await client.put(
            "/v1/routing/reason-codes/recycle", json={"codes": ["only_this"]}, headers=AUTH
        )
        assert r.status_code == 200
        r = await client.post(
            f"/v1/leads/{lead_id}/recycle", json={"reason_code": "timing"}, headers=AUTH
        )
        assert r.status_code == 422 and "only_this" in r.json()["errors"][0]["message"]
        r = await client.post(
            f"/v1/leads/{lead_id}/recycle", json={"reason_code": "only_this"}, headers=AUTH
        )
        assert r.status_code == 200 and r.json()["stage"] == "nurture"
        r = await client.post(f"/v1/leads/{new_id()}/accept", json={}, headers=AUTH)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


async def test_escalation_reassign_skips_breaching_rep_and_return_recycles(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1, "b": 1})
        lead_id, got = await _assigned_lead(client, isolation)
        first = got["rep_id"]
        other = "b" if first == "a" else "a"
        due = datetime.now(UTC) + timedelta(hours=1)
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("sla"),
            [
                sla_event(
                    lead_id,
                    SlaStarted(
                        sla_id="s1",
                        policy_id="mql-accept",
                        started_by_event="lead.assigned",
                        rep_id=first,
                        started_at=datetime.now(UTC),
                        due_at=due,
                    ),
                ),
            ],
        )

        async def queue_shows_due() -> dict[str, Any] | None:
            q = (await client.get(f"/v1/reps/{first}/queue", headers=AUTH)).json()
            return q if q["count"] == 1 and q["leads"][0]["sla"] else None

        q = await wait_until(queue_shows_due, timeout=90, message="SLA due time in rep queue")
        assert datetime.fromisoformat(q["leads"][0]["sla"]["due_at"]) == due

        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("sla"),
            [
                sla_event(
                    lead_id,
                    EscalationRaised(
                        sla_id="s1", policy_id="mql-accept", step=1, action="reassign", rep_id=first
                    ),
                ),
            ],
        )

        async def reassigned() -> dict[str, Any] | None:
            a = await assignment(client, lead_id)
            return a if a.get("rep_id") != first else None

        got = await wait_until(reassigned, timeout=90, message="lead reassigned")
        assert got["rep_id"] == other and got["excluded_reps"] == [first]

        # a late step of the first rep's SLA does not take the lead from the new owner (it is
        # on the same partition, so it is handled before the next one); the second breach
        # excludes both reps: the lead waits in the fallback queue
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("sla"),
            [
                sla_event(
                    lead_id,
                    EscalationRaised(
                        sla_id="s1", policy_id="mql-accept", step=2, action="reassign", rep_id=first
                    ),
                ),
                sla_event(
                    lead_id,
                    EscalationRaised(
                        sla_id="s2", policy_id="mql-accept", step=1, action="reassign", rep_id=other
                    ),
                ),
            ],
        )
        got = await wait_until(
            lambda: _when(assignment(client, lead_id), lambda a: a.get("assignee_kind") == "queue"),
            timeout=90,
        )
        assert got["queue_id"] == "unassigned"

        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("sla"),
            [
                sla_event(
                    lead_id,
                    EscalationRaised(
                        sla_id="s2", policy_id="mql-accept", step=2, action="return_to_marketing"
                    ),
                ),
            ],
        )
        await wait_until(
            lambda: _when(assignment(client, lead_id), lambda a: a.get("stage") == "nurture"),
            timeout=90,
        )
        published = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda evs: any(e.event_type == "lead.recycled" for e in evs),
        )
        published = [e for e in published if e.lead_id == lead_id]
        types = [(e.event_type, getattr(e.payload, "from_rep_id", None)) for e in published]
        assert types == [
            ("lead.assigned", None),
            ("lead.reassigned", first),
            ("lead.reassigned", other),
            ("lead.recycled", None),
        ]
        assert published[-1].payload.reason_code == "sla_return"  # type: ignore[attr-defined]
        # the assignment API lists every owner decision, reassignments included
        decisions = (await assignment(client, lead_id))["decisions"]
        assert [
            (d["kind"], d["explanation"]["from_rep_id"] if d["kind"] == "reassigned" else None)
            for d in decisions
        ] == [
            ("assigned", None),
            ("reassigned", first),
            ("reassigned", other),
        ]
        assert decisions[1]["explanation"]["rep_id"] == other
        assert decisions[1]["explanation"]["sla_id"] == "s1"
        assert decisions[2]["explanation"]["assignee_kind"] == "queue"
        assert [d["event_id"] for d in decisions[1:]] == [
            str(e.event_id) for e in published if e.event_type == "lead.reassigned"
        ]


async def test_disqualified_lead_leaves_rep_queue_and_simulate_assigns_nothing(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        r = await client.post(
            "/v1/routing/simulate", json={"lead": {"country": "DE", "grade": "A"}}, headers=AUTH
        )
        assert r.status_code == 200, r.text
        sim = r.json()
        assert (sim["dry_run"], sim["queue_id"], sim["rule_id"]) == (True, "unassigned", "emea")
        r = await client.post(
            "/v1/routing/simulate", json={"lead": {"country": "US"}, "grade": "B+"}, headers=AUTH
        )
        assert (r.json()["rep_id"], r.json()["method"]) == ("a", "round_robin")
        assert await scalar(client, "SELECT count(*) FROM leads") == 0
        assert (
            await scalar(
                client, "SELECT count(*) FROM event_log WHERE event_type = 'lead.assigned'"
            )
            == 0
        )

        lead_id, _ = await _assigned_lead(client, isolation)
        assert (await client.get("/v1/reps/a/queue", headers=AUTH)).json()["count"] == 1
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("scoring"),
            [Envelope.new(LeadDisqualified(reason="competitor"), lead_id=lead_id)],
        )
        await wait_until(
            lambda: _when(
                client.get("/v1/reps/a/queue", headers=AUTH), lambda r: r.json()["count"] == 0
            ),
            timeout=90,
        )
        assert (await assignment(client, lead_id))["stage"] == "disqualified"


async def test_admin_api_needs_token_and_refuses_unknown_references(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    app = create_app(settings_for(RoutingSettings, run_consumers=False))
    async with app_client(app) as client:
        assert (await client.get("/v1/routing/reps")).status_code == 401
        r = await client.put("/v1/routing/reps/x", json={"timezone": "Nowhere/City"}, headers=AUTH)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "timezone"
        r = await client.post(
            "/v1/routing/rules",
            json={"rules": [{"id": "r", "target": {"kind": "team", "team_id": "ghosts"}}]},
            headers=AUTH,
        )
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {
            "rules[0].target.team_id",
            "default_queue_id",
        }


async def _when(awaitable: Any, check: Callable[[Any], bool]) -> Any:
    value = await awaitable
    return value if check(value) else None
