"""How late an SLA was, and which SLAs count against compliance: one verdict per SLA.

``late_by_seconds`` of an accept 35 minutes after its deadline is 35 minutes (not the breach
timer's own delay); a clock that breached and was then stopped by a reassignment still
counts as late in compliance (docs/metrics.md, "SLA compliance")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI

from leadflow.events.catalogue.routing import LeadReassigned
from leadflow.events.clock import ManualClock
from leadflow.events.timers import Timer
from leadflow.sla_monitor.settings import SlaSettings
from tests.integration.sla_monitor.helpers import (
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

pytestmark = pytest.mark.postgres
DUE = MONDAY_10 + timedelta(hours=4)  # accept-4bh in the default Mon-Fri 09-17 UTC calendar


async def _breach(app: FastAPI, lead: uuid.UUID, fired_at_delay: float) -> None:
    """The breach timer firing ``fired_at_delay`` seconds after the deadline."""
    kit = kit_of_app(app)
    [started] = of_type(await sla_events(kit, lead), "sla.started", policy_id="accept-4bh")
    assert started.payload.due_at == DUE
    clock = kit.clock
    assert isinstance(clock, ManualClock)
    clock.set(DUE + timedelta(seconds=fired_at_delay))
    async with kit.unit_of_work() as uow:
        sla_id = started.payload.sla_id
        await kit.timer_handlers["sla.breach"](
            Timer(f"{sla_id}:breach", "sla.breach", DUE, {"sla_id": sla_id}, lead), uow
        )


async def test_late_accept_reports_how_late_and_breach_then_stop_counts_as_late(
    settings_for: Callable[..., SlaSettings],
) -> None:
    async with sla_app(settings_for) as (app, client):
        kit = kit_of_app(app)
        late, stopped, on_time = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        for lead in (late, stopped, on_time):
            await deliver(app, assigned(lead, MONDAY_10))

        await deliver(app, accepted(on_time, MONDAY_10 + timedelta(hours=1)))
        await _breach(app, late, 0.51)
        await _breach(app, stopped, 0.51)
        # The accept comes 35 minutes after the deadline.
        await deliver(app, accepted(late, DUE + timedelta(minutes=35)))
        # The other breached lead is reassigned (the escalation ladder's "reassign").
        reassigned = LeadReassigned(
            from_rep_id="rep-1",
            assignee_kind="rep",
            rep_id="rep-2",
            team_id="team-a",
            reason="sla_breach",
        )
        await deliver(app, envelope(reassigned, stopped, DUE + timedelta(minutes=10)))

        [met] = of_type(await sla_events(kit, late), "sla.met", policy_id="accept-4bh")
        assert met.payload.on_time is False and met.payload.late_by_seconds == 35 * 60
        view = (await client.get(f"/v1/leads/{late}/sla")).json()["slas"]
        accept = next(s for s in view if s["policy_id"] == "accept-4bh")
        assert (accept["status"], accept["late_by_seconds"]) == ("met", 35 * 60)

        view = (await client.get(f"/v1/leads/{stopped}/sla")).json()["slas"]
        first = next(s for s in view if s["policy_id"] == "accept-4bh" and s["rep_id"] == "rep-1")
        assert (first["status"], first["late_by_seconds"]) == ("stopped", 10 * 60)

        compliance = (
            await client.get("/v1/sla/compliance", params={"policy_id": "accept-4bh"})
        ).json()
        [group] = compliance["groups"]
        # Three verdicts: one on time, one met late, one breached then stopped; rep-2's new
        # clock (started by the reassignment) is still running.
        assert (group["met_on_time"], group["late"], group["open"]) == (1, 2, 1)
        assert (group["met_late"], group["breached_stopped"]) == (1, 1)
        assert group["met_on_time_pct"] == 33.33
