"""Shared bits of sla-monitor's integration tests: building events, reading the SLA stream."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.kit import ServiceKit
from leadflow.events.uow import handlers_by_type
from leadflow.sla_monitor.app import create_app
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client

ADMIN = {"Authorization": "Bearer test-admin-token"}
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def envelope(payload: EventPayload, lead_id: uuid.UUID, at: datetime) -> Envelope:
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


def assigned(
    lead_id: uuid.UUID, at: datetime, rep: str = "rep-1", team: str = "team-a", grade: str = "A"
) -> Envelope:
    return envelope(
        LeadAssigned(
            assignee_kind="rep",
            rep_id=rep,
            team_id=team,
            method="direct",
            lead=LeadSnapshot(grade=grade, region="EMEA", country="DE", channel="web_form"),
        ),
        lead_id,
        at,
    )


def accepted(lead_id: uuid.UUID, at: datetime, rep: str = "rep-1") -> Envelope:
    return envelope(LeadAccepted(rep_id=rep), lead_id, at)


def kit_of_app(app: FastAPI) -> ServiceKit:
    kit: ServiceKit = app.state.kit
    return kit


async def sla_events(kit: ServiceKit, lead_id: uuid.UUID) -> list[Envelope]:
    async with kit.connect() as conn:
        return await kit.store.read_stream(conn, lead_id)


def of_type(events: list[Envelope], event_type: str, **match: Any) -> list[Envelope]:
    return [
        e
        for e in events
        if e.event_type == event_type and all(getattr(e.payload, k) == v for k, v in match.items())
    ]


@contextlib.asynccontextmanager
async def sla_app(
    settings_for: Callable[..., SlaSettings], **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """sla-monitor in-process (no consumers) on a manual clock at MONDAY_10."""
    settings = settings_for(SlaSettings, run_consumers=False, **overrides)
    app = create_app(settings, clock=ManualClock(MONDAY_10))
    # The read routes need a credential too: every request carries the admin token's
    # header unless it says otherwise (X-Admin-Token: "" is no credential).
    async with app_client(app, headers={"X-Admin-Token": "test-admin-token"}) as client:
        yield app, client


async def deliver(app: FastAPI, *events: Envelope) -> None:
    """Hand events to the handler one unit of work each, as the consumer would."""
    kit = kit_of_app(app)
    handlers = handlers_by_type(kit.handlers)  # the service's own, as it consumes
    for event in events:
        async with kit.unit_of_work(causation=event) as uow:
            await handlers[event.event_type](event, uow)
