"""Shared by the browser tests: Debian's chromium driven by Playwright, every request
outside 127.0.0.1 refused and recorded, the console platform (every service as a process,
an admin's HTTP client, sign-in, people and a sales team to work with), and screenshots that
must hold content (not a blank page)."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

PASSWORD = "a long enough password"  # every person the tests create signs in with it
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


async def sign_in(page: Any, console: str, email: str, password: str = PASSWORD) -> None:
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


PHONE = "+1 415 555 0142"
PHONE_E164 = "+14155550142"  # intake keeps phones in E.164
DANA = {
    "email": "dana.reyes@northwind-bank.com",
    "first_name": "Dana",
    "last_name": "Reyes",
    "phone": PHONE,
    "title": "VP Marketing",
    "department": "Marketing",
    "company": "Northwind Bank",
    "industry": "Banking",
    "country": "US",
}
# Sales-ready with the built-in model (tests/acceptance/test_qualification.py): an MQL.
ANSWERS = {
    "budget": "$80k approved",
    "authority": "Yes, I sign off",
    "timeframe": "This quarter",
    "compelling_event": "Contract with the incumbent ends in March",
    "company_size": "1200",
}


async def configure_sales(client: httpx.AsyncClient, routing: str, admin: dict[str, str]) -> None:
    """One team of one rep and a rule sending every lead to it: how a customer starts."""
    for path, body in (
        ("queues/unassigned", {"name": "Unassigned"}),
        ("queues/inside-sales", {"name": "Inside sales"}),
        ("reps/ana", {"name": "Ana Ortiz", "team_id": "inside"}),
        ("teams/inside", {"name": "Inside", "members": ["ana"], "queue_id": "inside-sales"}),
    ):
        r = await client.put(f"{routing}/v1/routing/{path}", json=body, headers=admin)
        assert r.status_code in (200, 201), r.text
    r = await client.post(
        f"{routing}/v1/routing/rules",
        headers=admin,
        json={
            "rules": [
                {
                    "id": "everyone",
                    "target": {"kind": "team", "team_id": "inside", "strategy": "round_robin"},
                    "fallback_queue_id": "inside-sales",
                }
            ],
            "default_queue_id": "unassigned",
            "published_by": "console-test",
        },
    )
    assert r.status_code == 201, r.text


@dataclass
class ConsolePlatform:
    """What a console browser test works with: the platform's endpoints (``e``), the
    started stack (``stack``, for its logs), an HTTP client and the admin's header."""

    stack: Any
    client: httpx.AsyncClient
    e: Any = field(init=False)
    admin: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.e = self.stack.endpoints
        self.admin = {"Authorization": f"Bearer {self.e.admin_token}"}

    async def add_user(
        self, email: str, name: str, roles: list[str], rep_id: str | None = None
    ) -> None:
        """A person who signs in with ``PASSWORD``."""
        user: dict[str, Any] = {"email": email, "name": name, "password": PASSWORD}
        user["roles"] = roles
        if rep_id is not None:
            user["rep_id"] = rep_id
        await create_user(self.client, self.e.console, self.e.admin_token, **user)

    async def configure_sales(self) -> None:
        await configure_sales(self.client, self.e.routing, self.admin)

    async def capture(self, key: str, contact: dict[str, Any], answers: dict[str, Any]) -> str:
        """An inquiry through intake's API (campaign spring-launch, marketing opt-in): its
        lead id."""
        r = await self.client.post(
            f"{self.e.intake}/v1/inquiries",
            headers={"X-Api-Key": self.e.api_key, "Idempotency-Key": key},
            json={
                "contact": contact,
                "answers": answers,
                "source": {"channel": "api", "campaign": "spring-launch"},
                "consent": {"marketing_opt_in": True},
            },
        )
        assert r.status_code in (201, 202), r.text
        return str(r.json()["lead_id"])


@contextlib.asynccontextmanager
async def console_platform(
    e2e_stack: Callable[[], Awaitable[Any]],
) -> AsyncIterator[ConsolePlatform]:
    """Skips without a browser; else starts every service as a process (``e2e_stack``)."""
    require_browser()
    stack = await e2e_stack()
    async with httpx.AsyncClient(timeout=30) as client:
        yield ConsolePlatform(stack, client)


async def signed_in(browser: Chromium, console: str, email: str, password: str = PASSWORD) -> Any:
    """A new page (in its own context) of ``email`` signed in to the console."""
    page = await (await browser.context()).new_page()
    await sign_in(page, console, email, password)
    return page


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
