"""The dashboard in headless Chromium (Debian's ``chromium`` driven by Playwright), with the
scripted history loaded through real Kafka: headline numbers, chart bars, and a screenshot
whose chart area really has bar-coloured pixels."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
import zlib
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
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.postgres]

CHROMIUM = os.environ.get("LEADFLOW_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BAR_RGB = (0x2F, 0x6F, 0xDF)  # .bar fill in the template


def _skip_reason() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
async def server(settings_for: Any, isolation: Any) -> AsyncIterator[str]:
    reason = _skip_reason()
    if reason:
        print(f"SKIP dashboard browser test: {reason}")
        pytest.skip(reason)
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


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = color = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if color == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


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
