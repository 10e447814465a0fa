"""A sales manager reassigns a lead from its page in the console, against a real routing
(Kafka + Postgres): the control lists the other reps, routing's refusal shows in its own
words, and the move lands in routing's assignment."""

from __future__ import annotations

import asyncio
import contextlib
import re
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
from leadflow.events.envelope import new_id
from leadflow.routing.app import create_app as routing_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of
from tests.integration.routing.test_routing_kafka import configure, qualified

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ISSUER = "http://console.test"


async def test_a_manager_reassigns_a_lead_from_its_page(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    routing = routing_app(
        settings_for(
            RoutingSettings,
            port=port,
            auth_issuer=ISSUER,
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(routing, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    console = console_app(
        settings_for(
            ConsoleSettings, auth_issuer=ISSUER, console_routing_url=f"http://127.0.0.1:{port}"
        )
    )
    try:
        await wait_until(lambda: server.started, timeout=90, message="routing started")
        async with (
            app_client(console) as client,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as r,
        ):
            verifier_of(routing.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            await configure(r, {"ana": 1, "bo": 1, "cy": 1})
            paused = await r.put(
                "/v1/routing/reps/cy", json={"team_id": "na", "active": False}, headers=ADMIN
            )
            assert paused.status_code == 200, paused.text
            lead = new_id()
            await produce_events(
                isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)]
            )

            async def owner() -> str | None:
                got = await r.get(f"/v1/leads/{lead}/assignment", headers=ADMIN)
                return got.json().get("rep_id") if got.status_code == 200 else None

            first = await wait_until(owner, timeout=60, message="lead assigned")
            other = "bo" if first == "ana" else "ana"

            made = await client.post(
                "/v1/users",
                headers=ADMIN,
                json={
                    "email": "max@example.com",
                    "name": "Max",
                    "password": PASSWORD,
                    "roles": ["sales_manager"],
                },
            )
            assert made.status_code == 201, made.text
            login = await client.get("/login")
            signed = await client.post(
                "/login",
                data={
                    "username": "max@example.com",
                    "password": PASSWORD,
                    "csrf_token": csrf_of(login.text),
                },
            )
            assert signed.status_code == 303

            page = await client.get(f"/leads/{lead}")
            assert page.status_code == 200, page.text
            options = re.findall(r'<option value="([^"]+)"', page.text)
            assert options == [other], page.text  # not the owner, not the paused rep
            csrf = csrf_of(page.text)

            same = await client.post(
                f"/leads/{lead}/reassign",
                data={"csrf_token": csrf, "rep_id": first, "reason": "try"},
            )
            assert "already owned" in same.text and "Reassigned" not in same.text, same.text

            moved = await client.post(
                f"/leads/{lead}/reassign",
                data={"csrf_token": csrf, "rep_id": other, "reason": "covering a holiday"},
            )
            assert f"Reassigned to {other}" in moved.text, moved.text
            assert await owner() == other
            after = await client.get(f"/leads/{lead}")
            assert "covering a holiday" in after.text and "reassigned" in after.text
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)
