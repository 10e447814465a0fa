"""End to end with routing running: an unanswered lead climbs the ladder, the ``reassign``
step makes routing hand it to another rep, and the SLA clock moves to the new owner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, new_id
from leadflow.routing.app import create_app as create_routing_app
from leadflow.routing.settings import RoutingSettings
from leadflow.sla_monitor.app import create_app as create_sla_app
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.sla_monitor.helpers import kit_of_app, of_type, sla_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": "Bearer test-admin-token"}
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


async def configure_routing(client: httpx.AsyncClient) -> None:
    for rep_id in ("rep-x", "rep-y"):
        r = await client.put(
            f"/v1/routing/reps/{rep_id}", json={"team_id": "na", "weight": 1}, headers=AUTH
        )
        assert r.status_code == 200, r.text
    for path, body in [
        ("/v1/routing/teams/na", {"members": ["rep-x", "rep-y"]}),
        ("/v1/routing/queues/unassigned", {"name": "Unassigned"}),
    ]:
        assert (await client.put(path, json=body, headers=AUTH)).status_code == 200
    r = await client.post(
        "/v1/routing/rules",
        json={"rules": [{"id": "na", "when": {}, "target": {"kind": "team", "team_id": "na"}}]},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text


async def test_reassign_escalation_makes_routing_reassign_and_the_clock_follows(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(MONDAY_10)
    routing = create_routing_app(settings_for(RoutingSettings), clock=clock)
    sla = create_sla_app(settings_for(SlaSettings), clock=clock)
    lead = new_id()
    async with (
        app_client(routing) as routing_client,
        app_client(sla, headers={"X-Admin-Token": "test-admin-token"}) as sla_client,
    ):
        await configure_routing(routing_client)
        kit = kit_of_app(sla)
        assert kit.timer_runner is not None
        qualified = LeadQualified(
            fit=80,
            engagement=60,
            grade="A",
            matrix_cell="A1",
            model_version=1,
            lead=LeadSnapshot(grade="A", country="US"),
        )
        await produce_events(
            kafka_bootstrap,
            isolation.topic("scoring"),
            [Envelope.new(qualified, lead_id=lead, occurred_at=MONDAY_10)],
        )

        async def accept_clocks() -> list[Envelope]:
            return of_type(await sla_events(kit, lead), "sla.started", policy_id="accept-4bh")

        (first,) = await wait_until(accept_clocks, timeout=90, message="routing assigned")
        first_rep = first.payload.rep_id
        assert first_rep in {"rep-x", "rep-y"}
        assert first.payload.due_at == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
        # Marketing's side was kept too: the MQL was assigned within 30 minutes.
        await wait_until(
            lambda: _has(kit, lead, "sla.met", policy_id="mql-assigned-30m", on_time=True)
        )

        # Nobody answers. Breach Monday 14:00, manager at 15:00, reassign 4 business hours
        # after the breach = Tuesday 10:00.
        clock.set(datetime(2026, 3, 10, 10, 0, tzinfo=UTC))
        await wait_until(
            lambda: _has(kit, lead, "sla.escalation_raised", step=3, action="reassign"),
            message="reassign raised",
        )
        clocks = await wait_until(
            lambda: _two(accept_clocks), timeout=90, message="routing reassigned"
        )
        second = clocks[1]
        assert second.payload.started_by_event == "lead.reassigned"
        assert second.payload.rep_id not in (None, first_rep)
        assert second.payload.due_at == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)

        view = (await sla_client.get(f"/v1/leads/{lead}/sla")).json()["slas"]
        by_id = {s["sla_id"]: s for s in view}
        assert by_id[first.payload.sla_id]["status"] == "stopped"
        assert by_id[first.payload.sla_id]["closed_by_event"] == "lead.reassigned"
        assert by_id[second.payload.sla_id]["status"] == "open"

        # The old clock's ladder is over: no return_to_marketing for it, no timers left.
        clock.set(datetime(2026, 3, 10, 11, 0, tzinfo=UTC))
        await kit.timer_runner.run_due()
        events = await sla_events(kit, lead)
        assert of_type(events, "sla.escalation_raised", sla_id=first.payload.sla_id, step=4) == []
        async with kit.connect() as conn:
            keys = [r[0] for r in await conn.fetch("SELECT key FROM timers")]
        assert not [k for k in keys if k.startswith(first.payload.sla_id)]


async def _has(kit: Any, lead: Any, event_type: str, **match: Any) -> bool:
    return bool(of_type(await sla_events(kit, lead), event_type, **match))


async def _two(fetch: Callable[[], Any]) -> list[Envelope] | None:
    found: list[Envelope] = await fetch()
    return found if len(found) >= 2 else None
