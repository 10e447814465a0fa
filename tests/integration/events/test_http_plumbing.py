"""The kit's HTTP plumbing against a real Postgres: transient errors and request metrics.

The pool does not ping on checkout (a round trip per transaction): a connection whose
server side dies under a request costs that request a 503 the caller may retry, the dead
connection leaves the pool, and service resumes.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import REGISTRY

from leadflow.events.deps import kit_of
from leadflow.events.kit import ServiceKit
from leadflow.events.service import create_service_app
from leadflow.testing import app_client

from .probe import MIGRATIONS, ProbeSettings

router = APIRouter()


@router.get("/probe/backend")
async def backend(request: Request) -> dict[str, int]:
    async with kit_of(request).connect() as conn:
        return {"pid": int(await conn.fetchval("SELECT pg_backend_pid()"))}


@router.get("/probe/doomed")
async def doomed(request: Request) -> dict[str, int]:
    """The server ends this request's backend under its second statement (as a restart
    does to every connection)."""
    async with kit_of(request).connect() as conn:
        pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return {"pid": pid}


async def test_a_connection_killed_under_the_pool_costs_one_503_then_the_pool_recovers(
    settings_for: Any,
) -> None:
    settings = settings_for(ProbeSettings, run_consumers=False, db_pool_size=1)
    kit = ServiceKit(settings, migrations_dir=MIGRATIONS)
    app = create_service_app(kit, router, title="probe")
    async with app_client(app) as client:
        first = await client.get("/probe/backend")
        assert first.status_code == 200, first.text
        pid = first.json()["pid"]

        failed = await client.get("/probe/doomed")
        assert failed.status_code == 503, failed.text
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.headers["retry-after"] == "1"
        assert failed.json()["title"] == "Service unavailable"

        again = await client.get("/probe/backend")
        assert again.status_code == 200, again.text
        assert again.json()["pid"] != pid


@router.get("/probe/boom")
async def boom() -> None:
    raise RuntimeError("a bug, not a dependency")


def _observed(service: str, route: str, status: str) -> float:
    """How many requests the histogram counted for these labels so far."""
    labels = {"service": service, "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("leadflow_http_request_seconds_count", labels) or 0.0


async def test_requests_are_timed_by_route_template_and_status_including_errors(
    settings_for: Any,
) -> None:
    settings = settings_for(ProbeSettings, run_consumers=False, service_name="metrics-probe")
    kit = ServiceKit(settings, migrations_dir=MIGRATIONS)
    app = create_service_app(kit, router, title="probe")
    service = kit.service
    before = {
        key: _observed(service, *key)
        for key in [("/probe/backend", "200"), ("unmatched", "404"), ("/probe/boom", "500")]
    }
    async with app_client(app, raise_app_exceptions=False) as client:
        assert (await client.get("/probe/backend")).status_code == 200
        assert (await client.get("/probe/backend")).status_code == 200
        assert (await client.get("/no/such/path")).status_code == 404
        failed = await client.get("/probe/boom")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        exposition = (await client.get("/metrics")).text
    assert _observed(service, "/probe/backend", "200") - before[("/probe/backend", "200")] == 2
    assert _observed(service, "unmatched", "404") - before[("unmatched", "404")] == 1
    assert _observed(service, "/probe/boom", "500") - before[("/probe/boom", "500")] == 1
    assert re.search(
        r'leadflow_http_request_seconds_count\{[^}]*route="/probe/backend"[^}]*\} 2\.0',
        exposition,
    ), "the exposition names the route template"
