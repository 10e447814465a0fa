"""Shared by the console's browser tests: Debian's chromium driven by Playwright, every
request outside 127.0.0.1 refused and recorded, sign-in, and screenshots that must hold
content (not a blank page)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.test_dashboard import ARGS, CHROMIUM, decode_png


def skip_reason() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM} (make browser installs it)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


def require_browser() -> None:
    reason = skip_reason()
    if reason:
        print(f"SKIP console browser test: {reason}")
        pytest.skip(reason)


@dataclass
class Chromium:
    """A headless chromium whose every context refuses (and records) requests that would
    leave 127.0.0.1."""

    browser: Any
    outside: list[str] = field(default_factory=list)

    async def context(self, width: int = 1280, height: int = 900) -> Any:
        context = await self.browser.new_context(viewport={"width": width, "height": height})

        async def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
                await route.continue_()
            else:
                self.outside.append(url)
                await route.abort()

        await context.route("**/*", guard)
        return context


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Chromium]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield Chromium(browser)
        finally:
            await browser.close()


async def sign_in(page: Any, console: str, email: str, password: str) -> None:
    await page.goto(console + "/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    try:
        await page.wait_for_selector("#who-name", timeout=20_000)
    except Exception:
        raise AssertionError(
            f"not signed in: {page.url}\n{(await page.content())[:3000]}"
        ) from None


async def create_user(
    client: httpx.AsyncClient, console: str, admin_token: str, **user: Any
) -> None:
    r = await client.post(
        f"{console}/v1/users", json=user, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert r.status_code == 201, r.text


def ink_pixels(png: bytes) -> int:
    """Pixels clearly darker than the page's light background: text, bars, borders."""
    width, _h, rows, bpp = decode_png(png)
    n = 0
    for row in rows:
        for x in range(0, width * bpp, bpp):
            if row[x] + row[x + 1] + row[x + 2] < 3 * 160:
                n += 1
    return n


def colour_pixels(png: bytes, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    width, _h, rows, bpp = decode_png(png)
    n = 0
    for row in rows:
        for x in range(0, width * bpp, bpp):
            if all(abs(row[x + i] - rgb[i]) < tolerance for i in range(3)):
                n += 1
    return n
