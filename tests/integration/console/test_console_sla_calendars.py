"""A sales manager reads and edits SLA business calendars in the console, against a real
sla-monitor (Postgres): the seeded default, a new calendar saved through sla-monitor's
validation, a refused time zone in sla-monitor's words, and a role without the permission."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import uvicorn

from leadflow.console.api import signing_key
from leadflow.console.app import create_app as console_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.procs import free_port
from leadflow.events.access import verifier_of
from leadflow.sla_monitor.app import create_app as sla_app
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import app_client, wait_until
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of

pytestmark = [pytest.mark.postgres]
ISSUER = "http://console.test"


async def _sign_in(client: httpx.AsyncClient, email: str, role: str) -> None:
    made = await client.post(
        "/v1/users",
        headers=ADMIN,
        json={"email": email, "name": email, "password": PASSWORD, "roles": [role]},
    )
    assert made.status_code == 201, made.text
    login = await client.get("/login")
    signed = await client.post(
        "/login",
        data={"username": email, "password": PASSWORD, "csrf_token": csrf_of(login.text)},
    )
    assert signed.status_code == 303, signed.text


async def test_a_manager_sees_and_edits_business_calendars(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    sla = sla_app(
        settings_for(
            SlaSettings,
            port=port,
            run_consumers=False,
            auth_issuer=ISSUER,
        )
    )
    server = uvicorn.Server(uvicorn.Config(sla, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    console = console_app(
        settings_for(
            ConsoleSettings, auth_issuer=ISSUER, console_sla_url=f"http://127.0.0.1:{port}"
        )
    )
    try:
        await wait_until(lambda: server.started, timeout=90, message="sla-monitor started")
        async with (
            app_client(console) as client,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api,
        ):
            verifier_of(sla.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            await _sign_in(client, "max@example.com", "sales_manager")

            sla_page = await client.get("/sla")
            assert 'href="/sla/calendars"' in sla_page.text, sla_page.text
            page = await client.get("/sla/calendars")
            assert page.status_code == 200, page.text
            assert 'id="calendar-default"' in page.text  # seeded at startup
            assert "mon 09:00-17:00" in page.text
            csrf = csrf_of(page.text)

            emea = {
                "calendar_id": "emea",
                "name": "EMEA office hours",
                "timezone": "Europe/Berlin",
                "hours": {"mon": [{"start": "08:00", "end": "16:00"}]},
                "holidays": ["2026-12-25"],
                "team_ids": ["emea"],
            }
            saved = await client.post(
                "/sla/calendars", data={"csrf_token": csrf, "calendar": json.dumps(emea)}
            )
            assert "Calendar emea saved." in saved.text, saved.text
            assert 'id="calendar-emea"' in saved.text and "mon 08:00-16:00" in saved.text
            stored = (await api.get("/v1/sla/calendars/emea", headers=ADMIN)).json()
            assert stored["timezone"] == "Europe/Berlin" and stored["holidays"] == ["2026-12-25"]
            assert stored["team_ids"] == ["emea"]

            bad = await client.post(
                "/sla/calendars",
                data={
                    "csrf_token": csrf,
                    "calendar": json.dumps({**emea, "timezone": "Mars/Base"}),
                },
            )
            assert "Not saved" in bad.text and "timezone" in bad.text, bad.text
            assert "saved." not in bad.text
            again = (await api.get("/v1/sla/calendars/emea", headers=ADMIN)).json()
            assert again["timezone"] == "Europe/Berlin"  # the refused edit changed nothing

            client.cookies.clear()
            await _sign_in(client, "ann@example.com", "analyst")  # reads SLAs, edits nothing
            assert (await client.get("/sla/calendars")).status_code == 403
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)
