"""Routing keeps whom to call and follows do-not-contact, through the real broker: the rep's
queue and lead view carry the contact intake published (and its updates), erasure blanks it
for good; a disqualified lead that scoring reinstates is routed again as a new cycle."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.catalogue.intake import (
    Contact,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadReinstated
from leadflow.events.catalogue.sla import SlaStarted
from leadflow.events.envelope import Envelope
from leadflow.testing import produce_events, wait_until
from tests.integration.routing.test_routing_kafka import (
    AUTH,
    _assigned_lead,
    _when,
    assignment,
    configure,
    qualified,
    routing,
    scalar,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

JANE = Contact(
    email="jane@acme.com",
    first_name="Jane",
    last_name="Doe",
    phone="+14155550100",
    company="Acme",
    title="VP Marketing",
    city="Austin",
)


def intake_event(lead_id: uuid.UUID, payload: Any) -> Envelope:
    return Envelope.new(payload, lead_id=lead_id)


async def test_queue_and_lead_view_show_whom_to_call_until_the_lead_is_erased(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead_id, _ = await _assigned_lead(client, isolation)
        captured = LeadCaptured(inquiry_id=uuid.uuid4(), capture_method="web_form", contact=JANE)
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("intake"), [intake_event(lead_id, captured)]
        )

        async def card() -> dict[str, Any] | None:
            q = (await client.get("/v1/reps/a/queue", headers=AUTH)).json()
            return q["leads"][0]["contact"] if q["count"] == 1 else None

        # marketing's clock (no rep) is not the rep's due time; the rep's own clock is
        now = datetime.now(UTC)
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("sla"),
            [
                Envelope.new(
                    SlaStarted(sla_id=f"m-{lead_id}", policy_id="mql-assigned-30m",
                               started_by_event="lead.qualified", started_at=now,
                               due_at=now + timedelta(minutes=30)),
                    lead_id=lead_id,
                ),
                Envelope.new(
                    SlaStarted(sla_id=f"a-{lead_id}", policy_id="accept-4bh",
                               started_by_event="lead.assigned", rep_id="a", started_at=now,
                               due_at=now + timedelta(hours=4)),
                    lead_id=lead_id,
                ),
            ],
        )  # fmt: skip

        async def rep_sla() -> str | None:
            q = (await client.get("/v1/reps/a/queue", headers=AUTH)).json()
            sla = q["leads"][0]["sla"] if q["count"] == 1 else None
            return sla["policy_id"] if sla else None

        assert await wait_until(rep_sla, timeout=90) == "accept-4bh"
        got = await wait_until(card, timeout=90, message="contact in the rep's queue")
        assert got == {
            "name": "Jane Doe",
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane@acme.com",
            "phone": "+14155550100",
            "company": "Acme",
            "title": "VP Marketing",
        }
        assert (await assignment(client, lead_id))["contact"] == got

        moved = JANE.model_copy(update={"title": "CMO", "phone": "+14155550199"})
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("intake"),
            [intake_event(lead_id, LeadProfileUpdated(changed_fields=["title"], contact=moved))],
        )
        got = await wait_until(
            lambda: _when(card(), lambda c: c is not None and c["title"] == "CMO"), timeout=90
        )
        assert got["phone"] == "+14155550199"

        # erasure blanks the card; a profile event that arrives after it does not restore it
        await produce_events(
            isolation.kafka_bootstrap,
            isolation.topic("intake"),
            [
                intake_event(lead_id, LeadErased(reason="gdpr")),
                intake_event(lead_id, LeadProfileUpdated(changed_fields=["city"], contact=JANE)),
            ],
        )
        await wait_until(
            lambda: _when(assignment(client, lead_id), lambda a: a.get("contact") is None),
            timeout=90,
            message="contact erased",
        )
        late = intake_event(lead_id, LeadProfileUpdated(changed_fields=["city"], contact=JANE))
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), [late])
        await wait_until(
            lambda: _when(
                scalar(client, "SELECT count(*) FROM inbox WHERE event_id = :e", e=late.event_id),
                lambda n: n == 1,
            ),
            timeout=90,
            message="late profile event handled",
        )
        assert (await assignment(client, lead_id))["contact"] is None


async def test_a_reinstated_lead_is_routed_again_as_a_new_cycle(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})
        lead_id, _ = await _assigned_lead(client, isolation)
        scoring = isolation.topic("scoring")
        await produce_events(
            isolation.kafka_bootstrap,
            scoring,
            [Envelope.new(LeadDisqualified(reason="do not contact"), lead_id=lead_id)],
        )
        await wait_until(
            lambda: _when(
                client.get("/v1/reps/a/queue", headers=AUTH), lambda r: r.json()["count"] == 0
            ),
            timeout=90,
        )
        await produce_events(
            isolation.kafka_bootstrap,
            scoring,
            [
                Envelope.new(LeadReinstated(reason="do_not_contact_lifted"), lead_id=lead_id),
                qualified(lead_id),
            ],
        )
        got = await wait_until(
            lambda: _when(assignment(client, lead_id), lambda a: a.get("stage") == "mql"),
            timeout=90,
            message="lead routed again",
        )
        assert got["rep_id"] == "a"
        assert [(d["kind"], d["cycle"]) for d in got["decisions"]] == [
            ("assigned", 1),
            ("assigned", 2),
        ]
        queue = (await client.get("/v1/reps/a/queue", headers=AUTH)).json()
        assert [lead["lead_id"] for lead in queue["leads"]] == [str(lead_id)]
