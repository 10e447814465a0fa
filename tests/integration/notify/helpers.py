"""Building the events notify consumes, and starting notify on the test infrastructure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import ConsentRecord, Contact, LeadCaptured
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.catalogue.scoring import Contribution, LeadQualified
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.kit import ServiceKit
from leadflow.notify.app import create_app
from leadflow.notify.settings import NotifySettings

ADMIN = {"Authorization": "Bearer test-admin-token"}


def envelope(payload: EventPayload, lead_id: uuid.UUID, at: datetime | None = None) -> Envelope:
    return Envelope.new(payload, lead_id=lead_id, occurred_at=at)


def captured(
    lead_id: uuid.UUID, *, consent: bool = True, email: str = "ada@example.com"
) -> Envelope:
    return envelope(
        LeadCaptured(
            inquiry_id=uuid.uuid4(),
            capture_method="web_form",
            contact=Contact(
                email=email,
                first_name="Ada",
                last_name="Lovelace",
                phone="+44 20 7946 0018",
                company="Analytical Engines Ltd",
                title="CTO",
                country="GB",
            ),
            consent=ConsentRecord(marketing_opt_in=consent) if consent is not None else None,
        ),
        lead_id,
    )


def qualified(lead_id: uuid.UUID) -> Envelope:
    return envelope(
        LeadQualified(
            fit=82,
            engagement=64,
            grade="A",
            matrix_cell="A1",
            model_version=1,
            reasons=[
                Contribution(rule_id="title-cxo", kind="fit", points=25, reason="C-level title"),
                Contribution(
                    rule_id="demo", kind="engagement", points=30, reason="requested a demo"
                ),
            ],
            lead=LeadSnapshot(grade="A", country="GB"),
        ),
        lead_id,
    )


def assigned(
    lead_id: uuid.UUID,
    *,
    rep_email: str | None = "rep.one@example.com",
    manager_email: str | None = "boss@example.com",
) -> Envelope:
    return envelope(
        LeadAssigned(
            assignee_kind="rep",
            rep_id="rep-1",
            team_id="emea",
            method="round_robin",
            reason="rule emea: round robin",
            rep_name="Rep One",
            rep_email=rep_email,
            manager_email=manager_email,
            lead=LeadSnapshot(grade="A", country="GB"),
        ),
        lead_id,
    )


def notify_app(settings_for: Any, smtp_url: str, clock: Any = None, **overrides: Any) -> Any:
    settings = settings_for(
        NotifySettings, smtp_url=smtp_url, console_url="http://console.test", **overrides
    )
    return create_app(settings, clock=clock)


def kit_of(app: Any) -> ServiceKit:
    kit: ServiceKit = app.state.kit
    return kit
