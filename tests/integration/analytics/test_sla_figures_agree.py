"""SLA figures through both services on one history with breaches (real Kafka + Postgres):
sla-monitor decides the clocks on a driven clock, analytics reads the same topics, and
every compliance figure is equal in the two (docs/metrics.md, "SLA compliance").

Monday 10:00 UTC, the built-in policies (accept-4bh: due 14:00 in the default calendar):

| lead | what happens | accept-4bh verdict |
|---|---|---|
| A | assigned rep-1 10:00, accepted 11:00 | on time |
| B | assigned rep-1 10:00, breached 14:00, accepted 14:35 | late (once, not twice) |
| C | assigned rep-1 10:00, breached 14:00, reassigned to rep-2 14:10 | late (the stop keeps it) |
| D | assigned rep-2 10:00, accepted 12:00 | on time |

rep-2's clock on C (started by the reassignment) is still running: no verdict. So accept-4bh
is 2 on time of 4 verdicts: 50 % in both (it was 66.67 % in sla-monitor, which dropped C).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.analytics.app import create_app as create_analytics
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.routing import LeadReassigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, new_id
from leadflow.sla_monitor.app import create_app as create_sla
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.sla_monitor.helpers import (
    accepted,
    assigned,
    envelope,
    kit_of_app,
    of_type,
    sla_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(180)]
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


async def test_sla_compliance_is_the_same_in_sla_monitor_and_analytics(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    clock = ManualClock(at(10))
    sla_app = create_sla(settings_for(SlaSettings), clock=clock)
    an_app = create_analytics(settings_for(AnalyticsSettings), clock=clock)
    a, b, c, d = (new_id() for _ in range(4))
    routing_topic = isolation.topic("routing")
    sent: list[Envelope] = []

    async def send(*events: Envelope) -> None:
        sent.extend(events)
        await produce_events(isolation.kafka_bootstrap, routing_topic, list(events))

    # Reports and per-lead SLAs need a credential: both clients carry the test admin token.
    admin = {"Authorization": "Bearer test-admin-token"}
    async with (
        app_client(sla_app, headers=admin) as sla,
        app_client(an_app, headers=admin) as analytics,
    ):
        kit = kit_of_app(sla_app)
        assert kit.timer_runner is not None

        async def have(lead: uuid.UUID, event_type: str, **match: Any) -> bool:
            return bool(of_type(await sla_events(kit, lead), event_type, **match))

        await send(
            assigned(a, at(10)),
            assigned(b, at(10)),
            assigned(c, at(10)),
            assigned(d, at(10), rep="rep-2"),
        )
        for lead in (a, b, c, d):
            await wait_until(lambda lead=lead: have(lead, "sla.started", policy_id="accept-4bh"))
        await send(accepted(a, at(11)), accepted(d, at(12), rep="rep-2"))
        for lead in (a, d):
            await wait_until(lambda lead=lead: have(lead, "sla.met", policy_id="accept-4bh"))

        clock.set(at(14) + timedelta(seconds=0.51))
        await kit.timer_runner.run_due()
        for lead in (b, c):
            await wait_until(lambda lead=lead: have(lead, "sla.breached", policy_id="accept-4bh"))

        reassigned = LeadReassigned(
            from_rep_id="rep-1",
            assignee_kind="rep",
            rep_id="rep-2",
            team_id="team-a",
            reason="sla_breach",
        )
        await send(accepted(b, at(14, 35)), envelope(reassigned, c, at(14, 10)))
        await wait_until(lambda: have(b, "sla.met", policy_id="accept-4bh"))
        await wait_until(lambda: have(c, "sla.stopped", policy_id="accept-4bh"))

        # How late B's accept was: 35 minutes, not the breach timer's 0.51 s.
        view = (await sla.get(f"/v1/leads/{b}/sla")).json()["slas"]
        [clock_b] = [s for s in view if s["policy_id"] == "accept-4bh"]
        assert (clock_b["status"], clock_b["late_by_seconds"]) == ("met", 35 * 60)

        # Analytics has every event of both topics, then both services are read.
        produced = len(sent)
        for lead in (a, b, c, d):
            produced += len(await sla_events(kit, lead))
        an_kit = kit_of_app(an_app)

        async def analytics_has_all() -> bool:
            async with an_kit.connect() as conn:
                logged = await conn.fetchval("SELECT count(*) FROM lead_event_log")
            if logged != produced:
                return False
            body = (await analytics.get("/v1/projections")).json()
            return all(p["lag"] == 0 for p in body["projections"])

        await wait_until(analytics_has_all, timeout=60, message="analytics has both topics")

        sm = (await sla.get("/v1/sla/compliance", params={"group_by": "policy"})).json()
        an = (await analytics.get("/v1/reps")).json()
        sm_policy = {g["policy_id"]: g for g in sm["groups"]}
        an_policy = {p["policy_id"]: p for p in an["sla_by_policy"]}
        assert set(sm_policy) == set(an_policy)
        for policy, theirs in sm_policy.items():
            ours = an_policy[policy]
            assert (ours["started"], ours["met_on_time"], ours["late"]) == (
                theirs["total"],
                theirs["met_on_time"],
                theirs["late"],
            ), policy
            pct = theirs["met_on_time_pct"]
            assert (None if ours["compliance"] is None else round(ours["compliance"] * 100, 2)) == (
                None if pct is None else round(pct, 2)
            ), policy
        accept = sm_policy["accept-4bh"]
        assert (accept["total"], accept["met_on_time"], accept["late"], accept["open"]) == (
            5,
            2,
            2,
            1,
        )
        assert (accept["met_late"], accept["breached_stopped"]) == (1, 1)
        assert accept["met_on_time_pct"] == 50.0 and an_policy["accept-4bh"]["compliance"] == 0.5

        # Per rep: the clocks' owners, the same in both.
        sm_rep = (
            await sla.get(
                "/v1/sla/compliance", params={"group_by": "rep", "policy_id": "accept-4bh"}
            )
        ).json()
        an_rep = (await analytics.get("/v1/reps", params={"policy": "accept-4bh"})).json()
        assert (
            {g["rep_id"]: (g["met_on_time"], g["late"]) for g in sm_rep["groups"]}
            == {r["rep_id"]: (r["met_on_time"], r["late"]) for r in an_rep["sla_by_rep"]}
            == {"rep-1": (1, 2), "rep-2": (1, 0)}
        )
