"""HTTP: an account's page (buying group) and the account waterfall (issue 30)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from leadflow.analytics import account_store, accounts, cycles
from leadflow.analytics.api import Format, respond
from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.errors import Problem

router = APIRouter()

AccountKey = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(
    "/v1/accounts",
    tags=["reports"],
    summary="Account waterfall, new-business against expansion revenue, and the funnel "
    "per buying cycle",
    dependencies=[requires(Permission.ACCOUNTS_READ)],
)
async def get_accounts(request: Request, kit: KitDep, fmt: Format = None) -> Response:
    async with kit.snapshot() as tx:
        reached, deals = await account_store.account_reach(tx)
        runs = await account_store.all_cycle_runs(tx)
    waterfall = accounts.account_waterfall(reached)
    report = {
        "waterfall": waterfall,
        "revenue": accounts.revenue_split(deals),
        # new business and expansion (a customer's new buying cycle) measured apart
        "cycles": cycles.cycle_funnel(runs),
        "rows": waterfall,
    }
    return respond(request, fmt, report, "accounts")


@router.get(
    "/v1/accounts/{key}",
    tags=["reports"],
    summary="An account (id or company domain): its buying group, opportunities, owner",
    dependencies=[requires(Permission.ACCOUNTS_READ)],
)
async def get_account(
    request: Request, kit: KitDep, key: AccountKey, fmt: Format = None
) -> Response:
    async with kit.snapshot() as tx:
        people = await account_store.account_people(tx, key)
    if not people:
        raise Problem(
            404,
            "Unknown account",
            f"no leads belong to account {key!r}",
            errors=[{"field": "key", "message": "no lead has this account id or domain"}],
        )
    report = accounts.account_view(key, people)
    report["rows"] = report["people"]
    return respond(request, fmt, report, f"account-{key}")
