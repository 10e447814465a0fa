"""A rep's e-mail defaults to the console user bound to that rep: creating or re-binding a
user fills routing's rep ``email`` (through routing's rep API, with the admin credential the
console holds) only when the roster has none; against a real routing (Postgres, HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn

from leadflow.console.app import create_app as console_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.procs import free_port
from leadflow.routing.app import create_app as routing_app
from leadflow.routing.settings import RoutingSettings
from leadflow.testing import app_client, wait_until
from tests.integration.console.test_console_web import ADMIN, PASSWORD

pytestmark = [pytest.mark.postgres]


async def test_binding_a_user_to_a_rep_fills_the_rosters_empty_email_only(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    routing = routing_app(
        settings_for(
            RoutingSettings,
            port=port,
            run_consumers=False,
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(routing, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    console = console_app(
        settings_for(ConsoleSettings, console_routing_url=f"http://127.0.0.1:{port}")
    )
    try:
        await wait_until(lambda: server.started, timeout=90, message="routing started")
        async with app_client(console) as client, app_client(routing) as r:
            for path, body in (
                ("/v1/routing/reps/ana", {"name": "Ana Ortiz", "team_id": "inside"}),
                (
                    "/v1/routing/reps/bo",
                    {"name": "Bo", "team_id": "inside", "email": "bo.roster@example.com"},
                ),
                ("/v1/routing/reps/cy", {"name": "Cy", "team_id": "inside"}),
            ):
                assert (await r.put(path, json=body, headers=ADMIN)).status_code == 200

            async def make(email: str, rep_id: str | None) -> Any:
                made = await client.post(
                    "/v1/users",
                    headers=ADMIN,
                    json={
                        "email": email,
                        "password": PASSWORD,
                        "roles": ["rep"] if rep_id else ["sales_manager"],
                        **({"rep_id": rep_id} if rep_id else {}),
                    },
                )
                assert made.status_code == 201, made.text
                return made.json()

            async def rep(rep_id: str) -> dict[str, Any]:
                got = await r.get(f"/v1/routing/reps/{rep_id}", headers=ADMIN)
                assert got.status_code == 200
                body: dict[str, Any] = got.json()
                return body

            # No e-mail in the roster: the user's is written, the rest of the rep kept.
            assert (await make("Ana@Example.com", "ana"))["rep_email"] == "set"
            ana = await rep("ana")
            assert ana["email"] == "Ana@example.com" and ana["name"] == "Ana Ortiz"
            assert ana["team_id"] == "inside"
            # The roster's own e-mail wins.
            assert (await make("bo@example.com", "bo"))["rep_email"] == "kept"
            assert (await rep("bo"))["email"] == "bo.roster@example.com"
            # A rep routing does not have: nothing to fill, the user is still created.
            assert (await make("ghost@example.com", "ghost"))["rep_email"] == "no_rep"
            # Binding an existing user later fills it too.
            cy = await make("cy@example.com", None)
            assert "rep_email" not in cy
            assert (await rep("cy")).get("email") is None
            patched = await client.patch(
                f"/v1/users/{cy['id']}",
                headers=ADMIN,
                json={"rep_id": "cy", "roles": ["rep"]},
            )
            assert patched.status_code == 200, patched.text
            assert patched.json()["rep_email"] == "set"
            assert (await rep("cy"))["email"] == "cy@example.com"
        # Routing away: the user is created all the same, the outcome says so.
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)
        async with app_client(console) as client:
            made = await client.post(
                "/v1/users",
                headers=ADMIN,
                json={
                    "email": "late@example.com",
                    "password": PASSWORD,
                    "roles": ["rep"],
                    "rep_id": "ana",
                },
            )
            assert made.status_code == 201 and made.json()["rep_email"] == "unavailable"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)
