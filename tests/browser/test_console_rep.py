"""A rep works a lead in the console, in Debian's chromium, against every service running as
a process: signs in, sees the new lead appear with its phone number (no reload), accepts it
and takes it to won; the leadership dashboard's funnel moves. No request leaves 127.0.0.1,
the pages read at 390 px, and the screenshots hold content."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until
from tests.browser.console_support import (
    chromium,
    colour_pixels,
    create_user,
    ink_pixels,
    require_browser,
    sign_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]

PASSWORD = "a long enough password"
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
BAR_RGB = (0x2F, 0x6F, 0xDF)


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


async def funnel_count(page: Any, stage: str) -> int:
    row = page.locator(f'#funnel li[data-stage="{stage}"]')
    if await row.count() == 0:
        return 0
    return int(await row.get_attribute("data-count") or 0)


async def test_a_rep_takes_a_new_lead_from_the_queue_to_won_and_the_funnel_moves(
    e2e_stack: Any,
) -> None:
    require_browser()
    started = time.monotonic()
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        await configure_sales(client, e.routing, admin)
        await create_user(
            client, e.console, e.admin_token,
            email="ana@example.com", name="Ana Ortiz", password=PASSWORD,
            roles=["rep"], rep_id="ana",
        )  # fmt: skip
        await create_user(
            client, e.console, e.admin_token,
            email="lee@example.com", name="Lee Chen", password=PASSWORD, roles=["analyst"],
        )  # fmt: skip
        await create_user(
            client, e.console, e.admin_token,
            email="mia@example.com", name="Mia Park", password=PASSWORD,
            roles=["sales_manager"],
        )  # fmt: skip

        async with chromium() as browser:
            page = await (await browser.context()).new_page()
            # The leadership view before: nobody has won yet.
            boss = await (await browser.context()).new_page()
            await sign_in(boss, e.console, "lee@example.com", PASSWORD)
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

            r = await client.post(
                f"{e.intake}/v1/inquiries",
                headers={"X-Api-Key": e.api_key, "Idempotency-Key": "console-dana"},
                json={
                    "contact": DANA,
                    "answers": ANSWERS,
                    "source": {"channel": "api", "campaign": "spring-launch"},
                    "consent": {"marketing_opt_in": True},
                },
            )
            assert r.status_code in (201, 202), r.text
            lead_id = r.json()["lead_id"]

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
            mia = await (await browser.context()).new_page()
            await sign_in(mia, e.console, "mia@example.com", PASSWORD)
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
