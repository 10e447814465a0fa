"""The account page ``/accounts/{key}`` (issue 30 item 3): a company as one buyer.

Each part is read from the service that owns it, with the person's token: the buying group
(people with roles, stages, engagement), open opportunities, owner and customer status from
analytics' ``GET /v1/accounts/{key}``; the account score and grade from scoring's ``GET
/v1/accounts/{key}/score``; the account waterfall (all accounts, this one's furthest stage
marked) from analytics' ``GET /v1/accounts``. The page renders what the APIs return: a part
the role may not read, or not recorded yet, says so and the rest still shows.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from leadflow.console.web.leads import _part
from leadflow.console.web.render import CtxDep
from leadflow.events.access import public

accounts_pages = APIRouter(include_in_schema=False, dependencies=[public()])
# How far the account got, from its people's stages (the account waterfall's stages).
_REACHED = {"won": "won", "customer": "won", "opportunity": "opportunity", "sql": "qualified",
            "sal": "qualified", "mql": "qualified"}  # fmt: skip
_ORDER = ("engaged", "qualified", "opportunity", "won")


def furthest_stage(people: list[dict[str, Any]], qualified: bool) -> str:
    """The furthest account-waterfall stage one of the account's people reached."""
    best = 0
    for p in people:
        stage = _REACHED.get(str(p.get("stage") or ""))
        if stage:
            best = max(best, _ORDER.index(stage))
    if qualified:
        best = max(best, _ORDER.index("qualified"))
    return _ORDER[best]


@accounts_pages.get("/accounts/{key}", response_class=HTMLResponse)
async def account_page(
    ctx: CtxDep, key: Annotated[str, Path(min_length=1, max_length=255)]
) -> HTMLResponse:
    account, score, waterfall = await asyncio.gather(
        ctx.api.get("analytics", f"/v1/accounts/{key}"),
        ctx.api.get("scoring", f"/v1/accounts/{key}/score"),
        ctx.api.get("analytics", "/v1/accounts"),
    )
    a = account.body if account.ok and isinstance(account.body, dict) else {}
    people = list(a.get("people") or [])
    s = score.body if score.ok and isinstance(score.body, dict) else {}
    engagement = {str(p.get("lead_id")): p for p in s.get("people") or []}
    return ctx.page(
        "account.html",
        status=404 if account.status == 404 and score.status == 404 else 200,
        key=key,
        account=_part(account),
        score=_part(score),
        waterfall=_part(waterfall),
        a=a,
        s=s,
        people=people,
        scored=engagement,
        reached=furthest_stage(people, bool(a.get("marketing_qualified_at"))) if a else "",
    )
