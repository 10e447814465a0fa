"""The console by keyboard and at two widths, in Debian's chromium against every service as
a process: every field of every page has an accessible label; a rep signs in and accepts a
lead with Tab and Enter only, the focus visible on the way; and the main pages (queue, lead,
leads, dashboard, scoring editor, routing, an account) fit 1280 px and 390 px without sideways scrolling,
their screenshots holding content. One platform for the whole file."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.console_support import (
    ANSWERS,
    DANA,
    PASSWORD,
    chromium,
    console_platform,
    ink_pixels,
    signed_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(420),
]

# Fields (not hidden) a screen reader could not name: no label, aria-label(ledby) or title.
UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !((el.getAttribute('aria-label') || '').trim()
                  || el.getAttribute('aria-labelledby')
                  || Array.from(el.labels || []).some(l => l.textContent.trim())
                  || (el.title || '').trim()))
  .map(el => el.outerHTML.slice(0, 160))"""
# The focused element, and whether the focus is drawn (a visible outline).
FOCUS = """() => { const el = document.activeElement; if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  return {id: el.id, text: (el.textContent || '').trim(), tag: el.tagName,
          form: el.form ? el.form.className : '', visible: el.matches(':focus-visible')
            && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
          row: (el.closest('li.lead') || {}).id || ''}; }"""
OVERFLOW = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
# What sticks out on the right (the innermost elements), to say what to fix.
STICKING_OUT = """() => Array.from(document.querySelectorAll('body *'))
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter(el => !Array.from(el.children).some(
      c => c.getBoundingClientRect().right > window.innerWidth + 0.5))
  .slice(0, 5).map(el => el.outerHTML.slice(0, 120))"""


async def tab_to(page: Any, want: Any, limit: int = 120) -> dict[str, Any]:
    """Press Tab until ``want(focus)``; every stop on the way must show its focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focus = await page.evaluate(FOCUS)
        if focus is None:
            continue
        assert focus["visible"], f"focus not visible on {focus}"
        if want(focus):
            return dict(focus)
    raise AssertionError(f"never reached by Tab on {page.url}")


async def test_labels_keyboard_and_widths(e2e_stack: Any) -> None:
    started = time.monotonic()
    async with console_platform(e2e_stack) as p:
        e, stack = p.e, p.stack
        await p.configure_sales()
        await p.add_user("ana@example.com", "Ana Ortiz", ["rep"], rep_id="ana")
        await p.add_user("root@example.com", "Ada Admin", ["admin"])
        lead_id = await p.capture("keyboard-dana", DANA, ANSWERS)

        async with chromium() as browser:
            # -- a rep, keyboard only: sign in, find the lead, accept it.
            rep = await (await browser.context()).new_page()
            await rep.goto(e.console + "/login")
            await tab_to(rep, lambda f: f["id"] == "username")
            await rep.keyboard.type("ana@example.com")
            await tab_to(rep, lambda f: f["id"] == "password")
            await rep.keyboard.type(PASSWORD)
            await rep.keyboard.press("Enter")
            await rep.wait_for_selector("#who-name", timeout=30_000)
            assert rep.url.endswith("/queue")
            row = rep.locator(f"#lead-{lead_id}")
            try:
                await row.wait_for(timeout=90_000)
            except Exception:
                pytest.fail(f"the lead never reached Ana's queue\n{stack.log_tail()}")
            accept = await tab_to(
                rep,
                lambda f: f["row"] == f"lead-{lead_id}" and "action-accept" in f["form"],
            )
            assert accept["tag"] == "BUTTON" and accept["text"] == "Accept", accept
            await rep.keyboard.press("Enter")
            await rep.locator(f'#lead-{lead_id}[data-stage="sal"]').wait_for(timeout=30_000)

            # -- every field of every page has a label (the admin is offered every page).
            boss = await signed_in(browser, e.console, "root@example.com")
            nav = await boss.eval_on_selector_all(
                "nav[aria-label=Main] a", "els => els.map(e => e.getAttribute('href'))"
            )
            assert "/dashboard" in nav and "/routing" in nav and "/scoring" in nav
            pages = [*nav, f"/leads/{lead_id}", "/sla/calendars", "/leads?q=dana",
                     "/accounts/northwind-bank.com"]  # fmt: skip
            missing: dict[str, list[str]] = {}
            for path in pages:
                await boss.goto(e.console + path)
                if found := await boss.evaluate(UNLABELLED):
                    missing[path] = found
            if found := await rep.evaluate(UNLABELLED):
                missing["/queue"] = found
            assert missing == {}, missing

            # -- the main pages at 1280 px and 390 px: no sideways scroll, content drawn.
            main = [(rep, "/queue")] + [
                (boss, p)
                for p in (
                    f"/leads/{lead_id}",
                    "/leads",
                    "/dashboard",
                    "/scoring",
                    "/routing",
                    "/accounts/northwind-bank.com",  # Dana's company
                )
            ]
            wide: dict[str, list[Any]] = {}
            for width in (1280, 390):
                for page, path in main:
                    await page.set_viewport_size({"width": width, "height": 900})
                    await page.goto(e.console + path)
                    await page.wait_for_selector("main h1")
                    scroll, inner = await page.evaluate(OVERFLOW)
                    if scroll > inner:
                        wide[f"{path} @ {width}"] = [
                            scroll,
                            inner,
                            *await page.evaluate(STICKING_OUT),
                        ]
                    shot = await page.screenshot(full_page=True)
                    assert ink_pixels(shot) > 3_000, f"{path} at {width} px is blank"
            assert wide == {}, wide
            assert browser.outside == [], browser.outside
    print(f"console keyboard browser test: {time.monotonic() - started:.1f}s")
