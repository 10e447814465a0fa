"""Webhooks to outside systems, Standard Webhooks style, against a real HTTP receiver that
fails first and succeeds later: signed, retried on the spec's schedule (a manual clock
stands in for the hours), in order per lead, disabled after persistent failure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.catalogue.routing import LeadAccepted, LeadContacted
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import stream_id
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.notify.helpers import ADMIN, assigned, envelope, kit_of, notify_app
from tests.integration.notify.sinks import smtp_sink, webhook_receiver

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
START = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


async def recorded(client: Any, endpoint_id: str, attempts: int) -> None:
    """Wait until ``attempts`` attempts are committed (the receiver sees a request before
    notify records it and schedules the retry from its clock: advance the clock only then)."""

    async def done() -> bool:
        log = (await client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=ADMIN)).json()
        return sum(d["attempts"] for d in log) == attempts

    await wait_until(done, message=f"{attempts} attempts recorded")


def spec_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks algorithm, written out apart from notify's own."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


async def test_private_targets_are_refused_unless_allowed(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with smtp_sink() as (_, smtp_url):
        app = notify_app(settings_for, smtp_url, run_consumers=False)
        async with app_client(app) as client:
            for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://169.254.169.254/"):
                r = await client.post(
                    "/v1/webhooks", json={"url": url, "events": ["lead.assigned"]}, headers=ADMIN
                )
                assert r.status_code == 422, r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["errors"][0]["field"] == "url"
            r = await client.post(
                "/v1/webhooks", json={"url": "http://x", "events": []}, headers=ADMIN
            )
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events"


async def test_deliveries_are_signed_retried_in_order_and_logged(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(START)
    lead = uuid.uuid4()
    async with smtp_sink() as (_, smtp_url), webhook_receiver([500, 503, 200]) as hook:
        app = notify_app(settings_for, smtp_url, clock=clock, notify_webhooks_allow_private=True)
        async with app_client(app) as client:
            r = await client.post(
                "/v1/webhooks",
                json={"url": hook.url, "events": ["lead.*"], "description": "CRM"},
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
            endpoint = r.json()
            secret = endpoint["secret"]
            assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
            events = [
                assigned(lead),
                envelope(LeadAccepted(rep_id="rep-1"), lead),
                envelope(LeadContacted(rep_id="rep-1", channel="phone"), lead),
            ]
            await produce_events(kafka_bootstrap, isolation.topic("routing"), events)
            await wait_until(lambda: len(hook.requests) == 1, message="first attempt")
            await recorded(client, endpoint["id"], 1)
            clock.advance(timedelta(seconds=5))  # the spec's first retry
            await wait_until(lambda: len(hook.requests) == 2, message="second attempt")
            await recorded(client, endpoint["id"], 2)
            clock.advance(timedelta(minutes=5))
            await wait_until(lambda: len(hook.delivered()) == 3, message="all three delivered")
            await recorded(client, endpoint["id"], 5)
            # The first event was tried three times before the second was tried at all.
            types = [json.loads(r.body)["type"] for r in hook.requests]
            assert types == ["lead.assigned"] * 3 + ["lead.accepted", "lead.contacted"]
            for received in hook.requests:
                h = received.headers
                assert h["webhook-signature"] == spec_signature(
                    secret, h["webhook-id"], h["webhook-timestamp"], received.body
                )
            assert len({r.headers["webhook-id"] for r in hook.requests[:3]}) == 1  # same id
            body = json.loads(hook.requests[-1].body)
            assert body["data"]["lead_id"] == str(lead) and body["data"]["channel"] == "phone"

            log = (
                await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=ADMIN)
            ).json()
            by_type = {d["event_type"]: d for d in log}
            assert by_type["lead.assigned"]["attempts"] == 3
            assert by_type["lead.assigned"]["status"] == "delivered"
            assert by_type["lead.assigned"]["last_status"] == 200
            assert by_type["lead.accepted"]["attempts"] == 1
            assert by_type["lead.assigned"]["latency_ms"] >= 0
            attempts = (
                await client.get(
                    f"/v1/webhooks/{endpoint['id']}/deliveries/{by_type['lead.assigned']['id']}/attempts",
                    headers=ADMIN,
                )
            ).json()
            assert [a["status"] for a in attempts] == [500, 503, 200]

            # Manual replay sends the same message (same webhook-id) once more.
            r = await client.post(
                f"/v1/webhooks/{endpoint['id']}/deliveries/{by_type['lead.accepted']['id']}/replay",
                headers=ADMIN,
            )
            assert r.status_code == 202
            await wait_until(lambda: len(hook.requests) == 6, message="replayed")
            assert hook.requests[-1].headers["webhook-id"] == by_type["lead.accepted"]["id"]

            # Rotation: for a day both secrets sign every delivery.
            rotated = (
                await client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=ADMIN)
            ).json()
            await produce_events(
                kafka_bootstrap,
                isolation.topic("routing"),
                [envelope(LeadContacted(rep_id="rep-1", channel="email"), lead)],
            )
            await wait_until(lambda: len(hook.requests) == 7, message="after rotation")
            h = hook.requests[-1].headers
            old, new = (
                spec_signature(s, h["webhook-id"], h["webhook-timestamp"], hook.requests[-1].body)
                for s in (secret, rotated["secret"])
            )
            assert h["webhook-signature"].split() == [new, old]


async def test_an_endpoint_failing_for_days_is_disabled_with_a_notice_and_resumes(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(START)
    lead = uuid.uuid4()
    async with smtp_sink() as (_, smtp_url), webhook_receiver([500]) as hook:
        app = notify_app(
            settings_for,
            smtp_url,
            clock=clock,
            notify_webhooks_allow_private=True,
            notify_webhook_give_up_hours=24,
        )
        async with app_client(app) as client:
            r = await client.post(
                "/v1/webhooks", json={"url": hook.url, "events": ["*"]}, headers=ADMIN
            )
            endpoint_id = r.json()["id"]
            await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead)])
            await wait_until(lambda: len(hook.requests) == 1, message="first attempt")
            for step in (
                timedelta(seconds=5),
                timedelta(minutes=5),
                timedelta(minutes=30),
                timedelta(hours=2),
                timedelta(hours=5),
                timedelta(hours=10),
                timedelta(hours=10),
            ):
                n = len(hook.requests)
                await recorded(client, endpoint_id, n)
                clock.advance(step)
                await wait_until(lambda n=n: len(hook.requests) == n + 1, message=f"after {step}")

            async def disabled() -> dict[str, Any] | None:
                got = (await client.get(f"/v1/webhooks/{endpoint_id}", headers=ADMIN)).json()
                return got if not got["enabled"] else None

            got = await wait_until(disabled, message="disabled")
            assert got["disabled_reason"].startswith("failing since 2026-03-09T10:00:00+00:00")
            kit = kit_of(app)
            async with kit.connect() as conn:
                notices = await conn.fetch(
                    "SELECT payload FROM event_log WHERE lead_id = :s AND event_type = "
                    "'webhook.endpoint_disabled'",
                    s=stream_id("webhook-endpoints"),
                )
            assert [n.payload["endpoint_id"] for n in notices] == [endpoint_id]
            assert notices[0].payload["attempts"] == 8
            # Nothing more is tried while disabled; re-enabling delivers what waited.
            clock.advance(timedelta(hours=12))
            hook.statuses = [200]
            tried = len(hook.requests)
            r = await client.post(f"/v1/webhooks/{endpoint_id}/enable", headers=ADMIN)
            assert r.json()["enabled"] is True
            await wait_until(lambda: hook.delivered(), message="delivered after re-enable")
            assert len(hook.requests) == tried + 1
