"""People are told at once: the rep on assignment, the owner on an SLA warning, the manager
on a breach, each as their preference says; through a real SMTP server and real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.routing import LeadReassigned
from leadflow.events.catalogue.sla import SlaBreached, SlaWarning
from leadflow.events.envelope import utcnow
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.notify.helpers import (
    ADMIN,
    assigned,
    captured,
    envelope,
    kit_of,
    notify_app,
    qualified,
)
from tests.integration.notify.sinks import smtp_sink

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_rep_is_emailed_on_assignment_with_who_why_and_a_link(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    lead = uuid.uuid4()
    async with smtp_sink() as (mail, smtp_url):
        app = notify_app(settings_for, smtp_url)
        async with app_client(app) as client:
            await produce_events(kafka_bootstrap, isolation.topic("intake"), [captured(lead)])
            await produce_events(kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)])
            await wait_until(
                lambda: _scored(kit_of(app), lead), message="notify saw the capture and the score"
            )
            assignment = assigned(lead)
            await produce_events(kafka_bootstrap, isolation.topic("routing"), [assignment])
            [got] = await wait_until(lambda: mail.to("rep.one@example.com"), message="rep mail")
            assert got.subject == "New lead for you: Ada Lovelace (Analytical Engines Ltd)"
            text = got.text
            assert "Hello Rep One," in text
            assert "Phone:    +44 20 7946 0018" in text
            assert "requested a demo (+30)" in text and "C-level title (+25)" in text
            assert f"Open the lead: http://console.test/leads/{lead}" in text

            async def logged() -> list[dict[str, Any]]:
                r = await client.get(
                    "/v1/notify/messages", params={"lead_id": str(lead)}, headers=ADMIN
                )
                return [m for m in r.json() if m["status"] == "sent"]

            [entry] = await wait_until(logged, message="message logged as sent")
            assert entry["kind"] == "assignment" and entry["recipient"] == "rep.one@example.com"
            # A redelivered event tells nobody twice; the reassignment behind it (same
            # partition, so handled after it) is told.
            moved = envelope(
                LeadReassigned(
                    from_rep_id="rep-1",
                    assignee_kind="rep",
                    rep_id="rep-2",
                    team_id="emea",
                    reason="SLA escalation step 2",
                    rep_name="Rep Two",
                    rep_email="rep.two@example.com",
                ),
                lead,
            )
            await produce_events(kafka_bootstrap, isolation.topic("routing"), [assignment, moved])
            [again] = await wait_until(lambda: mail.to("rep.two@example.com"), message="moved")
            assert again.subject == "Lead reassigned to you: Ada Lovelace (Analytical Engines Ltd)"
            assert len(mail.to("rep.one@example.com")) == 1


async def _scored(kit: Any, lead: uuid.UUID) -> bool:
    from leadflow.notify import store

    async with kit.connect() as conn:
        row = await store.get_lead(conn, lead)
    return row is not None and row.scoring is not None and row.contact is not None


async def test_sla_warning_goes_to_the_owner_and_the_breach_to_the_manager(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    lead = uuid.uuid4()
    async with smtp_sink() as (mail, smtp_url):
        app = notify_app(settings_for, smtp_url)
        async with app_client(app):
            await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead)])
            await wait_until(lambda: mail.to("rep.one@example.com"), message="assignment")
            due = utcnow()
            await produce_events(
                kafka_bootstrap,
                isolation.topic("sla"),
                [
                    envelope(
                        SlaWarning(
                            sla_id="s1",
                            policy_id="accept-4bh",
                            due_at=due,
                            rep_id="rep-1",
                            team_id="emea",
                        ),
                        lead,
                    ),
                    envelope(
                        SlaBreached(
                            sla_id="s1",
                            policy_id="accept-4bh",
                            due_at=due,
                            late_by_seconds=600,
                            rep_id="rep-1",
                            team_id="emea",
                        ),
                        lead,
                    ),
                ],
            )
            await wait_until(lambda: len(mail.to("rep.one@example.com")) == 2, message="warning")
            [breach] = await wait_until(lambda: mail.to("boss@example.com"), message="breach")
            warning = mail.to("rep.one@example.com")[1]
            # notify never saw this lead's capture: the mails name it by id.
            assert warning.subject == f"SLA warning: {lead} is due soon"
            assert breach.subject == f"SLA breached: {lead} was not handled in time"
            assert "late by 10 min" in breach.text


async def test_preferences_off_and_daily_digest_hold_the_mail_back(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    quiet, digest, loud = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with smtp_sink() as (mail, smtp_url):
        app = notify_app(settings_for, smtp_url)
        async with app_client(app) as client:
            for address, preference in (
                ("quiet@example.com", "off"),
                ("digest@example.com", "daily_digest"),
            ):
                r = await client.put(
                    f"/v1/notify/preferences/{address}",
                    json={"preference": preference},
                    headers=ADMIN,
                )
                assert r.status_code == 200, r.text
            bad = await client.put(
                "/v1/notify/preferences/x@example.com",
                json={"preference": "sometimes"},
                headers=ADMIN,
            )
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "preference"
            await produce_events(
                kafka_bootstrap,
                isolation.topic("routing"),
                [
                    assigned(quiet, rep_email="quiet@example.com"),
                    assigned(digest, rep_email="Digest@example.com"),
                    assigned(loud, rep_email="loud@example.com"),
                ],
            )
            await wait_until(lambda: mail.to("loud@example.com"), message="the immediate one")

            async def statuses() -> dict[str, str]:
                r = await client.get("/v1/notify/messages", headers=ADMIN)
                return {m["recipient"]: m["status"] for m in r.json()}

            found = await wait_until(lambda: _settled(statuses), message="all three decided")
            assert found == {
                "quiet@example.com": "dropped",
                "digest@example.com": "digest",
                "loud@example.com": "sent",
            }
            assert not mail.to("quiet@example.com") and not mail.to("digest@example.com")


async def _settled(statuses: Any) -> dict[str, str] | None:
    found: dict[str, str] = await statuses()
    return found if len(found) == 3 and "pending" not in found.values() else None
