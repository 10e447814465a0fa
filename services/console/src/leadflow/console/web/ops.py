"""Marketing ops' and admins' smaller pages: intake API keys (create: the key is shown once;
revoke) and campaign costs (enter a campaign's spend for a period, in its currency; remove).
Each is the owning service's API with the person's token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from leadflow.console.web import session
from leadflow.console.web.marketing import _denied, _problem
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, public

ops = APIRouter(include_in_schema=False, dependencies=[public()])
SCOPES = ("inquiries", "scans", "activities")


# -- API keys -----------------------------------------------------------------------------


async def _keys(ctx: Ctx, issued: dict[str, Any] | None = None, error: str = "") -> HTMLResponse:
    listed = await ctx.api.get("intake", "/v1/admin/api-keys")
    return ctx.page(
        "api_keys.html",
        keys=(listed.body or {}).get("items", []) if listed.ok else [],
        scopes=SCOPES,
        issued=issued,
        error=error or ("" if listed.ok else _problem(listed)),
    )


@ops.get("/api-keys", response_class=HTMLResponse)
async def keys_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.API_KEYS):
        return denied
    return await _keys(ctx)


@ops.post("/api-keys", response_class=HTMLResponse)
async def create_key(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.API_KEYS):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _keys(ctx, error="The form expired: reload.")
    raw = await ctx.request.form()
    body = {
        "name": form.get("name", "").strip(),
        "scopes": [s for s in raw.getlist("scopes") if isinstance(s, str)],
        "device_id": form.get("device_id", "").strip() or None,
    }
    answer = await ctx.api.post("intake", "/v1/admin/api-keys", body)
    if not answer.ok:
        return await _keys(ctx, error=f"Not created: {_problem(answer)}")
    return await _keys(ctx, issued=answer.body)


@ops.post("/api-keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(ctx: CtxDep, key_id: str) -> HTMLResponse:
    if denied := _denied(ctx, Permission.API_KEYS):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _keys(ctx, error="The form expired: reload.")
    answer = await ctx.api.call("intake", "DELETE", f"/v1/admin/api-keys/{key_id}")
    return await _keys(ctx, error="" if answer.ok else f"Not revoked: {_problem(answer)}")


# -- campaign costs -----------------------------------------------------------------------


async def _costs(ctx: Ctx, flash: str = "", error: str = "") -> HTMLResponse:
    listed = await ctx.api.get("analytics", "/v1/campaign-costs")
    return ctx.page(
        "costs.html",
        costs=(listed.body or {}).get("rows", []) if listed.ok else [],
        flash=flash,
        error=error or ("" if listed.ok else _problem(listed)),
    )


@ops.get("/costs", response_class=HTMLResponse)
async def costs_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.CAMPAIGN_COSTS):
        return denied
    return await _costs(ctx)


@ops.post("/costs", response_class=HTMLResponse)
async def add_cost(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.CAMPAIGN_COSTS):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _costs(ctx, error="The form expired: reload.")
    body = {
        k: form.get(k, "").strip()
        for k in ("campaign", "channel", "period_start", "period_end", "amount", "currency")
        if form.get(k, "").strip()
    }
    if "currency" in body:
        body["currency"] = body["currency"].upper()
    answer = await ctx.api.post("analytics", "/v1/campaign-costs", body)
    if not answer.ok:
        return await _costs(ctx, error=f"Not entered: {_problem(answer)}")
    return await _costs(ctx, flash="Cost entered.")
