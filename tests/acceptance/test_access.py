"""People sign in at the console and every service honours their role, on the running platform.

An admin signs in with the dev admin account, creates a rep and two analysts, and sets up
the roster with their own token (each service verifies the console's tokens in the kernel).
A sales-ready inquiry reaches the rep; the rep, signed in through ``POST /v1/auth/token``,
works their own lead and nothing else; an analyst reads the reports but not the person's
e-mail unless granted personal data; without a credential nothing is readable.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from leadflow.testing import wait_until, wait_until_equal

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(240)]

EMAIL = "dana.reyes@northwind-bank.com"
INQUIRY = {
    "contact": {
        "email": EMAIL,
        "first_name": "Dana",
        "last_name": "Reyes",
        "phone": "+1 212 555 0100",
        "title": "VP Marketing",
        "department": "Marketing",
        "company": "Northwind Bank",
        "industry": "Banking",
        "country": "US",
    },
    "answers": {
        "budget": "$80k approved",
        "authority": "Yes, I sign off",
        "timeframe": "This quarter",
        "compelling_event": "Contract with the incumbent ends in March",
        "company_size": "1200",
    },
    "source": {"channel": "api", "campaign": "spring-launch"},
    "notes": "Call me about the migration",
}
PASSWORD = "a long passphrase for tests"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(client: httpx.AsyncClient, console: str, email: str, password: str) -> str:
    r = await client.post(
        f"{console}/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    return str(body["access_token"])


async def test_a_rep_and_an_analyst_sign_in_and_see_what_their_role_allows(
    e2e_stack: Any,
) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    async with httpx.AsyncClient(timeout=30) as client:
        admin = bearer(
            await sign_in(client, e.console, e.console_admin_email, e.console_admin_password)
        )

        # The admin's own token sets up the roster and creates the people.
        for path, body in [
            ("/v1/routing/reps/ava", {"team_id": "na", "weight": 1}),
            ("/v1/routing/reps/ben", {"team_id": "na", "weight": 1}),
            ("/v1/routing/teams/na", {"members": ["ava"]}),
            ("/v1/routing/queues/unassigned", {"name": "Unassigned"}),
        ]:
            r = await client.put(f"{e.routing}{path}", json=body, headers=admin)
            assert r.status_code == 200, r.text
        rules = await client.post(
            f"{e.routing}/v1/routing/rules",
            json={
                "rules": [
                    {
                        "id": "na",
                        "when": {"grade": ["A", "B"]},
                        "target": {"kind": "team", "team_id": "na"},
                    }
                ],
                "published_by": e.console_admin_email,
            },
            headers=admin,
        )
        assert rules.status_code == 201, rules.text
        people = {
            "ava@example.com": {"roles": ["rep"], "rep_id": "ava"},
            "ben@example.com": {"roles": ["rep"], "rep_id": "ben"},
            "ana@example.com": {"roles": ["analyst"]},
            "pia@example.com": {"roles": ["analyst", "personal_data"]},
        }
        for email, extra in people.items():
            r = await client.post(
                f"{e.console}/v1/users",
                json={"email": email, "name": email.split("@")[0], "password": PASSWORD, **extra},
                headers=admin,
            )
            assert r.status_code == 201, r.text

        r = await client.post(
            f"{e.intake}/v1/inquiries", headers={"X-Api-Key": e.api_key}, json=INQUIRY
        )
        assert r.status_code in (201, 202), r.text
        lead = r.json()["lead_id"]

        async def assigned() -> bool:
            got = await client.get(f"{e.routing}/v1/leads/{lead}/assignment", headers=admin)
            return got.status_code == 200 and got.json()["rep_id"] == "ava"

        await wait_until(assigned, timeout=90, message="the lead to reach ava")

        # The rep: their own queue and lead, as themselves; nobody else's, and no reports.
        ava = bearer(await sign_in(client, e.console, "ava@example.com", PASSWORD))
        ben = bearer(await sign_in(client, e.console, "ben@example.com", PASSWORD))
        claims = jwt.decode(ava["Authorization"][7:], options={"verify_signature": False})
        assert claims["roles"] == ["rep"] and claims["rep_id"] == "ava"
        queue = await client.get(f"{e.routing}/v1/reps/ava/queue", headers=ava)
        assert queue.status_code == 200
        assert [item["lead_id"] for item in queue.json()["leads"]] == [lead]
        assert (await client.get(f"{e.routing}/v1/reps/ben/queue", headers=ava)).status_code == 403
        assert (await client.get(f"{e.analytics}/v1/funnel", headers=ava)).status_code == 403
        assert (await client.get(f"{e.intake}/v1/leads/{lead}", headers=ava)).status_code == 403
        codes = await client.get(f"{e.routing}/v1/routing/reason-codes", headers=ben)
        assert codes.status_code == 200  # a rep may read them, to choose one
        reason = codes.json()["reject"][0]
        not_ben = await client.post(
            f"{e.routing}/v1/leads/{lead}/reject", json={"reason_code": reason}, headers=ben
        )
        assert not_ben.status_code == 409 and not_ben.json()["owner_rep_id"] == "ava"
        accepted = await client.post(f"{e.routing}/v1/leads/{lead}/accept", json={}, headers=ava)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["stage"] == "sal" and accepted.json()["rep_id"] == "ava"

        # The analyst: the reports, exactly as the admin sees them; not the person's fields.
        ana = bearer(await sign_in(client, e.console, "ana@example.com", PASSWORD))

        async def funnel_stages() -> tuple[Any, ...]:
            got = await client.get(f"{e.analytics}/v1/funnel", headers=ana)
            stages = {row["stage"]: row["count"] for row in got.json()["waterfall"]}
            return (stages.get("inquiry"), stages.get("mql"), stages.get("sal"))

        # analytics folds scoring's topic apart from routing's: the MQL may come after the accept
        await wait_until_equal(funnel_stages, (1, 1, 1), message="analytics to see the accept")
        as_analyst = (await client.get(f"{e.analytics}/v1/funnel", headers=ana)).json()
        as_admin = (await client.get(f"{e.analytics}/v1/funnel", headers=admin)).json()
        assert as_analyst == as_admin
        stages = {row["stage"]: row["count"] for row in as_analyst["waterfall"]}
        assert (stages["inquiry"], stages["mql"], stages["sal"]) == (1, 1, 1)
        timeline = await client.get(f"{e.analytics}/v1/leads/{lead}/timeline", headers=ana)
        assert timeline.status_code == 200
        assert timeline.json()["personal_fields"] == "withheld"
        for secret in (EMAIL, "Reyes", "555 0100", "migration"):
            assert secret not in timeline.text, secret
        assert (await client.get(f"{e.sla}/v1/sla/breaches", headers=ana)).status_code == 200
        refused = await client.post(
            f"{e.routing}/v1/leads/{lead}/hold", json={"reason": "x"}, headers=ana
        )
        assert refused.status_code == 403
        assert (await client.get(f"{e.intake}/v1/leads/{lead}", headers=ana)).status_code == 403

        # Granted personal data, an analyst sees who the lead is.
        pia = bearer(await sign_in(client, e.console, "pia@example.com", PASSWORD))
        shown = await client.get(f"{e.analytics}/v1/leads/{lead}/timeline", headers=pia)
        assert shown.json()["personal_fields"] == "shown" and EMAIL in shown.text

        # Without a credential nothing is readable; a wrong password signs nobody in.
        for url in (
            f"{e.analytics}/v1/leads/{lead}/timeline",
            f"{e.analytics}/v1/funnel",
            f"{e.analytics}/v1/stuck",
            f"{e.analytics}/v1/reps",
            f"{e.sla}/v1/sla/breaches",
            f"{e.sla}/v1/sla/compliance",
            f"{e.sla}/v1/leads/{lead}/sla",
        ):
            r = await client.get(url)
            assert r.status_code == 401, url
            assert r.headers["content-type"] == "application/problem+json"
        wrong = await client.post(
            f"{e.console}/v1/auth/token", data={"username": "ava@example.com", "password": "nope"}
        )
        assert wrong.status_code == 401
