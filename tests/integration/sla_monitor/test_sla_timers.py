"""SLA clocks end to end with a driven clock, real Kafka and real Postgres.

The clock is a ``ManualClock``: the test moves it, the service's timer runner fires what is
due. Events go in on the routing topic and come out on the sla topic, as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, new_id
from leadflow.sla_monitor.app import create_app
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client, consume_topic, produce_events, wait_until
from tests.integration.sla_monitor.helpers import (
    accepted,
    assigned,
    kit_of_app,
    of_type,
    sla_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Friday 2026-03-06 15:00 UTC; the default calendar is Mon-Fri 09-17 UTC.
FRIDAY_3PM = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)


def at_monday(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute, second=second)


async def test_unanswered_assignment_warns_breaches_then_climbs_the_ladder_in_business_time(
    settings_for: Callable[..., SlaSettings], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(FRIDAY_3PM)
    app = create_app(settings_for(SlaSettings), clock=clock)
    lead = new_id()
    async with app_client(app, headers={"X-Admin-Token": "test-admin-token"}) as client:
        kit = kit_of_app(app)
        assert kit.timer_runner is not None
        await produce_events(
            kafka_bootstrap, isolation.topic("routing"), [assigned(lead, FRIDAY_3PM)]
        )

        started = await wait_until(
            lambda: _first(kit, lead, "sla.started", policy_id="accept-4bh"),
            message="accept SLA started",
        )
        # Friday 15:00 + 4 business hours = Monday 11:00; 75% warning = Monday 10:00.
        assert started.payload.due_at == at_monday(11)
        assert started.payload.warn_at == at_monday(10)
        assert (started.payload.rep_id, started.payload.team_id) == ("rep-1", "team-a")

        # The weekend passes: nothing is due before Monday 10:00.
        clock.set(at_monday(9, 59, 59))
        await kit.timer_runner.run_due()
        assert of_type(await sla_events(kit, lead), "sla.warning") == []

        clock.set(at_monday(10))
        warning = await wait_until(lambda: _first(kit, lead, "sla.warning"), message="warning")
        assert warning.occurred_at == at_monday(10)

        clock.set(at_monday(10, 59, 59))
        await kit.timer_runner.run_due()
        assert of_type(await sla_events(kit, lead), "sla.breached") == []

        clock.set(at_monday(11))
        breach = await wait_until(lambda: _first(kit, lead, "sla.breached"), message="breach")
        assert breach.occurred_at == at_monday(11)
        assert breach.payload.late_by_seconds == 0
        step1 = await wait_until(lambda: _first(kit, lead, "sla.escalation_raised", step=1))
        assert step1.payload.action == "remind_owner"
        assert step1.payload.rep_id == "rep-1"

        # notify_manager 1 business hour after the breach
        clock.set(at_monday(11, 59, 59))
        await kit.timer_runner.run_due()
        assert len(of_type(await sla_events(kit, lead), "sla.escalation_raised")) == 1
        clock.set(at_monday(12))
        step2 = await wait_until(lambda: _first(kit, lead, "sla.escalation_raised", step=2))
        assert step2.payload.action == "notify_manager"

        # reassign 4 business hours after the breach: Monday 15:00
        clock.set(at_monday(15))
        step3 = await wait_until(lambda: _first(kit, lead, "sla.escalation_raised", step=3))
        assert step3.payload.action == "reassign"
        assert step3.occurred_at == at_monday(15)

        # return_to_marketing 2 business days (16h) after Monday 11:00 = Wednesday 11:00
        clock.set(datetime(2026, 3, 11, 10, 59, tzinfo=UTC))
        await kit.timer_runner.run_due()
        assert len(of_type(await sla_events(kit, lead), "sla.escalation_raised")) == 3
        clock.set(datetime(2026, 3, 11, 11, 0, tzinfo=UTC))
        step4 = await wait_until(lambda: _first(kit, lead, "sla.escalation_raised", step=4))
        assert step4.payload.action == "return_to_marketing"

        # The reads agree, and operations see the breach in the metrics.
        metrics = (await client.get("/metrics")).text
        assert (
            'leadflow_sla_breaches_total{policy_id="accept-4bh",service="sla-monitor"}' in metrics
        )
        body = (await client.get("/v1/sla/breaches", params={"rep_id": "rep-1"})).json()
        assert [i["sla_id"] for i in body["items"]] == [started.payload.sla_id]
        body = (await client.get("/v1/sla/breaches", params={"rep_id": "someone-else"})).json()
        assert body["items"] == []
        body = (await client.get("/v1/sla/breaches", params={"policy_id": "accept-4bh"})).json()
        assert body["count"] == 1
        lead_view = (await client.get(f"/v1/leads/{lead}/sla")).json()
        (sla,) = lead_view["slas"]
        assert sla["status"] == "breached"
        assert [e["action"] for e in sla["escalations"]] == [
            "remind_owner",
            "notify_manager",
            "reassign",
            "return_to_marketing",
        ]

        # And so does the topic other services read, in order.
        wanted = ["sla.started", "sla.warning", "sla.breached"] + ["sla.escalation_raised"] * 4
        published = await consume_topic(
            kafka_bootstrap,
            isolation.topic("sla"),
            until=lambda evs: len(_for_lead(evs, lead)) >= len(wanted),
        )
        assert [e.event_type for e in _for_lead(published, lead)] == wanted


async def test_accepted_in_time_is_met_and_never_breaches(
    settings_for: Callable[..., SlaSettings], isolation: Any, kafka_bootstrap: str
) -> None:
    start = at_monday(10)
    clock = ManualClock(start)
    app = create_app(settings_for(SlaSettings), clock=clock)
    lead = new_id()
    async with app_client(app, headers={"X-Admin-Token": "test-admin-token"}) as client:
        kit = kit_of_app(app)
        assert kit.timer_runner is not None
        await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead, start)])
        started = await wait_until(lambda: _first(kit, lead, "sla.started", policy_id="accept-4bh"))
        sla_id = started.payload.sla_id

        clock.set(at_monday(11, 30))
        await produce_events(
            kafka_bootstrap, isolation.topic("routing"), [accepted(lead, at_monday(11, 30))]
        )
        met = await wait_until(lambda: _first(kit, lead, "sla.met", sla_id=sla_id))
        assert met.payload.on_time is True
        assert met.payload.met_by_event == "lead.accepted"
        assert met.payload.elapsed_seconds == 90 * 60
        assert met.payload.elapsed_business_seconds == 90 * 60

        # Acceptance starts the contact and SAL-age clocks.
        await wait_until(lambda: _first(kit, lead, "sla.started", policy_id="contact-1bd"))
        await wait_until(lambda: _first(kit, lead, "sla.started", policy_id="sal-max-14d"))

        # A week later the accept SLA still never breached or escalated; its timers are gone.
        clock.set(at_monday(10) + timedelta(days=7))
        await kit.timer_runner.run_due()
        await wait_until(lambda: _first(kit, lead, "sla.breached", policy_id="contact-1bd"))
        events = await sla_events(kit, lead)
        assert of_type(events, "sla.breached", sla_id=sla_id) == []
        assert of_type(events, "sla.warning", sla_id=sla_id) == []
        assert of_type(events, "sla.escalation_raised", sla_id=sla_id) == []

        view = (await client.get(f"/v1/leads/{lead}/sla")).json()
        statuses = {s["policy_id"]: s["status"] for s in view["slas"]}
        assert statuses["accept-4bh"] == "met"

        compliance = (
            await client.get("/v1/sla/compliance", params={"group_by": ["policy", "rep"]})
        ).json()
        accept_row = next(g for g in compliance["groups"] if g["policy_id"] == "accept-4bh")
        assert accept_row["rep_id"] == "rep-1"
        assert accept_row["met_on_time_pct"] == 100.0
        assert compliance["time_to_accept"]["median_seconds"] == 90 * 60


async def test_breach_fires_once_after_a_restart_between_warning_and_breach(
    settings_for: Callable[..., SlaSettings], isolation: Any, kafka_bootstrap: str
) -> None:
    start = at_monday(10)
    clock = ManualClock(start)
    settings = settings_for(SlaSettings)
    lead = new_id()

    first = create_app(settings, clock=clock)
    async with app_client(first):
        kit = kit_of_app(first)
        await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead, start)])
        await wait_until(lambda: _first(kit, lead, "sla.started", policy_id="accept-4bh"))
        clock.set(at_monday(13))  # 75% of 4h
        await wait_until(lambda: _first(kit, lead, "sla.warning"), message="warning before stop")
    # The service is down while the deadline (14:00) passes.
    clock.set(at_monday(14, 30))

    second = create_app(settings, clock=clock)
    async with app_client(second):
        kit = kit_of_app(second)
        assert kit.timer_runner is not None
        breach = await wait_until(lambda: _first(kit, lead, "sla.breached"), message="breach")
        assert breach.payload.late_by_seconds == 30 * 60
        await wait_until(lambda: _first(kit, lead, "sla.escalation_raised", step=1))
        for _ in range(3):
            await kit.timer_runner.run_due()
        events = await sla_events(kit, lead)
        assert len(of_type(events, "sla.breached")) == 1
        assert len(of_type(events, "sla.warning")) == 1
        assert len(of_type(events, "sla.escalation_raised", step=1)) == 1

        published = await consume_topic(
            kafka_bootstrap,
            isolation.topic("sla"),
            until=lambda evs: bool(of_type(_for_lead(evs, lead), "sla.escalation_raised")),
        )
        breaches = {e.event_id for e in of_type(_for_lead(published, lead), "sla.breached")}
        assert len(breaches) == 1


async def test_two_replicas_fire_a_due_breach_once(
    settings_for: Callable[..., SlaSettings], isolation: Any, kafka_bootstrap: str
) -> None:
    start = at_monday(10)
    clock = ManualClock(start)
    settings = settings_for(SlaSettings)
    lead = new_id()
    one, two = create_app(settings, clock=clock), create_app(settings, clock=clock)
    async with app_client(one), app_client(two):
        kit_one, kit_two = kit_of_app(one), kit_of_app(two)
        assert kit_one.timer_runner is not None and kit_two.timer_runner is not None
        await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead, start)])
        await wait_until(lambda: _first(kit_one, lead, "sla.started", policy_id="accept-4bh"))
        clock.set(at_monday(15))
        await asyncio.gather(*(k.timer_runner.run_due() for k in (kit_one, kit_two, kit_one)))  # type: ignore[union-attr]
        await wait_until(lambda: _first(kit_one, lead, "sla.escalation_raised", step=1))
        events = await sla_events(kit_one, lead)
        assert len(of_type(events, "sla.breached")) == 1
        assert len(of_type(events, "sla.warning")) == 0  # it was already past due when it fired
        assert len(of_type(events, "sla.escalation_raised", step=1)) == 1


# -- helpers --------------------------------------------------------------------------


async def _first(kit: Any, lead: uuid.UUID, event_type: str, **match: Any) -> Envelope | None:
    found = of_type(await sla_events(kit, lead), event_type, **match)
    return found[0] if found else None


def _for_lead(events: list[Envelope], lead: uuid.UUID) -> list[Envelope]:
    return [e for e in events if e.lead_id == lead]
