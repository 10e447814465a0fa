"""Reports agree with each other, money keeps its currency, configuration is guarded: the
running platform with its built-in scoring model, SLA policies and process, driven through
public APIs only.

Sales ops set up two reps (ana, ben) in team "na", the "unassigned" queue, and one rule:
campaign ``spring-launch`` goes to ana; everything else waits in the rule set's default
queue. Three sales-ready inquiries (the built-in model makes each an MQL):

| lead | source (channel / campaign) | what sales does |
|---|---|---|
| L1 | api / spring-launch | ana accepts, contacts, qualifies; opportunity 1000 EUR; a win in USD is refused; won 1000 EUR |
| L2 | partner / spring-launch | ana accepts, qualifies; opportunity 500 USD, left open |
| L3 | api / autumn | waits in the queue; ben takes it (accepts), qualifies; opportunity 300 USD; won 300 USD |

Every SLA figure is read from sla-monitor and from analytics and must be the same; routing's
assignments and analytics' reps agree; money is reported per currency, pipeline open only.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until, wait_until_equal

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

ANSWERS = {
    "budget": "$80k approved",
    "authority": "Yes, I sign off",
    "timeframe": "This quarter",
    "compelling_event": "Contract with the incumbent ends in March",
    "company_size": "1200",
}
LEADS = {
    "L1": ("dana@northwind-bank.com", "Northwind Bank", "api", "spring-launch"),
    "L2": ("omar@contoso-bank.com", "Contoso Bank", "partner", "spring-launch"),
    "L3": ("kim@fabrikam-bank.com", "Fabrikam Bank", "api", "autumn"),
}
POLICIES = ("mql-assigned-30m", "accept-4bh", "contact-1bd", "sal-max-14d")


async def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200,)), response.text
    return dict(response.json()) if response.content else {}


async def _setup(client: httpx.AsyncClient, routing: str, admin: dict[str, str]) -> None:
    """What sales ops configure on day one: the roster, the queue, one rule."""
    await _ok(await client.put(f"{routing}/v1/routing/queues/unassigned", headers=admin, json={}))
    for rep in ("ana", "ben"):
        await _ok(
            await client.put(
                f"{routing}/v1/routing/reps/{rep}", headers=admin, json={"team_id": "na"}
            )
        )
    await _ok(
        await client.put(
            f"{routing}/v1/routing/teams/na", headers=admin, json={"members": ["ana", "ben"]}
        )
    )
    rules = {
        "rules": [
            {
                "id": "spring-to-ana",
                "when": {"campaign": ["spring-launch"]},
                "target": {"kind": "rep", "rep_id": "ana", "respect_territories": False},
            }
        ],
        "default_queue_id": "unassigned",
        "published_by": "sales-ops",
    }
    await _ok(await client.post(f"{routing}/v1/routing/rules", headers=admin, json=rules), 201)


async def test_reports_agree_across_services_with_money_per_currency(e2e_stack: Any) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    # Reports need a credential: every read here is the admin token's unless it says otherwise.
    async with httpx.AsyncClient(timeout=30, headers=admin) as client:
        await _setup(client, e.routing, admin)

        # -- configuration guards (items 5 and 8) -------------------------------------
        owner = await client.put(
            f"{e.intake}/v1/admin/accounts/northwind-bank.com",
            headers=admin,
            json={"account_id": "northwind", "owner_rep_id": "ana"},
        )
        assert owner.status_code == 422, owner.text
        assert owner.json()["owner_api"] == "/v1/routing/accounts/northwind-bank.com"
        await _ok(
            await client.put(
                f"{e.routing}/v1/routing/accounts/northwind-bank.com",
                headers=admin,
                json={"rep_id": "ana"},
            )
        )
        form = await client.put(
            f"{e.intake}/v1/admin/forms/contact-sales",
            headers=admin,
            json={
                "name": "Contact sales",
                "allowed_origins": ["https://www.example.com"],
                "field_map": {"work_email": "contact.emial"},
            },
        )
        assert form.status_code == 422 and form.json()["errors"][0]["field"] == (
            "field_map.work_email"
        )

        # -- capture -------------------------------------------------------------------
        lead: dict[str, str] = {}
        for name, (email, company, channel, campaign) in LEADS.items():
            r = await client.post(
                f"{e.intake}/v1/inquiries",
                headers={"X-Api-Key": e.api_key, "Idempotency-Key": f"agree-{name}"},
                json={
                    "contact": {
                        "email": email,
                        "first_name": name,
                        "last_name": "Buyer",
                        "title": "VP Marketing",
                        "department": "Marketing",
                        "company": company,
                        "industry": "Banking",
                        "country": "US",
                    },
                    "answers": ANSWERS,
                    "source": {"channel": channel, "campaign": campaign},
                    "consent": {"marketing_opt_in": True},
                },
            )
            lead[name] = (await _ok(r, 201, 202))["lead_id"]

        placed: dict[str, dict[str, Any]] = {}

        async def all_placed() -> bool:
            for name, lid in lead.items():
                r = await client.get(f"{e.routing}/v1/leads/{lid}/assignment", headers=admin)
                if r.status_code != 200 or r.json().get("assignee_kind") is None:
                    return False
                placed[name] = r.json()
            return True

        try:
            await wait_until(all_placed, timeout=90, message="the three MQLs placed")
        except Exception:
            pytest.fail(f"placed: {placed}\n{stack.log_tail()}")
        assert (placed["L1"]["rep_id"], placed["L2"]["rep_id"]) == ("ana", "ana")
        assert (placed["L3"]["assignee_kind"], placed["L3"]["queue_id"]) == ("queue", "unassigned")

        # -- sales works the leads -----------------------------------------------------
        async def act(name: str, action: str, body: dict[str, Any], *codes: int) -> Any:
            url = f"{e.routing}/v1/leads/{lead[name]}/{action}"
            return await _ok(await client.post(url, headers=admin, json=body), *codes)

        await act("L1", "accept", {})
        await act("L1", "contacted", {"channel": "phone"})
        await act("L1", "qualify", {})
        await act("L1", "opportunity", {"amount": "1000", "currency": "EUR"})
        await act("L2", "accept", {})
        await act("L2", "qualify", {})
        await act("L2", "opportunity", {"amount": "500", "currency": "USD"})
        await act("L3", "accept", {"rep_id": "ben"})  # ben takes it from the queue
        await act("L3", "qualify", {})
        await act("L3", "opportunity", {"amount": "300", "currency": "USD"})
        refused = await client.post(
            f"{e.routing}/v1/leads/{lead['L1']}/won",
            headers=admin,
            json={"amount": "1100", "currency": "USD"},
        )
        assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "currency"
        await act("L1", "won", {"amount": "1000"})
        await act("L3", "won", {"amount": "300", "currency": "USD"})

        # A rep with an open lead, the rule set's default queue: not deleted (409).
        gone = await client.delete(f"{e.routing}/v1/routing/reps/ana", headers=admin)
        assert gone.status_code == 409
        assert {x["field"] for x in gone.json()["errors"]} == {
            "leads",
            "rules[0].target",
            "accounts[northwind-bank.com]",
        }
        gone = await client.delete(f"{e.routing}/v1/routing/queues/unassigned", headers=admin)
        assert gone.status_code == 409
        assert {x["field"] for x in gone.json()["errors"]} == {"default_queue_id"}

        # -- reports: sla-monitor and analytics agree ----------------------------------
        sm: dict[str, dict[str, Any]] = {}
        an: dict[str, Any] = {}

        async def settled() -> bool:
            nonlocal sm, an
            r = await client.get(f"{e.sla}/v1/sla/compliance", params={"group_by": "policy"})
            sm = {g["policy_id"]: g for g in r.json()["groups"]}
            an = (await client.get(f"{e.analytics}/v1/reps")).json()
            by_policy = {p["policy_id"]: p for p in an["sla_by_policy"]}
            wins = sum(r["won"] for r in an["rows"])
            return (
                wins == 2
                and set(POLICIES) <= set(sm)
                and sm["sal-max-14d"]["met_on_time"] == 3
                and all(
                    p in by_policy
                    and (by_policy[p]["started"], by_policy[p]["met_on_time"], by_policy[p]["late"])
                    == (sm[p]["total"], sm[p]["met_on_time"], sm[p]["late"])
                    for p in POLICIES
                )
            )

        try:
            await wait_until(settled, timeout=60, message="sla-monitor and analytics settled")
        except Exception:
            pytest.fail(f"sla-monitor {sm}\nanalytics {an.get('sla_by_policy')}")
        by_policy = {p["policy_id"]: p for p in an["sla_by_policy"]}
        for policy in POLICIES:
            ours, theirs = by_policy[policy], sm[policy]
            assert ours["compliance"] * 100 == theirs["met_on_time_pct"], policy
        # Exact figures: every clock the reps' actions met was met on time (they acted in
        # seconds); three MQLs placed, three accepted, three qualified, one contacted.
        assert (sm["mql-assigned-30m"]["total"], sm["mql-assigned-30m"]["met_on_time"]) == (3, 3)
        assert (sm["accept-4bh"]["total"], sm["accept-4bh"]["met_on_time"]) == (3, 3)
        assert (sm["sal-max-14d"]["total"], sm["sal-max-14d"]["met_on_time"]) == (3, 3)
        assert sm["contact-1bd"]["met_on_time"] == 1
        assert by_policy["accept-4bh"]["compliance"] == 1.0

        # Per rep, the same in both: sla-monitor groups clocks by the rep they started for.
        r = await client.get(
            f"{e.sla}/v1/sla/compliance", params={"group_by": "rep", "policy_id": "sal-max-14d"}
        )
        sm_reps = {g["rep_id"]: g["met_on_time"] for g in r.json()["groups"]}
        an_reps = {
            x["rep_id"]: x["met_on_time"]
            for x in (
                await client.get(f"{e.analytics}/v1/reps", params={"policy": "sal-max-14d"})
            ).json()["sla_by_rep"]
        }
        assert sm_reps == an_reps == {"ana": 2, "ben": 1}

        # Analytics folds routing's topic apart from sla-monitor's: the SLA figures above
        # agreeing says nothing of L2's accept or opportunity. Wait for what is asserted.
        async def analytics_figures() -> Any:
            reps = (await client.get(f"{e.analytics}/v1/reps")).json()
            by_source = (
                await client.get(f"{e.analytics}/v1/sources", params={"group_by": "campaign"})
            ).json()
            funnel = (await client.get(f"{e.analytics}/v1/funnel")).json()
            return (
                {x["rep_id"]: (x["assigned"], x["accepted"], x["won"]) for x in reps["rows"]},
                {
                    x["source"]: [
                        (m["currency"], m["pipeline"], m["won_revenue"]) for m in x["money"]
                    ]
                    for x in by_source["rows"]
                },
                {r["stage"]: r["count"] for r in funnel["waterfall"]},
            )

        await wait_until_equal(
            analytics_figures,
            (
                {"ana": (2, 2, 1), "ben": (0, 1, 1)},
                {
                    "spring-launch": [("EUR", 0.0, 1000.0), ("USD", 500.0, 0.0)],
                    "autumn": [("USD", 0.0, 300.0)],
                },
                {"inquiry": 3, "mql": 3, "sal": 3, "sql": 3, "opportunity": 3, "won": 2},
            ),
            message="analytics has every hand-off and deal",
        )
        an = (await client.get(f"{e.analytics}/v1/reps")).json()

        # -- routing and analytics agree on who owns what ------------------------------
        rows = {x["rep_id"]: x for x in an["rows"]}
        assert sorted(rows) == ["ana", "ben"]  # the queue is not a rep
        assert (rows["ana"]["assigned"], rows["ana"]["accepted"], rows["ana"]["won"]) == (2, 2, 1)
        assert (rows["ben"]["assigned"], rows["ben"]["accepted"], rows["ben"]["won"]) == (0, 1, 1)
        assert an["queues"] == [{"queue_id": "unassigned", "team_id": "(none)", "assigned": 1}]
        assert rows["ana"]["money"] == [{"currency": "EUR", "won_revenue": 1000.0}]
        assert rows["ben"]["money"] == [{"currency": "USD", "won_revenue": 300.0}]
        owned = {
            n: (await client.get(f"{e.routing}/v1/leads/{lid}/assignment", headers=admin)).json()
            for n, lid in lead.items()
        }
        assert {n: a["rep_id"] for n, a in owned.items()} == {"L1": "ana", "L2": "ana", "L3": "ben"}

        # The reps report honours the campaign filter like every other report.
        autumn = (await client.get(f"{e.analytics}/v1/reps", params={"campaign": "autumn"})).json()
        assert [x["rep_id"] for x in autumn["rows"]] == ["ben"]
        assert {p["policy_id"]: p["started"] for p in autumn["sla_by_policy"]}["accept-4bh"] == 1

        # -- money keeps its currency; pipeline is open opportunities only --------------
        sources = (
            await client.get(f"{e.analytics}/v1/sources", params={"group_by": "campaign"})
        ).json()
        money = {x["source"]: x["money"] for x in sources["rows"]}
        assert [
            (m["currency"], m["pipeline"], m["won_revenue"], m["won_deals"])
            for m in money["spring-launch"]
        ] == [("EUR", 0.0, 1000.0, 1), ("USD", 500.0, 0.0, 0)]
        assert [(m["currency"], m["pipeline"], m["won_revenue"]) for m in money["autumn"]] == [
            ("USD", 0.0, 300.0)
        ]
        attribution = (
            await client.get(f"{e.analytics}/v1/attribution", params={"model": "linear"})
        ).json()
        assert [(x["campaign"], x["currency"], x["revenue"]) for x in attribution["rows"]] == [
            ("spring-launch", "EUR", 1000.0),
            ("autumn", "USD", 300.0),
        ]
        # Routing's own record of each deal (stage, amount, currency) gives the same money;
        # a won lead is a customer from its win on (issue 30: won → customer).
        routing_won: dict[str, float] = {}
        routing_open: dict[str, float] = {}
        for a in owned.values():
            into = routing_won if a["stage"] == "customer" else routing_open
            if a["stage"] in ("customer", "opportunity"):
                into[a["currency"]] = into.get(a["currency"], 0.0) + float(a["amount"])
        analytics_won: dict[str, float] = {}
        analytics_open: dict[str, float] = {}
        for row in sources["rows"]:
            for m in row["money"]:
                if m["won_revenue"]:
                    analytics_won[m["currency"]] = (
                        analytics_won.get(m["currency"], 0.0) + m["won_revenue"]
                    )
                if m["pipeline"]:
                    analytics_open[m["currency"]] = (
                        analytics_open.get(m["currency"], 0.0) + m["pipeline"]
                    )
        assert routing_won == analytics_won == {"EUR": 1000.0, "USD": 300.0}
        assert routing_open == analytics_open == {"USD": 500.0}
        funnel = (await client.get(f"{e.analytics}/v1/funnel")).json()
        assert {r["stage"]: r["count"] for r in funnel["waterfall"]} == {
            "inquiry": 3,
            "mql": 3,
            "sal": 3,
            "sql": 3,
            "opportunity": 3,
            "won": 2,
        }
        page = (await client.get(f"{e.analytics}/")).text
        assert 'data-currency="EUR">1,000 EUR<' in page and 'data-currency="USD">300 USD<' in page
