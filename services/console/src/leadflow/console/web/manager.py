"""Sales managers' pages: the roster (reps, teams, queues), the routing rules editor with a
dry run before publishing, SLA policies, and the open breaches (each linking to its lead).

As everywhere in the console, each read and change is the owning service's API with the
person's token: routing's ``routing.config`` and sla-monitor's ``sla.policies`` /
``sla.read`` decide, and a draft's errors are the service's own words.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from leadflow.console.web import session
from leadflow.console.web.marketing import _denied, _json_field, _problem
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, public

manager = APIRouter(include_in_schema=False, dependencies=[public()])

SAMPLE_LEAD = {
    "lead": {"company": "Northwind Bank", "country": "US", "industry": "Banking"},
    "grade": "A",
}


def _strip(doc: Any, *keys: str) -> Any:
    if isinstance(doc, dict):
        return {k: v for k, v in doc.items() if k not in keys}
    return doc


# -- routing ------------------------------------------------------------------------------


@manager.get("/routing", response_class=HTMLResponse)
async def routing_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.ROUTING_CONFIG):
        return denied
    rules, reps, teams, queues = await asyncio.gather(
        ctx.api.get("routing", "/v1/routing/rules"),
        ctx.api.get("routing", "/v1/routing/reps"),
        ctx.api.get("routing", "/v1/routing/teams"),
        ctx.api.get("routing", "/v1/routing/queues"),
    )
    draft = _strip(rules.body, "version", "published_at", "published_by") if rules.ok else {}
    return ctx.page(
        "routing.html",
        rules_json=json.dumps(draft or {"rules": []}, indent=2),
        lead_json=json.dumps(SAMPLE_LEAD, indent=2),
        version=(rules.body or {}).get("version") if rules.ok else None,
        reps=[{**r, "json": json.dumps(r, indent=2)} for r in (reps.body if reps.ok else [])],
        teams=teams.body if teams.ok else [],
        queues=queues.body if queues.ok else [],
        error="; ".join(a.problem for a in (rules, reps, teams, queues) if not a.ok),
    )


@manager.post("/routing/reps/{rep_id}", response_class=HTMLResponse)
async def save_rep(ctx: CtxDep, rep_id: str) -> HTMLResponse:
    """A rep's document (availability: active, working hours, out of office; capacity;
    territories), replaced through routing's validation."""
    if denied := _denied(ctx, Permission.ROUTING_CONFIG):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return ctx.page("_result.html", error="The form expired: reload.")
    rep, error = _json_field(form, "rep")
    if error:
        return ctx.page("_result.html", error=error)
    answer = await ctx.api.call("routing", "PUT", f"/v1/routing/reps/{rep_id}", json=rep)
    return ctx.page(
        "_result.html",
        title=f"Rep {rep_id} saved",
        result=answer.body if answer.ok else None,
        error=_problem(answer),
    )


@manager.post("/leads/{lead_id}/reassign", response_class=HTMLResponse)
async def reassign_lead(ctx: CtxDep, lead_id: uuid.UUID) -> HTMLResponse:
    """The lead page's Reassign control: routing's ``POST /v1/leads/{id}/reassign`` with
    the manager's token; a refusal (rep unavailable, lead no longer open) is routing's."""
    if denied := _denied(ctx, Permission.ROUTING_CONFIG):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return ctx.page("_result.html", error="The form expired: reload.")
    body = {"rep_id": str(form.get("rep_id") or ""), "reason": str(form.get("reason") or "")}
    answer = await ctx.api.post("routing", f"/v1/leads/{lead_id}/reassign", body)
    return ctx.page(
        "_result.html",
        title=f"Reassigned to {body['rep_id']}",
        result=answer.body if answer.ok else None,
        error=_problem(answer),
    )


@manager.post("/routing/{step}", response_class=HTMLResponse)
async def routing_step(ctx: CtxDep, step: str) -> HTMLResponse:
    if denied := _denied(ctx, Permission.ROUTING_CONFIG):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return ctx.page("_result.html", error="The form expired: reload.")
    rules, error = _json_field(form, "rules")
    if error:
        return ctx.page("_result.html", error=error)
    if step == "simulate":
        sample, error = _json_field(form, "sample")
        if error:
            return ctx.page("_result.html", error=error)
        body = {**(sample if isinstance(sample, dict) else {}), "rules": rules}
        answer = await ctx.api.post("routing", "/v1/routing/simulate", body)
        return ctx.page(
            "_result.html",
            title="Dry run (assigns nothing)",
            result=answer.body if answer.ok else None,
            error=_problem(answer),
        )
    if step == "publish":
        answer = await ctx.api.post("routing", "/v1/routing/rules", rules)
        return ctx.page(
            "_result.html",
            title="Published",
            result=answer.body if answer.ok else None,
            error=_problem(answer),
        )
    return ctx.page("_result.html", error=f"unknown step {step!r}")


# -- SLA ----------------------------------------------------------------------------------


@manager.get("/sla", response_class=HTMLResponse)
async def sla_page(ctx: CtxDep) -> HTMLResponse:
    if not (ctx.who.can(Permission.SLA_POLICIES) or ctx.who.can(Permission.SLA_READ)):
        return ctx.page("message.html", status=403, title="Not for your role", message="SLA")
    return await _sla(ctx)


async def _sla(ctx: Ctx, flash: str = "", error: str = "") -> HTMLResponse:
    policies, breaches = await asyncio.gather(
        ctx.api.get("sla", "/v1/sla/policies"),
        ctx.api.get("sla", "/v1/sla/breaches", limit=100),
    )
    draft = _strip(policies.body, "version", "published_at", "published_by")
    return ctx.page(
        "sla.html",
        policies_json=json.dumps(draft, indent=2) if policies.ok else "",
        may_edit=ctx.who.can(Permission.SLA_POLICIES),
        breaches=(breaches.body or {}).get("items", []) if breaches.ok else [],
        flash=flash,
        error=error or "; ".join(a.problem for a in (policies, breaches) if not a.ok),
    )


@manager.post("/sla/policies", response_class=HTMLResponse)
async def publish_policies(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.SLA_POLICIES):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _sla(ctx, error="The form expired: reload.")
    policies, error = _json_field(form, "policies")
    if error:
        return await _sla(ctx, error=error)
    answer = await ctx.api.post("sla", "/v1/sla/policies", policies)
    if not answer.ok:
        return await _sla(ctx, error=f"Not published: {_problem(answer)}")
    version = (answer.body or {}).get("version")
    return await _sla(ctx, flash=f"Published SLA policies version {version}.")
