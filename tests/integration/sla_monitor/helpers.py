"""Shared bits of sla-monitor's integration tests: building events, reading the SLA stream."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.service import ServiceKit


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
