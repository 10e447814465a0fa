"""A team's Slack-compatible incoming webhook: an assignment for the team is POSTed to a real
local HTTP receiver as Slack's JSON (``text`` plus Block Kit ``blocks`` with the lead's
card), and a receiver that fails first gets it again on the retry."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.clock import ManualClock
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.notify.helpers import (
    ADMIN,
    assigned,
    captured,
    kit_of,
    notify_app,
    qualified,
)
from tests.integration.notify.sinks import smtp_sink, webhook_receiver

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_an_assignment_for_the_team_posts_slack_json_to_its_channel(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(datetime(2026, 3, 9, 10, 0, tzinfo=UTC))
    lead = uuid.uuid4()
    async with smtp_sink() as (mail, smtp_url), webhook_receiver([503, 200]) as hook:
        app = notify_app(settings_for, smtp_url, clock=clock, notify_webhooks_allow_private=True)
        async with app_client(app) as client:
            r = await client.put(
                "/v1/notify/teams/emea/channel",
                json={"slack_webhook_url": hook.url},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            await produce_events(kafka_bootstrap, isolation.topic("intake"), [captured(lead)])
            await produce_events(kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)])
            await wait_until(lambda: _scored(kit_of(app), lead), message="capture and score")
            await produce_events(kafka_bootstrap, isolation.topic("routing"), [assigned(lead)])
            await wait_until(lambda: len(hook.requests) == 1, message="first post (refused)")
            await wait_until(lambda: mail.to("rep.one@example.com"), message="the rep's mail")
            clock.advance(timedelta(seconds=5))  # notify's first retry of a channel post
            await wait_until(lambda: hook.delivered(), message="the retry accepted")
            assert len(hook.requests) == 2
            first, second = hook.requests
            assert first.body == second.body  # the same message, again
            assert second.path == "/hooks"
            assert second.headers["content-type"] == "application/json"
            body = json.loads(second.body)
            link = f"http://console.test/leads/{lead}"
            subject = "New lead for you: Ada Lovelace (Analytical Engines Ltd)"
            assert body["text"] == f"{subject} <{link}|open>"
            title, card, why = body["blocks"]
            assert title == {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*<{link}|{subject}>*"},
            }
            assert [f["text"] for f in card["fields"]] == [
                "*Company*\nAnalytical Engines Ltd",
                "*Title*\nCTO",
                "*Phone*\n+44 20 7946 0018",
                "*Grade*\nA",
            ]
            assert why["elements"][0]["text"] == "Why: requested a demo (+30), C-level title (+25)"

            async def logged() -> list[dict[str, Any]]:
                r = await client.get(
                    "/v1/notify/messages", params={"lead_id": str(lead)}, headers=ADMIN
                )
                return [m for m in r.json() if m["channel"] == "slack" and m["status"] == "sent"]

            [entry] = await wait_until(logged, message="the post logged as sent")
            assert entry["recipient"] == "team:emea" and entry["attempts"] == 2


async def _scored(kit: Any, lead: uuid.UUID) -> bool:
    from leadflow.notify import store

    async with kit.connect() as conn:
        row = await store.get_lead(conn, lead)
    return row is not None and row.scoring is not None and row.contact is not None
