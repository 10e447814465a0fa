"""Sales managers' pages: the roster (reps, teams, queues), the routing rules editor with a
dry run before publishing, SLA policies and business calendars, the open breaches (each
linking to its lead), and the lead page's Reassign control.

As everywhere in the console, each read and change is the owning service's API with the
person's token: routing's ``routing.config`` and sla-monitor's ``sla.policies`` /
``sla.read`` decide, and a draft's errors are the service's own words.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from leadflow.console.web import session
from leadflow.console.web.marketing import _denied, _json_field, _problem
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, public
from leadflow.events.documents import VERSION_FIELDS

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
    draft = _strip(rules.body, *VERSION_FIELDS) if rules.ok else {}
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
    draft = _strip(policies.body, *VERSION_FIELDS)
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


# -- SLA business calendars ---------------------------------------------------------------

NEW_CALENDAR = {
    "calendar_id": "emea",
    "name": "EMEA office hours",
    "timezone": "Europe/Berlin",
    "hours": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
    "rep_ids": [],
    "team_ids": [],
}


def _hours_text(hours: dict[str, list[dict[str, str]]]) -> str:
    """``mon 09:00-17:00 · tue ...``: the week as a manager reads it (closed days left out)."""
    return " · ".join(
        f"{day} " + ", ".join(f"{p['start']}-{p['end']}" for p in periods)
        for day, periods in hours.items()
        if periods
    )


@manager.get("/sla/calendars", response_class=HTMLResponse)
async def calendars_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.SLA_POLICIES):
        return denied
    return await _calendars(ctx)


async def _calendars(ctx: Ctx, flash: str = "", error: str = "") -> HTMLResponse:
    """Each calendar (its week, holidays, whose clock it is, the policies naming it) with a
    JSON editor; sla-monitor validates every save (zones, periods, holidays)."""
    calendars, policies = await asyncio.gather(
        ctx.api.get("sla", "/v1/sla/calendars"),
        ctx.api.get("sla", "/v1/sla/policies"),
    )
    used: dict[str, list[str]] = {}
    for p in (policies.body or {}).get("policies", []) if policies.ok else []:
        if p.get("calendar_id"):
            used.setdefault(p["calendar_id"], []).append(p["policy_id"])
    items = [
        {
            **c,
            "week": _hours_text(c.get("hours") or {}),
            "policies": used.get(c["calendar_id"], []),
            "json": json.dumps(c, indent=2),
        }
        for c in ((calendars.body or {}).get("calendars", []) if calendars.ok else [])
    ]
    return ctx.page(
        "sla_calendars.html",
        calendars=items,
        new_json=json.dumps(NEW_CALENDAR, indent=2),
        flash=flash,
        error=error or "; ".join(a.problem for a in (calendars, policies) if not a.ok),
    )


@manager.post("/sla/calendars", response_class=HTMLResponse)
async def save_calendar(ctx: CtxDep) -> HTMLResponse:
    """Create or replace one calendar (``PUT /v1/sla/calendars/{id}``, the id from the JSON);
    a refusal is sla-monitor's, naming the field, and the page keeps what was in force."""
    if denied := _denied(ctx, Permission.SLA_POLICIES):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _calendars(ctx, error="The form expired: reload.")
    calendar, error = _json_field(form, "calendar")
    if error:
        return await _calendars(ctx, error=error)
    calendar_id = str(calendar.get("calendar_id") or "") if isinstance(calendar, dict) else ""
    if not calendar_id:
        return await _calendars(ctx, error="Not saved: calendar_id is required")
    answer = await ctx.api.call(
        "sla", "PUT", f"/v1/sla/calendars/{quote(calendar_id, safe='')}", json=calendar
    )
    if not answer.ok:
        return await _calendars(ctx, error=f"Not saved: {_problem(answer)}")
    return await _calendars(ctx, flash=f"Calendar {calendar_id} saved.")
