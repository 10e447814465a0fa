"""Qualification with the built-in model, as marketing ops meet it on day one.

A sales-ready inquiry (a VP at a target company with budget, authority, timeframe and a
compelling event) becomes an MQL, exactly as ``POST /v1/scoring/simulate`` says for the same
facts; ``GET /v1/leads/{id}/score`` shows the predicted conversion the ``lead.scored`` event
carries (as analytics recorded it).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.events.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(240)]

CONTACT = {
    "email": "dana.reyes@northwind-bank.com",
    "first_name": "Dana",
    "last_name": "Reyes",
    "title": "VP Marketing",
    "department": "Marketing",
    "company": "Northwind Bank",
    "industry": "Banking",
    "country": "US",
}
ANSWERS = {
    "budget": "$80k approved",
    "authority": "Yes, I sign off",
    "timeframe": "This quarter",
    "compelling_event": "Contract with the incumbent ends in March",
    "company_size": "1200",
}
# The built-in model's fit for these facts: VP 22, title 5, marketing 8, 500+ employees 15,
# banking 8, country 3, compelling event 10, authority 10, this quarter 10, budget 8, and
# known account 10 (intake groups every company domain into an account): 109, capped at 100.
EXPECTED_FIT = 100.0


def _rules(result: dict[str, Any]) -> set[str]:
    return {c["rule_id"] for c in result["contributions"]}


async def test_sales_ready_inquiry_is_an_mql_as_simulate_says(e2e_stack: Any) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{e.intake}/v1/inquiries",
            headers={"X-Api-Key": e.api_key, "Idempotency-Key": "qualification-dana"},
            json={
                "contact": CONTACT,
                "answers": ANSWERS,
                "source": {"channel": "api", "campaign": "spring-launch"},
                "consent": {"marketing_opt_in": True},
            },
        )
        assert r.status_code in (201, 202), r.text
        lead_id = r.json()["lead_id"]

        live: dict[str, Any] = {}

        async def qualified() -> bool:
            nonlocal live
            got = await client.get(f"{e.scoring}/v1/leads/{lead_id}/score", headers=admin)
            live = got.json() if got.status_code == 200 else {}
            return bool(live.get("qualified"))

        try:
            await wait_until(qualified, timeout=60, message="the inquiry to qualify")
        except Exception:
            pytest.fail(f"not qualified: {live}\n{stack.log_tail()}")

        # The same facts through simulate, as marketing ops would write them.
        sim = await client.post(
            f"{e.scoring}/v1/scoring/simulate",
            headers=admin,
            json={
                "leads": [
                    {
                        "id": "dana",
                        "profile": {
                            "title": CONTACT["title"],
                            "department": CONTACT["department"],
                            "company": CONTACT["company"],
                            "industry": CONTACT["industry"],
                            "country": CONTACT["country"],
                            "company_size": 1200,
                            "email_domain": "northwind-bank.com",
                            "account_id": "northwind-bank",
                            "account_domain": "northwind-bank.com",
                            "answers": ANSWERS,
                        },
                        "activities": [{"activity_type": "inquiry"}],
                    }
                ]
            },
        )
        assert sim.status_code == 200, sim.text
        simulated = sim.json()["results"][0]
        assert simulated["matrix_cell"] == "A3" and simulated["mql_ready"] is True
        assert simulated["fit"] == EXPECTED_FIT and simulated["engagement"] == 10.0
        published = live["last_published"]
        for key in ("fit", "engagement", "grade", "engagement_level", "matrix_cell", "mql_ready"):
            assert live[key] == simulated[key], (key, _rules(live) ^ _rules(simulated))
            assert published[key] == simulated[key], key
        assert live["nurture"]["status"] == "none"  # an MQL is not sent to nurture

        # GET score's predicted conversion is the one lead.scored carried, as analytics has it.
        timeline: dict[str, Any] = {}

        async def scored_in_analytics() -> bool:
            nonlocal timeline
            got = await client.get(f"{e.analytics}/v1/leads/{lead_id}/timeline", headers=admin)
            timeline = got.json() if got.status_code == 200 else {}
            types = [ev["event_type"] for ev in timeline.get("events", [])]
            return "lead.scored" in types and "lead.qualified" in types

        await wait_until(scored_in_analytics, timeout=30, message="analytics has the score")
        scored = [ev["payload"] for ev in timeline["events"] if ev["event_type"] == "lead.scored"]
        assert scored[-1]["matrix_cell"] == "A3"
        assert "predicted_conversion" in live
        assert live["predicted_conversion"] == scored[-1]["predicted_conversion"]
        assert live["predictive_model_version"] == scored[-1]["predictive_model_version"]
