"""The process map and the audit in the console against a real analytics (Kafka, Postgres)
that logged the scripted history of ``tests/integration/analytics/scenario`` (the built-in
process, NOW = T0 + 29 d; figures hand-computed there): a box per stage with its figures,
an SVG arrow per allowed move with the counts (L2 rejected from MQL, L3 recycled from SQL),
the period chooser, the audit's sections and its printable export relayed with the token."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
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
from leadflow.events.lifecycle import STAGE_ORDER
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc
from tests.integration.console.test_console_web import ADMIN, PASSWORD, csrf_of

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ISSUER = "http://console.test"


def _arrow(html: str, kind: str, src: str, dst: str) -> str:
    found = re.search(
        rf'<path class="arrow k-{kind}[^"]*" d="M[^"]+"[^>]*data-kind="{kind}" '
        rf'data-from="{src}" data-to="{dst}" data-count="(\d+)"',
        html,
    )
    assert found, f"no {kind} arrow {src} -> {dst}"
    return found.group(1)


async def test_an_analyst_sees_the_process_map_with_arrows_and_the_audit(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    port = free_port()
    analytics = analytics_app(
        settings_for(AnalyticsSettings, port=port, auth_issuer=ISSUER), clock=ManualClock(sc.NOW)
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
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, headers=ADMIN) as a:
            await sc.load(isolation, sc.envelopes())
            await wait_until(lambda: sc.caught_up(a), timeout=60, message="projections caught up")
        async with app_client(console) as client:
            verifier_of(analytics.state.kit).add_local_keys(signing_key(console.state.kit).jwks())
            made = await client.post(
                "/v1/users",
                headers=ADMIN,
                json={
                    "email": "ann@example.com",
                    "name": "Ann",
                    "password": PASSWORD,
                    "roles": ["analyst"],
                },
            )
            assert made.status_code == 201, made.text
            login = await client.get("/login")
            r = await client.post(
                "/login",
                data={
                    "username": "ann@example.com",
                    "password": PASSWORD,
                    "csrf_token": csrf_of(login.text),
                },
            )
            assert r.status_code == 303, r.text

            page = await client.get("/process")
            assert page.status_code == 200, page.text
            html = page.text
            assert 'href="/process" aria-current="page"' in html
            svg = re.search(r'<svg id="process-map".*?</svg>', html, re.S)
            assert svg, html
            boxes = re.findall(r'<g class="stage[^"]*" id="stage-(\w+)"', svg.group(0))
            assert boxes == [s.value for s in STAGE_ORDER]  # a box per lifecycle stage, in order
            inquiry = re.search(r'id="stage-inquiry".*?</g>', svg.group(0), re.S)
            assert inquiry
            # 6 entered, L5 still there; 4 of 6 moved on; L4 leaked (disqualified).
            assert "entered: 6 · now: 1" in inquiry.group(0)
            assert "conversion: 66.7%" in inquiry.group(0)
            assert "expected: 7.0 d" in inquiry.group(0)
            assert "leakage: 1" in inquiry.group(0)
            assert _arrow(html, "recycle", "sql", "nurture") == "1"
            assert _arrow(html, "reject", "mql", "nurture") == "1"
            assert _arrow(html, "forward", "mql", "sal") != "0"
            assert _arrow(html, "hold", "sql", "on_hold") == "0"  # allowed, not used
            assert re.search(r'class="count k-recycle"[^>]*>recycle 1<', html)

            week = await client.get("/process", params={"from": "2025-03-10", "to": "2025-03-16"})
            assert 'value="2025-03-10"' in week.text and "2025-03-10" in week.text
            bad = await client.get("/process", params={"from": "2025-03-10", "to": "2025-03-01"})
            assert bad.status_code == 200 and "to: must not be before" in bad.text

            audit = await client.get("/audit")
            assert audit.status_code == 200, audit.text
            assert "Maturity: 4 of 7" in audit.text
            assert "1 of 4 MQLs rejected by sales (25.0%): bad_fit 1" in audit.text
            assert "0 of 2 leads handed back by sales became MQLs again" in audit.text
            assert "<td>sql</td><td>1</td><td>lead.recycled:timing: 1</td>" in audit.text
            assert "Stages without an SLA: inquiry, sql, opportunity, on_hold" in audit.text
            assert 'id="audit-export" href="/audit.html"' in audit.text
            export = await client.get("/audit.html")
            assert export.status_code == 200 and "Lead process audit" in export.text
            assert "Maturity: 4 of 7" in export.text
    finally:
        server.should_exit = True
        await task
