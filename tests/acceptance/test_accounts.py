"""Accounts and buying groups (issue 30) through the running platform, built-in model.

Marketing ops registers Globex's account with intake and sales ops gives it an owner in
routing; three people of Globex raise a hand. Their leads group into the account (a
registered one, so the built-in "known account" fit rule counts), the VP qualifies and is
routed to the account's owner, analytics shows the buying group with inferred roles and
the account waterfall, and scoring rolls the three up into a marketing-qualified account
(``account.qualified``, once) that routing sends to the account's owner (``account.routed``).
Figures are exact: the built-in model's fit for each person is written out below.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until, wait_until_equal

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(240)]

DOMAIN = "globex-corp.com"
VP_ANSWERS = {
    "budget": "$80k approved",
    "authority": "Yes, I sign off",
    "timeframe": "This quarter",
    "compelling_event": "Contract with the incumbent ends in March",
    "company_size": "1200",
}
PEOPLE = {
    # VP 22, title 5, marketing 8, 500+ 15, banking 8, country 3, compelling event 10,
    # authority 10, this quarter 10, budget 8, known account 10: 109, capped at 100.
    "vp": ({"title": "VP Marketing", "department": "Marketing", "industry": "Banking"},
           VP_ANSWERS, 100.0),
    # manager 12, title 5, country 3, this quarter 10, known account 10
    "manager": ({"title": "IT Manager"}, {"timeframe": "this quarter"}, 40.0),
    # title 5, country 3, known account 10
    "agent": ({"title": "Support Agent"}, {}, 18.0),
}  # fmt: skip


async def test_a_buying_group_forms_an_account_routed_to_its_owner_and_qualified(
    e2e_stack: Any,
) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    async with httpx.AsyncClient(timeout=30, headers=admin) as client:

        async def ok(method: str, url: str, **kw: Any) -> Any:
            r = await client.request(method, url, **kw)
            assert r.status_code < 300, (method, url, r.status_code, r.text)
            return r.json() if r.content else None

        await ok("PUT", f"{e.intake}/v1/admin/accounts/{DOMAIN}",
                 json={"account_id": "globex", "name": "Globex"})  # fmt: skip
        await ok("PUT", f"{e.routing}/v1/routing/queues/unassigned", json={"name": "Unassigned"})
        await ok("PUT", f"{e.routing}/v1/routing/reps/ana", json={"name": "Ana Ruiz"})
        await ok("PUT", f"{e.routing}/v1/routing/accounts/{DOMAIN}", json={"rep_id": "ana"})

        leads: dict[str, str] = {}
        for name, (contact, answers, _) in PEOPLE.items():
            body = await ok(
                "POST",
                f"{e.intake}/v1/inquiries",
                headers={"X-Api-Key": e.api_key, "Idempotency-Key": f"accounts-{name}"},
                json={
                    "contact": {"email": f"{name}@{DOMAIN}", "first_name": name.title(),
                                "company": "Globex", "country": "US", **contact},
                    "answers": answers,
                    "source": {"channel": "api", "campaign": "abm-globex"},
                },
            )  # fmt: skip
            leads[body["lead_id"]] = name

        page: dict[str, Any] = {}
        expected_stages = {"vp": "mql", "manager": "nurture", "agent": "nurture"}

        async def grouped() -> bool:
            nonlocal page
            r = await client.get(f"{e.analytics}/v1/accounts/{DOMAIN}")
            page = r.json() if r.status_code == 200 else {}
            people = {leads.get(p["lead_id"]): p for p in page.get("people", [])}
            return (
                {k: p["stage"] for k, p in people.items()} == expected_stages
                and page.get("owner_rep_id") == "ana"
                and page.get("marketing_qualified_at") is not None
                and all(p["fit"] is not None for p in people.values())
            )

        try:
            await wait_until(grouped, timeout=90, message="the buying group in analytics")
        except Exception:
            pytest.fail(f"account page: {page}\n{stack.log_tail()}")

        assert page["account_id"] == "globex" and page["registered"] is True
        people = {leads[p["lead_id"]]: p for p in page["people"]}
        assert {k: p["role"] for k, p in people.items()} == {
            "vp": "decision_maker",
            "manager": "champion",
            "agent": "user",
        }
        assert {k: p["fit"] for k, p in people.items()} == {k: v[2] for k, v in PEOPLE.items()}
        assert page["customer_status"] == "prospect" and page["open_opportunities"] == []

        # scoring: fit is the best person's, engagement 10 + 10/2 + 10/4 (one inquiry each)
        score = await ok("GET", f"{e.scoring}/v1/accounts/{DOMAIN}/score")
        assert (score["fit"], score["engagement"], score["grade"]) == (100.0, 17.5, "A+")
        assert score["matrix_cell"] == "A3" and score["engaged_people"] == 3
        assert score["qualified"] is True and score["registered"] is True
        assert (await ok("GET", f"{e.scoring}/v1/accounts/globex/score"))["fit"] == 100.0

        # The account became an MQA once (scoring), and routing sent it to its owner.
        facts: list[dict[str, Any]] = []

        async def account_facts() -> list[str]:
            # routing's account.routed follows scoring's account.qualified: wait for both
            nonlocal facts
            facts = []
            for lead_id in leads:
                timeline = await ok("GET", f"{e.analytics}/v1/leads/{lead_id}/timeline")
                facts += [
                    {"type": ev["event_type"], **ev["payload"]}
                    for ev in timeline["events"]
                    if ev["event_type"] in ("account.qualified", "account.routed")
                ]
            return sorted(f["type"] for f in facts)

        await wait_until_equal(
            account_facts, ["account.qualified", "account.routed"], message="MQA and its routing"
        )
        mqa = next(f for f in facts if f["type"] == "account.qualified")
        routed = next(f for f in facts if f["type"] == "account.routed")
        assert mqa["account_id"] == "globex" and mqa["matrix_cell"] == "A3"
        assert mqa["engaged_people"] >= 2 and mqa["fit"] == 100.0
        assert routed["rep_id"] == "ana" and routed["account_id"] == "globex"

        report = await ok("GET", f"{e.analytics}/v1/accounts")
        assert report["waterfall"] == [
            {"stage": "engaged", "count": 1, "conversion": None},
            {"stage": "qualified", "count": 1, "conversion": 1.0},
            {"stage": "opportunity", "count": 0, "conversion": 0.0},
            {"stage": "won", "count": 0, "conversion": None},
        ]
        unknown = await client.get(f"{e.scoring}/v1/accounts/nobody.example/score")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
