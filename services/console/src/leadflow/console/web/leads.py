"""The lead page: everything the services know about one lead, each part read from the
service that owns it with the person's token, so a part the role may not see says so and
the rest still shows (a rep sees their own lead's assignment; a manager sees everything).

``/leads?q=`` finds a lead by e-mail (intake's lookup) and opens its page.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadflow.console.web.backend import Answer
from leadflow.console.web.render import CtxDep
from leadflow.events.access import public

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
    return ctx.page("lead.html", lead_id=str(lead_id), parts=parts, contact=contact or {})


@leads.get("/leads", response_class=HTMLResponse)
async def find(ctx: CtxDep, q: str = Query(default="", max_length=320)) -> Response:
    q = q.strip()
    found: list[dict[str, Any]] = []
    note = ""
    if q:
        answer = await ctx.api.get("intake", "/v1/leads", email=q)
        if answer.ok:
            found = (answer.body or {}).get("items", [])
            if len(found) == 1:
                return RedirectResponse(f"/leads/{found[0]['lead_id']}", status_code=303)
            note = "" if found else f"No lead with e-mail {q}."
        else:
            note = _part(answer)["note"] or answer.problem
    return ctx.page("leads.html", q=q, found=found, note=note)
