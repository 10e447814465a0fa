"""The lead page: everything the services know about one lead, each part read from the
service that owns it with the person's token, so a part the role may not see says so and
the rest still shows (a rep sees their own lead's assignment; a manager sees everything).

``/leads?q=`` searches leads by e-mail, name or company with filters and paging (analytics'
``GET /v1/leads/search``, where every service's events meet).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from leadflow.console.web.backend import Answer
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, public
from leadflow.events.lifecycle import STAGE_ORDER

leads = APIRouter(include_in_schema=False, dependencies=[public()])


def _part(answer: Answer) -> dict[str, Any]:
    """A section of the page: its data, or why it is not shown."""
    if answer.ok:
        return {"data": answer.body, "note": ""}
    if answer.status in (401, 403):
        return {"data": None, "note": "not available to your role"}
    if answer.status == 404:
        return {"data": None, "note": "nothing recorded yet"}
    return {"data": None, "note": answer.problem}


@leads.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead_page(ctx: CtxDep, lead_id: uuid.UUID) -> HTMLResponse:
    path = f"/v1/leads/{lead_id}"
    profile, score, assignment, slas, timeline = await asyncio.gather(
        ctx.api.get("intake", path),
        ctx.api.get("scoring", path + "/score"),
        ctx.api.get("routing", path + "/assignment"),
        ctx.api.get("sla", path + "/sla"),
        ctx.api.get("analytics", path + "/timeline"),
    )
    parts = {
        "profile": _part(profile),
        "score": _part(score),
        "assignment": _part(assignment),
        "sla": _part(slas),
        "timeline": _part(timeline),
    }
    contact = (profile.body or {}).get("contact") if profile.ok else None
    if not contact and assignment.ok:
        contact = (assignment.body or {}).get("contact")
    return ctx.page(
        "lead.html",
        lead_id=str(lead_id),
        parts=parts,
        contact=contact or {},
        reassign_to=await _reassign_choices(ctx, assignment),
    )


# Routing's open stages: a lead there has an owner a manager may change.
_OPEN_STAGES = ("mql", "sal", "sql", "opportunity", "on_hold")


async def _reassign_choices(ctx: Ctx, assignment: Answer) -> list[dict[str, Any]]:
    """The reps a sales manager may hand this open lead to (the Reassign control), or none
    when the role may not reassign or the lead is not open with sales. Routing still decides:
    a rep paused, away or at a cap is refused there, in its own words."""
    if not (assignment.ok and ctx.who.can(Permission.ROUTING_CONFIG)):
        return []
    body = assignment.body or {}
    if body.get("stage") not in _OPEN_STAGES:
        return []
    reps = await ctx.api.get("routing", "/v1/routing/reps")
    owner = body.get("rep_id")
    return [
        r for r in (reps.body if reps.ok else []) if r.get("id") != owner and r.get("active", True)
    ]


PAGE_SIZE = 25
# The search's stage filter: the kernel's stages (customer and churned included, issue 30).
STAGES = tuple(s.value for s in STAGE_ORDER)


# A dashboard figure's drill-down: analytics' filters, passed through as they are.
_REACHED = {"inquiry": "were inquiries", "mql": "became MQLs", "sal": "were accepted (SAL)",
            "sql": "became SQLs", "opportunity": "became opportunities", "won": "were won",
            "lost": "were lost", "disqualified": "were disqualified"}  # fmt: skip


def drill_caption(drill: dict[str, str], channel: str) -> str:
    """What a drill-down list counts, in words (the figure it was opened from)."""
    if not drill:
        return ""
    if drill.get("stuck"):
        what = "Open leads past their stage's expected time"
    elif drill.get("handoff") or drill.get("sla"):
        kind = (drill.get("handoff") or drill.get("sla", "")).replace("_", " ")
        whose = "".join(f" {k.replace('by_', '')} {drill[k]}" for k in
                        ("by_rep", "by_team", "by_queue", "policy") if drill.get(k))  # fmt: skip
        what = f"Leads behind the {'SLA' if drill.get('sla') else 'hand-off'} count “{kind}”"
        what += f" ({whose.strip()})" if whose else ""
    elif drill.get("won_in"):
        what = f"Leads that won a deal in {drill['won_in']}"
    elif drill.get("pipeline_in"):
        what = f"Leads with an open opportunity in {drill['pipeline_in']}"
    else:
        what = "Leads that " + _REACHED.get(drill.get("reached", "inquiry"), "were inquiries")
    when = ""
    if drill.get("from") or drill.get("to"):
        day = "day" if drill.get("handoff") or drill.get("sla") else "inquiry"
        when = f", {day} {drill.get('from') or '…'} to {drill.get('to') or '…'}"
    seg = "".join(f", {k} {v}" for k, v in (("channel", channel),
                                          ("campaign", drill.get("campaign", ""))) if v)  # fmt: skip
    return what + when + seg


@leads.get("/leads", response_class=HTMLResponse)
async def find(
    ctx: CtxDep,
    q: Annotated[str, Query(max_length=200)] = "",
    stage: Annotated[str, Query(max_length=32)] = "",
    grade: Annotated[str, Query(max_length=8)] = "",
    channel: Annotated[str, Query(max_length=200)] = "",
    owner: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    reached: Annotated[str, Query(max_length=32)] = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    campaign: Annotated[str, Query(max_length=200)] = "",
    won_in: Annotated[str, Query(max_length=3)] = "",
    pipeline_in: Annotated[str, Query(max_length=3)] = "",
    stuck: Annotated[str, Query(max_length=5)] = "",
    handoff: Annotated[str, Query(max_length=32)] = "",
    sla: Annotated[str, Query(max_length=32)] = "",
    by_rep: Annotated[str, Query(max_length=64)] = "",
    by_team: Annotated[str, Query(max_length=64)] = "",
    by_queue: Annotated[str, Query(max_length=64)] = "",
    policy: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Analytics' lead search: text over e-mail, name and company, the filters, a page; with
    a figure's cohort filters (``reached``, ``from``/``to``, ...) the leads behind it."""
    filters = {"q": q, "stage": stage, "grade": grade, "channel": channel, "rep_id": owner}
    drill = {"reached": reached, "from": from_, "to": to, "campaign": campaign,
             "won_in": won_in, "pipeline_in": pipeline_in, "stuck": stuck, "handoff": handoff,
             "sla": sla, "by_rep": by_rep, "by_team": by_team, "by_queue": by_queue,
             "policy": policy}  # fmt: skip
    drill = {k: v.strip() for k, v in drill.items() if v.strip()}
    params = {k: v.strip() for k, v in filters.items() if v.strip()} | drill
    answer = await ctx.api.get(
        "analytics", "/v1/leads/search", **params, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    body = answer.body if answer.ok and isinstance(answer.body, dict) else {}
    total = int(body.get("total") or 0)
    query = urlencode({**{k: v for k, v in filters.items() if v and k != "rep_id"},
                       **({"owner": owner} if owner else {}), **drill})  # fmt: skip
    return ctx.page(
        "leads.html",
        q=q,
        stage=stage,
        grade=grade,
        channel=channel,
        owner=owner,
        stages=STAGES,
        drill=drill,
        caption=drill_caption(drill, channel),
        money=body.get("money") or [],
        facts=body.get("facts"),
        items=body.get("items", []),
        total=total,
        page=page,
        page_count=max(1, -(-total // PAGE_SIZE)),
        query=query,
        note="" if answer.ok else _part(answer)["note"],
    )
