"""The dashboard in headless Chromium (Debian's ``chromium`` driven by Playwright), with the
scripted history loaded through real Kafka: headline numbers, chart bars, and a screenshot
whose chart area really has bar-coloured pixels."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.devstack.procs import free_port
from leadflow.events.clock import ManualClock
from leadflow.testing import wait_until
from tests.browser.console_support import ARGS, CHROMIUM, decode_png, require_browser
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.postgres]

BAR_RGB = (0x2F, 0x6F, 0xDF)  # .bar fill in the template


ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def server(settings_for: Any, isolation: Any) -> AsyncIterator[str]:
    require_browser()
    port = free_port()
    app = create_app(settings_for(AnalyticsSettings, port=port), clock=ManualClock(sc.NOW))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(srv.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until(lambda: srv.started, timeout=30, message="uvicorn started")
        await sc.load(isolation, sc.envelopes())
        async with httpx.AsyncClient(base_url=base, headers=ADMIN) as client:
            await wait_until(lambda: sc.caught_up(client), timeout=60, message="projections")
        yield base
    finally:
        srv.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=20)


def bar_pixels(png: bytes) -> int:
    width, _h, rows, bpp = decode_png(png)
    n = 0
    for row in rows:
        for x in range(width):
            r, g, b = row[x * bpp : x * bpp + 3]
            if abs(r - BAR_RGB[0]) < 12 and abs(g - BAR_RGB[1]) < 12 and abs(b - BAR_RGB[2]) < 12:
                n += 1
    return n


async def test_dashboard_renders_headline_and_charts_with_the_scripted_data(server: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # The dashboard is a report: it needs a credential like the JSON reports.
            page = await browser.new_page(
                viewport={"width": 1280, "height": 1600}, extra_http_headers=ADMIN
            )
            response = await page.goto(server + "/")
            assert response is not None and response.status == 200
            headline = await page.inner_text("#headline")
            assert "6 inquiries" in headline
            assert "2 opportunities" in headline
            assert "1,200 USD revenue" in headline  # per currency, never EUR + USD
            # Funnel bars carry the scripted counts, in order, with widths proportional to them.
            values = await page.eval_on_selector_all(
                "#chart-funnel rect.bar", "els => els.map(e => Number(e.dataset.value))"
            )
            assert values == [6, 4, 3, 3, 2, 1]
            widths = await page.eval_on_selector_all(
                "#chart-funnel rect.bar", "els => els.map(e => e.getBBox().width)"
            )
            assert widths[0] == pytest.approx(330.0) and widths[-1] == pytest.approx(55.0)
            revenue = await page.eval_on_selector_all(
                "#chart-revenue rect.bar",
                "els => els.map(e => [e.dataset.label, Number(e.dataset.value)])",
            )
            assert ["web_form (USD)", 1200.0] in revenue
            sla = await page.eval_on_selector_all(
                "#chart-sla rect.bar", "els => els.map(e => Number(e.dataset.value))"
            )
            assert sla == [pytest.approx(0.3333)]
            for chart in (
                "#chart-funnel",
                "#chart-conversion",
                "#chart-revenue",
                "#chart-velocity",
                "#chart-sla",
            ):
                shot = await page.locator(chart).screenshot()
                assert bar_pixels(shot) > 200, f"{chart} has no drawn bars"
            # Filters: the badge_scan channel has 2 inquiries and no revenue.
            await page.goto(server + "/?channel=badge_scan")
            assert "2 inquiries" in await page.inner_text("#headline")
            values = await page.eval_on_selector_all(
                "#chart-funnel rect.bar", "els => els.map(e => Number(e.dataset.value))"
            )
            assert values == [2, 1, 1, 1, 0, 0]
        finally:
            await browser.close()
