"""``make demo`` creates console users for a few of its reps and prints their logins: each
login it prints signs in, as a rep bound to that rep id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

from leadflow.console.app import create_app
from leadflow.console.settings import ConsoleSettings
from leadflow.devstack.demo import rep_logins
from leadflow.devstack.procs import free_port
from leadflow.testing import wait_until
from leadflow.testing.platform import Endpoints

pytestmark = [pytest.mark.postgres]


async def test_the_demo_rep_logins_sign_in_as_their_reps(settings_for: Callable[..., Any]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings_for(ConsoleSettings, port=port, auth_issuer=url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=90, message="console started")
        endpoints = Endpoints.local(port_base=port, admin_token="test-admin-token", api_key="k")
        logins = await rep_logins(endpoints, ["rep-demo-0", "rep-demo-1"])
        assert [email for email, _ in logins] == [
            "rep-demo-0@demo.example.com",
            "rep-demo-1@demo.example.com",
        ]
        async with httpx.AsyncClient(base_url=url) as client:
            for (email, password), rep_id in zip(logins, ["rep-demo-0", "rep-demo-1"], strict=True):
                r = await client.post(
                    "/v1/auth/token", data={"username": email, "password": password}
                )
                assert r.status_code == 200, r.text
                claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
                assert claims["roles"] == ["rep"] and claims["rep_id"] == rep_id
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)
