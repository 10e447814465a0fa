"""A rep's working hours (one type with sla-monitor's calendars: timezone, hours per weekday,
holidays) decide whether routing gives them a lead, through the running platform with the
built-in configuration (model, rules, SLA policies).

Sales ops makes Ana the owner of Initech's account, but Ana is on holiday (this week's days
around today are holidays in her hours). Initech's VP raises a hand and qualifies (built-in
model): routing skips Ana, saying why, and the lead waits in the built-in default queue.
Bo's hours arrive in the older list-of-windows shape and come back as working hours. Sales
ops hands the account to Bo, who works around the clock: the next Initech MQL is Bo's, by
account ownership.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadflow.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(240)]

DOMAIN = "initech-hours.com"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY = {d: [{"start": "00:00", "end": "24:00"}] for d in DAYS}


def inquiry(email: str) -> dict[str, Any]:
    return {
        "contact": {"email": email, "first_name": "Peter", "company": "Initech",
                    "country": "US", "title": "VP Marketing", "department": "Marketing",
                    "industry": "Banking"},
        "answers": {"budget": "$80k approved", "authority": "Yes, I sign off",
                    "timeframe": "This quarter", "company_size": "1200",
                    "compelling_event": "Contract with the incumbent ends in March"},
        "source": {"channel": "api", "campaign": "abm-initech"},
    }  # fmt: skip


async def test_a_rep_on_holiday_is_skipped_and_hours_in_either_shape_work(e2e_stack: Any) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    key = {"X-Api-Key": e.api_key}
    today = datetime.now(UTC).date()
    holidays = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    async with httpx.AsyncClient(timeout=30, headers=admin) as client:

        async def ok(method: str, url: str, **kw: Any) -> Any:
            r = await client.request(method, url, **kw)
            assert r.status_code < 300, (method, url, r.status_code, r.text)
            return r.json() if r.content else None

        async def until(check: Any, what: str, timeout: float = 60) -> None:
            try:
                await wait_until(check, timeout=timeout, message=what)
            except Exception:
                pytest.fail(f"{what}\n{stack.log_tail()}")

        await ok("PUT", f"{e.intake}/v1/admin/accounts/{DOMAIN}",
                 json={"account_id": "initech-h", "name": "Initech"})  # fmt: skip
        await ok("PUT", f"{e.routing}/v1/routing/queues/unassigned", json={"name": "Unassigned"})
        ana = await ok(
            "PUT",
            f"{e.routing}/v1/routing/reps/ana",
            json={"name": "Ana Ruiz", "working_hours": {"hours": ALL_DAY, "holidays": holidays}},
        )
        assert ana["working_hours"]["timezone"] == "UTC"  # the rep's zone when none is given
        assert ana["working_hours"]["holidays"] == holidays
        bo = await ok(
            "PUT",
            f"{e.routing}/v1/routing/reps/bo",
            json={
                "name": "Bo Chen",
                "timezone": "Europe/Berlin",
                "working_hours": [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:30"}],
            },
        )
        assert bo["working_hours"] == {
            "timezone": "Europe/Berlin",
            "hours": {d: [{"start": "09:00", "end": "17:30"}] for d in DAYS[:5]},
            "holidays": [],
        }
        await ok("PUT", f"{e.routing}/v1/routing/accounts/{DOMAIN}", json={"rep_id": "ana"})

        async def routed(email: str, idem: str) -> dict[str, Any]:
            body = await ok("POST", f"{e.intake}/v1/inquiries",
                            headers={**key, "Idempotency-Key": idem}, json=inquiry(email))  # fmt: skip
            lead = body["lead_id"]
            view: dict[str, Any] = {}

            async def assigned() -> bool:
                nonlocal view
                r = await client.get(f"{e.routing}/v1/leads/{lead}/assignment")
                view = r.json() if r.status_code == 200 else {}
                return view.get("stage") == "mql"

            await until(assigned, f"the MQL of {email} routed")
            return view

        first = await routed(f"vp@{DOMAIN}", "hours-1")
        assert (first["queue_id"], first["rep_id"]) == ("unassigned", None)
        explanation = first["decisions"][-1]["explanation"]
        assert explanation["method"] == "fallback"
        [skipped] = explanation["reps_skipped"]
        assert skipped["rep_id"] == "ana"
        assert skipped["reason"].startswith("account owner outside working hours (")
        assert skipped["reason"].endswith(" UTC)")

        await ok("PUT", f"{e.routing}/v1/routing/reps/bo",
                 json={"name": "Bo Chen", "working_hours": {"hours": ALL_DAY}})  # fmt: skip
        await ok("PUT", f"{e.routing}/v1/routing/accounts/{DOMAIN}", json={"rep_id": "bo"})
        second = await routed(f"cfo@{DOMAIN}", "hours-2")
        assert (second["rep_id"], second["queue_id"]) == ("bo", None)
        assert second["decisions"][-1]["explanation"]["method"] == "account_owner"
