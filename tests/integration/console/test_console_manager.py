"""A sales manager in the console against a real routing (Postgres): the roster, a rep's
availability saved through routing's validation, and a dry run of a draft rule set."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn

from leadflow.console.api import signing_key
from leadflow.console.app import create_app as console_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.procs import free_port
from leadflow.events.access import verifier_of
from leadflow.routing.app import create_app as routing_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, wait_until
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of

pytestmark = [pytest.mark.postgres]
ISSUER = "http://console.test"


async def test_a_manager_sees_the_roster_saves_availability_and_dry_runs_rules(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    routing = routing_app(
        settings_for(
            RoutingSettings,
            port=port,
            run_consumers=False,
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
        async with app_client(console) as client:
            # Routing trusts this console's keys (make run points it at the console's JWKS).
            verifier_of(routing.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            async with app_client(routing) as r:
                for path, body in (
                    ("/v1/routing/reps/ana", {"name": "Ana Ortiz", "team_id": "inside"}),
                    ("/v1/routing/teams/inside", {"name": "Inside", "members": ["ana"]}),
                ):
                    assert (await r.put(path, json=body, headers=ADMIN)).status_code == 200
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
            r = await client.post(
                "/login",
                data={
                    "username": "max@example.com",
                    "password": PASSWORD,
                    "csrf_token": csrf_of(login.text),
                },
            )
            assert r.status_code == 303 and r.headers["location"] == "/leads"

            page = await client.get("/routing")
            assert page.status_code == 200 and "Ana Ortiz" in page.text, page.text
            csrf = csrf_of(page.text)
            rep = {
                "id": "ana",
                "name": "Ana Ortiz",
                "team_id": "inside",
                "timezone": "Europe/Madrid",
                "out_of_office": [{"start": "2026-12-24T00:00:00Z", "end": "2027-01-02T00:00:00Z"}],
            }
            saved = await client.post(
                "/routing/reps/ana", data={"csrf_token": csrf, "rep": json.dumps(rep)}
            )
            assert "Rep ana saved" in saved.text, saved.text
            bad = await client.post(
                "/routing/reps/ana",
                data={"csrf_token": csrf, "rep": json.dumps({**rep, "timezone": "Mars/Base"})},
            )
            assert "timezone" in bad.text and "saved" not in bad.text
            async with app_client(routing) as r:
                doc = (await r.get("/v1/routing/reps/ana", headers=ADMIN)).json()
            assert doc["timezone"] == "Europe/Madrid" and len(doc["out_of_office"]) == 1

            rules = {
                "rules": [
                    {"id": "all", "target": {"kind": "team", "team_id": "inside"}},
                ],
                "default_queue_id": "unassigned",
            }
            sample = {"lead": {"country": "US"}, "grade": "A"}
            dry = await client.post(
                "/routing/simulate",
                data={"csrf_token": csrf, "rules": json.dumps(rules), "sample": json.dumps(sample)},
            )
            assert dry.status_code == 200 and "Dry run" in dry.text, dry.text
            assert re.search(r"&#34;dry_run&#34;: true|\"dry_run\": true", dry.text), dry.text
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)
