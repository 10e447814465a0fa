"""The lead process as its people run it: the built-in definition, a published version, and
analytics' process map and audit following it — the running platform, public APIs only.

Sales ops give rep ana the campaign ``spring-launch`` (everything else waits in the
``unassigned`` queue). Two sales-ready inquiries (the built-in model makes each an MQL) and
one that is not:

| lead | channel / campaign | what happens |
|---|---|---|
| L1 | api / spring-launch | MQL, assigned to ana; ana accepts and calls at once |
| L2 | api / spring-launch | MQL, assigned to ana; ana rejects it (not_icp) |
| L3 | tradeshow / expo | a student's badge scan: never an MQL |

Hand-computed audit: 2 MQLs, 1 contacted (within 5 minutes), 1 never; a defect rate of
1 in 2 (not_icp), leaking from mql; L2 handed back and not returned; tradeshow is a source
with inquiries and no MQL. Then marketing ops publish the process with SQL left unowned and
inquiries allowed 30 days: sla-monitor serves version 1, and analytics' map and audit follow.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

ANSWERS = {
    "budget": "$80k approved",
    "authority": "Yes, I sign off",
    "timeframe": "This quarter",
    "compelling_event": "Contract with the incumbent ends in March",
    "company_size": "1200",
}


async def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200,)), response.text
    return dict(response.json()) if response.content else {}


def _inquiry(email: str, company: str, channel: str, campaign: str, ready: bool) -> dict[str, Any]:
    contact = {"email": email, "first_name": "Pat", "last_name": "Buyer", "company": company}
    if ready:
        contact |= {"title": "VP Marketing", "industry": "Banking", "country": "US"}
    else:
        contact |= {"title": "Student"}
    return {
        "contact": contact,
        "answers": ANSWERS if ready else {},
        "source": {"channel": channel, "campaign": campaign},
        "consent": {"marketing_opt_in": True},
    }


async def test_process_versions_and_the_audit_and_map_that_follow_them(e2e_stack: Any) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        # -- the built-in process ------------------------------------------------------------
        assert (await client.get(f"{e.sla}/v1/process")).status_code == 401
        built_in = await _ok(await client.get(f"{e.sla}/v1/process", headers=admin))
        assert (built_in["version"], built_in["source"]) == (0, "built-in")
        owners = {s["stage"]: s["owner"] for s in built_in["stages"]}
        assert owners["mql"] == "marketing_ops" and owners["sql"] == "sales"

        # -- day one: the roster, a rule, three inquiries ------------------------------------
        r = e.routing
        await _ok(await client.put(f"{r}/v1/routing/queues/unassigned", headers=admin, json={}))
        await _ok(
            await client.put(f"{r}/v1/routing/reps/ana", headers=admin, json={"team_id": "na"})
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
        await _ok(await client.post(f"{r}/v1/routing/rules", headers=admin, json=rules), 201)
        leads: dict[str, str] = {}
        for name, body in {
            "L1": _inquiry(
                "dana@northwind-bank.com", "Northwind Bank", "api", "spring-launch", True
            ),
            "L2": _inquiry("omar@contoso-bank.com", "Contoso Bank", "api", "spring-launch", True),
            "L3": _inquiry("sam.student@gmail.com", "", "tradeshow", "expo", False),
        }.items():
            got = await client.post(
                f"{e.intake}/v1/inquiries",
                headers={"X-Api-Key": e.api_key, "Idempotency-Key": f"process-{name}"},
                json=body,
            )
            leads[name] = (await _ok(got, 201, 202))["lead_id"]

        async def with_ana() -> bool:
            for name in ("L1", "L2"):
                a = await client.get(f"{r}/v1/leads/{leads[name]}/assignment", headers=admin)
                if a.status_code != 200 or a.json().get("rep_id") != "ana":
                    return False
            return True

        await wait_until(with_ana, timeout=90, message="L1 and L2 assigned to ana")
        for name, action, body in (
            ("L1", "accept", {}),
            ("L1", "contacted", {"channel": "phone"}),
            ("L2", "reject", {"reason_code": "not_icp"}),
        ):
            url = f"{r}/v1/leads/{leads[name]}/{action}"
            await _ok(await client.post(url, headers=admin, json=body))

        # -- the audit of the built-in process -----------------------------------------------
        audit: dict[str, Any] = {}

        async def audited() -> bool:
            nonlocal audit
            audit = (await client.get(f"{e.analytics}/v1/audit", headers=admin)).json()
            # analytics folds intake's, scoring's and routing's topics apart: wait for every
            # figure asserted below, not only the hand-offs
            return bool(
                audit["defect_rate"]["rejected"] == 1
                and audit["speed_to_lead"]["contacted"] == 1
                and audit["speed_to_lead"]["mqls"] == 2
                and audit["defect_rate"]["mqls"] == 2
                and audit["gaps"]["sources_without_conversion"]
                == [{"channel": "tradeshow", "inquiries": 1}]
            )

        await wait_until(audited, timeout=90, message="analytics audited the hand-offs")
        assert audit["process_version"] == 0
        s = audit["speed_to_lead"]
        assert (s["mqls"], s["contacted"], s["never_contacted"]) == (2, 1, 1)
        assert (s["within_5_minutes"], s["within_1_hour"]) == (1, 1)
        assert s["median_seconds"] == s["p90_seconds"] and s["median_seconds"] < 300
        assert audit["defect_rate"] == {
            "mqls": 2,
            "rejected": 1,
            "rate": 0.5,
            "reasons": {"not_icp": 1},
        }
        assert audit["leakage"]["mql"] == {"total": 1, "by_reason": {"lead.rejected:not_icp": 1}}
        assert audit["recycled_return"] == {"handed_back": 1, "returned_to_mql": 0, "rate": 0.0}
        gaps = audit["gaps"]
        assert gaps["sources_without_conversion"] == [{"channel": "tradeshow", "inquiries": 1}]
        assert gaps["stages_without_owner"] == []
        assert gaps["leads_without_owner"]["count"] == 0
        assert gaps["reps_without_activity"] == []
        assert not audit["maturity"]["criteria"]["sales_ready_definition"]["met"]

        pmap = (await client.get(f"{e.analytics}/v1/process/map", headers=admin)).json()
        mql = next(b for b in pmap["stages"] if b["stage"] == "mql")
        assert (mql["figures"]["count"], mql["figures"]["conversion"]) == (2, 0.5)
        arrows = {(a["from"], a["to"], a["event_type"]): a["count"] for a in pmap["arrows"]}
        assert arrows[("mql", "nurture", "lead.rejected")] == 1
        assert arrows[("mql", "sal", "lead.accepted")] == 1

        # -- marketing and sales publish their process ---------------------------------------
        stages = [{k: v for k, v in st.items() if k != "sla_policies"} for st in built_in["stages"]]
        for st in stages:
            if st["stage"] == "sql":
                st["owner"] = None
            if st["stage"] == "inquiry":
                st["expected_duration"] = {"amount": 30, "unit": "days"}
        dup = await client.put(
            f"{e.sla}/v1/process", headers=admin, json={"stages": [*stages, stages[0]]}
        )
        assert dup.status_code == 422
        assert dup.json()["errors"][0]["field"] == f"stages[{len(stages)}].stage"
        put = await _ok(
            await client.put(
                f"{e.sla}/v1/process",
                headers=admin,
                json={"stages": stages, "published_by": "marketing-ops"},
            ),
            201,
        )
        assert (put["version"], put["source"], put["published_by"]) == (
            1,
            "published",
            "marketing-ops",
        )
        now = await _ok(await client.get(f"{e.sla}/v1/process", headers=admin))
        assert now["version"] == 1
        assert next(st for st in now["stages"] if st["stage"] == "sql")["owner"] is None
        versions = await _ok(await client.get(f"{e.sla}/v1/process/versions", headers=admin))
        assert [v["version"] for v in versions["versions"]] == [1]

        async def followed() -> bool:
            body = (await client.get(f"{e.analytics}/v1/process/map", headers=admin)).json()
            return bool(body["process_version"] == 1)

        await wait_until(followed, timeout=90, message="analytics follows process version 1")
        pmap = (await client.get(f"{e.analytics}/v1/process/map", headers=admin)).json()
        inquiry = next(b for b in pmap["stages"] if b["stage"] == "inquiry")
        assert inquiry["expected_duration"] == {"amount": 30.0, "unit": "days"}
        sql = next(b for b in pmap["stages"] if b["stage"] == "sql")
        assert sql["owner"] is None
        audit = (await client.get(f"{e.analytics}/v1/audit", headers=admin)).json()
        assert audit["process_version"] == 1
        assert audit["gaps"]["stages_without_owner"] == ["sql"]
        assert audit["maturity"]["criteria"]["sales_ready_definition"]["met"]
        assert not audit["maturity"]["criteria"]["agreed_statuses"]["met"]
        page = await client.get(f"{e.analytics}/v1/audit.html", headers=admin)
        assert page.status_code == 200 and "process version 1" in page.text
