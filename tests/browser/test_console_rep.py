"""A rep works a lead in the console, in Debian's chromium, against every service running as
a process: signs in, sees the new lead appear with its phone number (no reload), accepts it
and takes it to won; the leadership dashboard's funnel moves. No request leaves 127.0.0.1,
the pages read at 390 px, and the screenshots hold content."""

from __future__ import annotations

import time
from typing import Any

import pytest

from leadflow.testing import wait_until
from tests.browser.console_support import (
    ANSWERS,
    DANA,
    PASSWORD,
    PHONE_E164,
    chromium,
    colour_pixels,
    console_platform,
    ink_pixels,
    sign_in,
    signed_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]

BAR_RGB = (0x2F, 0x6F, 0xDF)


async def funnel_count(page: Any, stage: str) -> int:
    row = page.locator(f'#funnel li[data-stage="{stage}"]')
    if await row.count() == 0:
        return 0
    return int(await row.get_attribute("data-count") or 0)


async def test_a_rep_takes_a_new_lead_from_the_queue_to_won_and_the_funnel_moves(
    e2e_stack: Any,
) -> None:
    started = time.monotonic()
    async with console_platform(e2e_stack) as p:
        e, stack = p.e, p.stack
        await p.configure_sales()
        await p.add_user("ana@example.com", "Ana Ortiz", ["rep"], rep_id="ana")
        await p.add_user("lee@example.com", "Lee Chen", ["analyst"])
        await p.add_user("mia@example.com", "Mia Park", ["sales_manager"])

        async with chromium() as browser:
            page = await (await browser.context()).new_page()
            # The leadership view before: nobody has won yet.
            boss = await signed_in(browser, e.console, "lee@example.com")
            assert boss.url.endswith("/dashboard")
            assert await boss.inner_text("#who-role") == "analyst"
            assert await funnel_count(boss, "won") == 0

            await sign_in(page, e.console, "ana@example.com", PASSWORD)
            assert page.url.endswith("/queue")
            assert await page.inner_text("#who-name") == "Ana Ortiz"
            assert await page.inner_text("#who-role") == "rep"
            nav = await page.eval_on_selector_all(
                "nav[aria-label=Main] a", "els => els.map(e => e.getAttribute('href'))"
            )
            assert nav == ["/queue", "/api-docs"]  # no dashboard, no users for a rep
            await page.wait_for_selector("#queue-empty")

            lead_id = await p.capture("console-dana", DANA, ANSWERS)

            # It appears without a reload (the queue polls), with whom to call.
            row = page.locator(f"#lead-{lead_id}")
            try:
                await row.wait_for(timeout=90_000)
            except Exception:
                pytest.fail(f"the lead never reached Ana's queue\n{stack.log_tail()}")
            assert await row.locator(".name").inner_text() == "Dana Reyes"
            assert await row.locator(".phone").inner_text() == PHONE_E164
            assert await row.locator(".email").inner_text() == DANA["email"]
            assert (
                "VP Marketing" in await row.inner_text()
                and "Northwind Bank" in await row.inner_text()
            )
            assert await row.get_attribute("data-stage") == "mql"
            shot = await page.screenshot(full_page=True)
            assert ink_pixels(shot) > 5_000, "the queue screenshot is blank"

            async def act(
                action: str, stage: str | None, fields: dict[str, str] | None = None
            ) -> str:
                """Fill the row's form for ``action``, click it; the answer must say done,
                and the row must show the lead's new stage (or be gone, for None)."""
                form = row.locator(f"form.action-{action}")
                for label, value in (fields or {}).items():
                    await form.get_by_label(label).fill(value)
                async with page.expect_response(
                    lambda r: r.request.method == "POST" and r.url.endswith(f"/{action}")
                ) as answer:
                    await form.get_by_role("button").click()
                text = await (await answer.value).text()
                assert ": done" in text, text
                if stage is None:
                    await row.wait_for(state="detached")
                else:
                    await page.locator(f'#lead-{lead_id}[data-stage="{stage}"]').wait_for()
                return text

            await act("accept", "sal")
            await act("contacted", "sal", {"Note": "Called, interested"})
            await act("qualify", "sql")
            await act("opportunity", "opportunity", {"Amount": "1200", "Currency": "USD"})
            # won → customer (issue 30): routing answers the stage the win leaves the lead in
            assert "Won: done (now customer)." in await act("won", None, {"Amount": "1200"})

            # At 390 px the queue still fits: no sideways scrolling.
            await page.set_viewport_size({"width": 390, "height": 800})
            wide = await page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, wide

            # The funnel moves: the win reaches analytics and the dashboard counts it.
            async def won_on_dashboard() -> bool:
                await boss.reload()
                return await funnel_count(boss, "won") == 1

            await wait_until(won_on_dashboard, timeout=60, message="the win on the dashboard")
            assert await funnel_count(boss, "inquiry") >= 1
            label = await boss.locator('#funnel li[data-stage="won"] .bar-count').inner_text()
            assert label == "1"
            won = boss.locator('#money li[data-currency="USD"] .won')
            assert await won.inner_text() == "1,200.00 USD"  # money carries its currency
            chart = await boss.screenshot(full_page=True)
            assert colour_pixels(chart, BAR_RGB) > 500, "the funnel bars are not drawn"
            assert "/leads?" not in await boss.content()  # an analyst may not list leads

            # A manager drills down from figures to the leads they count.
            mia = await signed_in(browser, e.console, "mia@example.com")
            await mia.goto(e.console + "/dashboard")
            await mia.locator('#funnel li[data-stage="won"] .bar-count a').click()
            await mia.wait_for_url("**/leads?*reached=won*")
            assert await mia.inner_text("#result-count") == "1 lead"
            assert await mia.locator("#lead-results tbody tr").count() == 1
            assert "Dana Reyes" in await mia.inner_text("#lead-results")
            assert "1,200.00 USD won" in await mia.inner_text("#drill-caption")
            await mia.go_back()
            # The week's inquiries (a trend point): the figure and its list agree.
            point = mia.locator('#trends tbody tr:last-child td[data-stage="inquiry"] a')
            figure = int(await point.inner_text())
            await point.click()
            await mia.wait_for_url("**/leads?*reached=inquiry*")
            assert await mia.locator("#lead-results tbody tr").count() == figure
            assert "Dana Reyes" in await mia.inner_text("#lead-results")
            assert browser.outside == [], browser.outside
    print(f"console rep browser test: {time.monotonic() - started:.1f}s")
