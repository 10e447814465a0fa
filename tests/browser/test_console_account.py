"""The account page in the console, in Debian's chromium against every service as a process:
two people of one company (grouped by their company domain) make one account; a sales
manager reaches it from the leads list and from a lead's page and sees the buying group with
roles, stages and engagement, the owner and customer status, scoring's account score and
grade, and the account waterfall. No request leaves 127.0.0.1; the screenshot holds content."""

from __future__ import annotations

import time
from typing import Any

import pytest

from leadflow.testing import wait_until
from tests.browser.console_support import (
    ANSWERS,
    DANA,
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
SAM = {
    "email": "sam.okafor@northwind-bank.com",
    "first_name": "Sam",
    "last_name": "Okafor",
    "title": "Chief Financial Officer",
    "company": "Northwind Bank",
    "country": "US",
}
DOMAIN = "northwind-bank.com"


async def test_a_manager_opens_an_account_from_the_leads_and_from_a_lead(
    e2e_stack: Any,
) -> None:
    started = time.monotonic()
    async with console_platform(e2e_stack) as p:
        e = p.e
        await p.configure_sales()
        await p.add_user("mia@example.com", "Mia Park", ["sales_manager"])
        ids = {}
        for key, contact, answers in (("dana", DANA, ANSWERS), ("sam", SAM, {})):
            ids[key] = await p.capture(f"account-{key}", contact, answers)

        async with chromium() as browser:
            page = await signed_in(browser, e.console, "mia@example.com")

            async def both_listed() -> bool:
                await page.goto(e.console + "/leads?q=northwind")
                return await page.locator("#lead-results a.account").count() == 2

            await wait_until(both_listed, timeout=90, message="both people in the leads list")
            await page.locator("#lead-results a.account").first.click()
            await page.wait_for_url(f"**/accounts/{DOMAIN}")

            async def scored_group() -> bool:
                await page.reload()
                people = await page.locator("#people tbody tr[data-lead]").count()
                return people == 2 and await page.locator("#account-grade").count() == 1

            await wait_until(scored_group, timeout=90, message="the account's group and score")
            assert await page.inner_text("#account-name") in ("Northwind Bank", DOMAIN)
            group = await page.inner_text("#people")
            assert "Chief Financial Officer" in group and "VP Marketing" in group
            assert {
                await r.get_attribute("data-lead")
                for r in await page.locator("#people tbody tr[data-lead]").all()
            } == set(ids.values())
            assert await page.inner_text("#customer-status") == "prospect"
            assert (await page.inner_text("#account-grade")).strip() != ""
            assert await page.locator("#account-waterfall li[data-stage]").count() == 4
            engaged = page.locator('#account-waterfall li[data-stage="engaged"]')
            assert int(await engaged.get_attribute("data-count") or 0) >= 1
            shot = await page.screenshot(full_page=True)
            assert ink_pixels(shot) > 5_000, "the account page screenshot is blank"

            # From a person's lead page, its account link leads to the same page.
            await page.locator(f'#people tr[data-lead="{ids["sam"]}"] a').click()
            await page.wait_for_url(f"**/leads/{ids['sam']}")
            await page.locator("#lead-account a").click()
            await page.wait_for_url(f"**/accounts/{DOMAIN}")
            assert await page.locator("#people tbody tr[data-lead]").count() == 2
            assert browser.outside == [], browser.outside
    print(f"console account browser test: {time.monotonic() - started:.1f}s")
