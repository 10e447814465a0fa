"""A pooled connection whose server side died: one 503 the caller may retry, then service.

The pool does not ping on checkout (a round trip per transaction); this proves what that
costs instead, against a real Postgres backend terminated under the pool.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from sqlalchemy import text

from leadflow.events.db import plain_url
from leadflow.events.service import ServiceKit, kit_of
from leadflow.events.testing import app_client

from .probe import MIGRATIONS, ProbeSettings

router = APIRouter()


@router.get("/probe/backend")
async def backend(request: Request) -> dict[str, int]:
    async with kit_of(request).connect() as conn:
        return {"pid": int(await conn.scalar(text("SELECT pg_backend_pid()")))}


async def test_a_connection_killed_under_the_pool_costs_one_503_then_the_pool_recovers(
    settings_for: Any,
) -> None:
    settings = settings_for(ProbeSettings, run_consumers=False, db_pool_size=1)
    kit = ServiceKit(settings, migrations_dir=MIGRATIONS)
    app = kit.create_app(router, title="probe")
    async with app_client(app) as client:
        first = await client.get("/probe/backend")
        assert first.status_code == 200, first.text
        pid = first.json()["pid"]

        admin = await asyncpg.connect(plain_url(settings.database_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        failed = await client.get("/probe/backend")
        assert failed.status_code == 503, failed.text
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.headers["retry-after"] == "1"
        assert failed.json()["title"] == "Service unavailable"

        again = await client.get("/probe/backend")
        assert again.status_code == 200, again.text
        assert again.json()["pid"] != pid
