"""Nurture reaches people, and one click stops it: intake (a real HTTP server) captures a
lead with marketing consent; scoring's touch (the built-in general track's first step)
becomes an e-mail from the step's template through a real SMTP server, with RFC 8058
one-click unsubscribe; the click records the opt-out through intake's API, intake's
consent.changed comes back over Kafka, and the next touch is withheld."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from leadflow.devstack.procs import free_port
from leadflow.events.catalogue.scoring import NurtureTouchDue
from leadflow.events.envelope import utcnow
from leadflow.intake.app import create_app as create_intake_app
from leadflow.intake.settings import IntakeSettings
from leadflow.scoring.builtin import default_tracks
from leadflow.testing import app_client, consume_topic, produce_events, wait_until
from tests.integration.notify.helpers import envelope, kit_of, notify_app
from tests.integration.notify.sinks import smtp_sink

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
KEY = "key_notify_test_0123456789abcdef"
ADMIN = {"Authorization": "Bearer test-admin-token"}


@contextlib.asynccontextmanager
async def intake_server(settings_for: Callable[..., Any], isolation: Any) -> AsyncIterator[str]:
    port = free_port()
    app = create_intake_app(
        settings_for(
            IntakeSettings,
            port=port,
            intake_bootstrap_api_key=KEY,
        )
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=60, message="intake started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


def touch(lead_id: Any, step: int) -> Any:
    general = next(t for t in default_tracks() if t.id == "general")
    s = general.steps[step]
    return envelope(
        NurtureTouchDue(
            track_id="general",
            step=step,
            content_id=s.content_id,
            channel=s.channel,
            due_at=utcnow(),
            subject=s.subject,
            body=s.body,
        ),
        lead_id,
    )


async def test_one_click_unsubscribe_is_recorded_by_intake_and_stops_nurture(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    async with (
        smtp_sink() as (mail, smtp_url),
        intake_server(settings_for, isolation) as intake,
        httpx.AsyncClient(base_url=intake, timeout=30) as http,
    ):
        app = notify_app(
            settings_for,
            smtp_url,
            intake_url=intake,
            notify_intake_api_key=KEY,
            notify_public_url="http://notify.test",
        )
        async with app_client(app, base_url="http://notify.test") as notify:
            r = await http.post(
                "/v1/inquiries",
                headers={"X-Api-Key": KEY},
                json={
                    "contact": {
                        "email": "ada@engines.example",
                        "first_name": "Ada",
                        "last_name": "Lovelace",
                        "company": "Engines",
                    },
                    "consent": {"marketing_opt_in": True, "source": "website"},
                },
            )
            assert r.status_code == 202, r.text
            lead = r.json()["lead_id"]
            await produce_events(kafka_bootstrap, isolation.topic("scoring"), [touch(lead, 0)])
            [got] = await wait_until(
                lambda: mail.to("ada@engines.example"), timeout=90, message="the nurture mail"
            )
            assert got.subject == "Welcome, Ada"
            assert got.text.startswith("Hi Ada,")
            assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            url = re.fullmatch(r"<(.+)>", got.message["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
            assert url.startswith("http://notify.test/v1/u/")
            assert 'src="http://notify.test/v1/t/o/' in got.html

            # An open comes back as an activity through intake (its answer: the pixel).
            pixel = re.search(r'src="http://notify\.test(/v1/t/o/[^"]+)"', got.html).group(1)  # type: ignore[union-attr]
            opened = await notify.get(pixel)
            assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
            # A tampered link is nobody's.
            assert (await notify.post(url.replace("/v1/u/", "/v1/u/x"))).status_code == 404
            # A GET shows a page and changes nothing; the one-click POST unsubscribes.
            page = await notify.get(url)
            assert page.status_code == 200 and 'method="post"' in page.text
            assert (await notify.post(url)).status_code == 200

            async def opted_out_at_intake() -> bool:
                profile = (await http.get(f"/v1/leads/{lead}", headers=ADMIN)).json()
                return (profile.get("consent") or {}).get("marketing_opt_in") is False

            await wait_until(opted_out_at_intake, timeout=90, message="intake recorded it")

            await produce_events(kafka_bootstrap, isolation.topic("scoring"), [touch(lead, 1)])
            kit = kit_of(app)

            async def withheld() -> list[Any]:
                async with kit.connect() as conn:
                    return list(
                        await conn.fetch(
                            "SELECT payload FROM event_log WHERE lead_id = :l AND "
                            "event_type = 'nurture.email_withheld'",
                            l=lead,
                        )
                    )

            [row] = await wait_until(withheld, timeout=90, message="the next touch withheld")
            assert row.payload["reason"] == "opted_out" and row.payload["step"] == 1
            assert len(mail.to("ada@engines.example")) == 1
            async with kit.connect() as conn:
                sent = await conn.fetchval(
                    "SELECT count(*) FROM event_log WHERE lead_id = :l AND "
                    "event_type = 'nurture.email_sent'",
                    l=lead,
                )
                calls_left = await conn.fetchval(
                    "SELECT count(*) FROM timers WHERE kind = 'intake_call'"
                )
            assert sent == 1
            assert calls_left == 0
            # The open reached intake as an e-mail activity of this lead.
            events = await consume_topic(
                kafka_bootstrap,
                isolation.topic("intake"),
                until=lambda evs: any(_opened(e, lead) for e in evs),
            )
            [open_event] = [e for e in events if _opened(e, lead)]
            assert open_event.payload.activity_id.startswith("email_open:nm_")  # type: ignore[attr-defined]


def _opened(event: Any, lead: str) -> bool:
    return (
        event.event_type == "activity.recorded"
        and str(event.lead_id) == lead
        and event.payload.activity_type == "email_open"
    )
