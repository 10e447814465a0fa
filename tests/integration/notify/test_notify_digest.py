"""The daily digest goes out: mail held for someone who chose ``daily_digest`` leaves as ONE
mail at the digest hour (time driven by the kernel's clock and timers, no sleeps), through a
real SMTP server; a relay that refuses it keeps the mail held for the retry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.events.clock import ManualClock
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.notify.helpers import ADMIN, assigned, captured, kit_of, notify_app
from tests.integration.notify.sinks import smtp_sink

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

START = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)  # half an hour before the default 08:00
TO = "digest.rep@example.com"


async def test_held_mail_goes_out_as_one_digest_at_the_digest_hour(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    clock = ManualClock(START)
    first, second, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with smtp_sink() as (mail, smtp_url):
        app = notify_app(settings_for, smtp_url, clock=clock)
        async with app_client(app) as client:
            r = await client.put(
                f"/v1/notify/preferences/{TO}", json={"preference": "daily_digest"}, headers=ADMIN
            )
            assert r.status_code == 200, r.text
            await produce_events(kafka_bootstrap, isolation.topic("intake"), [captured(first)])
            await produce_events(
                kafka_bootstrap,
                isolation.topic("routing"),
                [assigned(first, rep_email=TO), assigned(second, rep_email=TO.upper())],
            )

            async def held() -> list[dict[str, Any]]:
                r = await client.get("/v1/notify/messages", params={"recipient": TO}, headers=ADMIN)
                return [m for m in r.json() if m["status"] == "digest"]

            await wait_until(lambda: _count(held, 2), message="both held for the digest")
            assert await _timer_due(app, TO) == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
            assert not mail.to(TO)

            # The relay refuses the first try: nothing is lost, the digest is retried.
            mail.refuse = 1
            clock.set(datetime(2026, 3, 9, 8, 0, 1, tzinfo=UTC))
            await wait_until(lambda: mail.refuse == 0, message="the digest was tried")
            assert not mail.to(TO) and len(await held()) == 2
            clock.advance(timedelta(seconds=5))
            [digest] = await wait_until(lambda: mail.to(TO), message="the digest went out")
            assert digest.subject == "Leadflow digest: 2 notification(s)"
            text = digest.text
            assert "Your Leadflow digest for 2026-03-09: 2 notification(s)." in text
            assert "New lead for you: Ada Lovelace (Analytical Engines Ltd)" in text
            assert f"http://console.test/leads/{first}" in text
            assert f"http://console.test/leads/{second}" in text

            async def digested() -> list[dict[str, Any]]:
                r = await client.get("/v1/notify/messages", params={"recipient": TO}, headers=ADMIN)
                return [m for m in r.json() if m["status"] == "digested"]

            assert len(await wait_until(lambda: _count(digested, 2), message="marked")) == 2

            # What arrives after the digest waits for the next day's.
            await produce_events(
                kafka_bootstrap, isolation.topic("routing"), [assigned(later, rep_email=TO)]
            )
            await wait_until(lambda: _count(held, 1), message="the next one held")
            assert await _timer_due(app, TO) == datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
            clock.set(datetime(2026, 3, 10, 8, 0, 1, tzinfo=UTC))
            await wait_until(lambda: len(mail.to(TO)) == 2, message="the second day's digest")
            assert mail.to(TO)[1].subject == "Leadflow digest: 1 notification(s)"
            assert len(mail.to(TO)) == 2


async def _count(fetch: Any, n: int) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = await fetch()
    return found if len(found) == n else None


async def _timer_due(app: Any, recipient: str) -> datetime | None:
    async with kit_of(app).connect() as conn:
        row = await conn.fetchrow(
            "SELECT due_at FROM timers WHERE key = :k", k=f"digest:{recipient}"
        )
    return row.due_at if row else None
