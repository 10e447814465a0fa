"""Marketing ops in the console, in Debian's chromium, against every service as a process:
edit the scoring model, simulate it (the figures are scoring's own), publish it; create a web
form and post it from its own embed snippet on a page of an allowed origin. No request
leaves 127.0.0.1 and the screenshots hold content."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from leadflow.devstack.procs import free_port
from leadflow.testing import wait_until
from tests.browser.console_support import (
    chromium,
    console_platform,
    ink_pixels,
    sign_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.timeout(300),
]


async def test_marketing_ops_simulate_and_publish_a_model_and_embed_a_form(e2e_stack: Any) -> None:
    started = time.monotonic()
    async with console_platform(e2e_stack) as p:
        e, client, admin = p.e, p.client, p.admin
        await p.add_user("mo@example.com", "Mo Patel", ["marketing_ops"])
        before = (await client.get(f"{e.scoring}/v1/scoring/model", headers=admin)).json()

        async with chromium() as browser:
            context = await browser.context()
            page = await context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            await sign_in(page, e.console, "mo@example.com")
            assert await page.inner_text("#who-role") == "marketing ops"
            nav = await page.eval_on_selector_all(
                "nav[aria-label=Main] a", "els => els.map(e => e.getAttribute('href'))"
            )
            assert "/scoring" in nav and "/forms" in nav and "/users" not in nav

            # -- the scoring model: a draft that is not JSON is refused, naming the field.
            await page.goto(e.console + "/scoring")
            model_box = page.get_by_label("Draft model (JSON: rules, grade bands, MQL thresholds)")
            draft = json.loads(await model_box.input_value())
            assert draft["fit_rules"] == before["fit_rules"]
            await model_box.fill("{ not json")
            await page.get_by_role("button", name="Simulate").click()
            await page.locator("#scoring-result .error").wait_for()
            assert "model: not valid JSON" in await page.inner_text("#scoring-result")

            draft["name"] = "spring-2027"
            await model_box.fill(json.dumps(draft, indent=2))
            await page.get_by_role("button", name="Simulate").click()
            await page.locator("#simulation").wait_for()
            samples = json.loads(await page.get_by_label("Sample leads to simulate").input_value())
            expected = await client.post(
                f"{e.scoring}/v1/scoring/simulate",
                headers=admin,
                json={"model": draft, "leads": samples},
            )
            assert expected.status_code == 200, expected.text
            for result in expected.json()["results"]:
                row = page.locator(f'#simulation tr[data-id="{result["id"]}"]')
                assert await row.get_attribute("data-cell") == result["matrix_cell"]
                mql = "yes" if result["mql_ready"] else "no"
                assert await row.get_attribute("data-mql") == mql
            shot = await page.screenshot(full_page=True)
            assert ink_pixels(shot) > 5_000, "the scoring screenshot is blank"

            await page.get_by_role("button", name="Publish").click()
            await page.locator("#published").wait_for()
            version = int(await page.get_attribute("#published", "data-version") or 0)
            assert version == before["version"] + 1
            after = (await client.get(f"{e.scoring}/v1/scoring/model", headers=admin)).json()
            assert after["version"] == version and after["name"] == "spring-2027"

            # -- a web form, posted from its own embed snippet on an allowed origin.
            landing = f"http://127.0.0.1:{free_port()}"
            await page.goto(e.console + "/forms")
            await page.get_by_label("Name", exact=True).fill("Spring webinar")
            await page.get_by_label("Allowed origins", exact=False).fill(landing)
            await page.get_by_label("Campaign").fill("spring-webinar")
            # A field of its own (mapped onto a lead field) that the form requires.
            await page.get_by_label("More fields").fill("sector = contact.industry")
            await page.get_by_label("Required fields").fill("email sector")
            await page.get_by_role("button", name="Create form").click()
            await page.locator(".flash").wait_for()
            item = page.locator(".form-item", has_text="Spring webinar")
            snippet = await item.locator("textarea.snippet").input_value()
            assert f'action="{e.intake}/v1/forms/' in snippet
            assert '<input name="sector" required>' in snippet, snippet
            assert "sector" in await item.locator(".field-map").inner_text()

            site = await context.new_page()
            await site.route(
                landing + "/webinar",
                lambda route: route.fulfill(
                    content_type="text/html",
                    body=f"<!doctype html><title>Webinar</title><h1>Join us</h1>{snippet}",
                ),
            )
            await site.goto(landing + "/webinar")
            await site.get_by_label("E-mail").fill("sam.lee@contoso-logistics.com")
            await site.get_by_label("First name").fill("Sam")
            await site.get_by_label("Last name").fill("Lee")
            await site.get_by_label("Company").fill("Contoso Logistics")
            await site.get_by_label("Phone").fill("+1 206 555 0199")
            await site.get_by_label("Industry").fill("Logistics")
            await site.get_by_label("Send me product news").check()
            await site.get_by_role("button", name="Send").click()
            await site.get_by_text("Thank you!").wait_for()

            found: dict[str, Any] = {}

            async def captured() -> bool:
                nonlocal found
                r = await client.get(
                    f"{e.intake}/v1/leads",
                    params={"email": "sam.lee@contoso-logistics.com"},
                    headers=admin,
                )
                items = r.json().get("items", []) if r.status_code == 200 else []
                found = items[0] if items else {}
                return bool(found)

            await wait_until(captured, timeout=30, message="the form's lead at intake")
            assert found["contact"]["first_name"] == "Sam"
            assert found["contact"]["company"] == "Contoso Logistics"
            assert found["contact"]["industry"] == "Logistics"  # the form's own field

            # The new lead is found in the console's lead search.
            async def searchable() -> bool:
                await page.goto(e.console + "/leads?q=contoso-logistics")
                return await page.locator("#lead-results tbody tr").count() == 1

            await wait_until(searchable, timeout=60, message="the lead in the console's search")
            row = await page.inner_text("#lead-results tbody tr")
            assert "Sam Lee" in row and "Contoso Logistics" in row
            assert await page.inner_text("#result-count") == "1 lead"

            # Its page: profile and consent from intake, the whole timeline from analytics.
            await page.locator("#lead-results tbody tr a:not(.account)").click()
            await page.locator("#lead-name").wait_for()
            assert await page.inner_text("#lead-name") == "Sam Lee"
            consent = await page.inner_text("#consent")
            assert "marketing opt in: True" in consent and "source: web_form" in consent, consent
            assert "lead.captured" in await page.inner_text("#timeline")
            assert "not available to your role" in await page.inner_text("#assignment")
            assert browser.outside == [], browser.outside
    print(f"console marketing browser test: {time.monotonic() - started:.1f}s")
