"""The console's account page past the close (issue 30) against a real analytics (Kafka,
Postgres) that logged the scripted expansion history of
``tests/integration/analytics/test_expansion_report``: the account is a customer, each
person's stage and cycle show, open expansions and expansion revenue, and the buying cycles
(new business against expansion) with their figures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from leadflow.analytics.app import create_app as analytics_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.console.api import signing_key
from leadflow.console.app import create_app as console_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.procs import free_port
from leadflow.events.access import verifier_of
from leadflow.events.clock import ManualClock
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc
from tests.integration.analytics.test_accounts_report import T0
from tests.integration.analytics.test_expansion_report import history
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ISSUER = "http://console.test"


async def test_the_account_page_shows_customer_status_cycles_and_expansion(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    analytics = analytics_app(
        settings_for(AnalyticsSettings, port=port, auth_issuer=ISSUER),
        clock=ManualClock(T0 + timedelta(days=3)),
    )
    server = uvicorn.Server(
        uvicorn.Config(analytics, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    console = console_app(
        settings_for(
            ConsoleSettings,
            auth_issuer=ISSUER,
            console_analytics_url=f"http://127.0.0.1:{port}",
        )
    )
    try:
        await wait_until(lambda: server.started, timeout=90, message="analytics started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=ADMIN) as a:
            await sc.load(isolation, history())
            await wait_until(lambda: sc.caught_up(a), timeout=60, message="analytics caught up")
        async with app_client(console) as client:
            verifier_of(analytics.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            made = await client.post(
                "/v1/users",
                headers=ADMIN,
                json={"email": "lea@example.com", "name": "Lea", "password": PASSWORD,
                      "roles": ["sales_manager"]},
            )  # fmt: skip
            assert made.status_code == 201, made.text
            login = await client.get("/login")
            r = await client.post(
                "/login",
                data={"username": "lea@example.com", "password": PASSWORD,
                      "csrf_token": csrf_of(login.text)},
            )  # fmt: skip
            assert r.status_code == 303, r.text

            page = await client.get("/accounts/acme.com")
            assert page.status_code == 200, page.text
            html = page.text
            assert '<dd id="customer-status">customer</dd>' in html
            assert '<dd id="open-expansions">0</dd>' in html
            assert re.search(r"Expansion won</dt><dd>12000 EUR</dd>", html), html
            rows = re.findall(r"<td>(customer[^<]*)</td>", html)
            assert rows == ["customer (expansion)", "customer (expansion)"]
            cycles = re.search(r'<section class="card" id="buying-cycles".*?</section>', html, re.S)
            assert cycles, html
            new = re.search(r'<tr data-cycle="new_business">.*?</tr>', cycles.group(0), re.S)
            expansion = re.search(r'<tr data-cycle="expansion">.*?</tr>', cycles.group(0), re.S)
            assert new and expansion
            counts = r'<td data-stage="(\w+)">(\d+)</td>'
            assert re.findall(counts, new.group(0)) == [
                ("inquiry", "3"), ("mql", "3"), ("sal", "3"), ("sql", "3"),
                ("opportunity", "3"), ("won", "2"),
            ]  # fmt: skip
            assert re.findall(counts, expansion.group(0))[-1] == ("won", "1")
            assert "12000 EUR (1)" in expansion.group(0)
            assert "70000 EUR (2)" in new.group(0)
    finally:
        server.should_exit = True
        await task
