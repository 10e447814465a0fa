"""The console's pages: sign-in, the rep's queue, the leadership dashboard, users, API docs.

Every page is server-rendered (Jinja2) and every change is an ordinary form POST that htmx
upgrades to a partial swap, so each works by keyboard and without script too. The pages
hold no lead data: they call the services with the person's token (:mod:`.backend`), and a
service's refusal is shown as its problem text, never turned into a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadflow.console.web import menu, session
from leadflow.console.web.backend import Answer
from leadflow.console.web.render import Ctx, CtxDep, render, settings_of
from leadflow.events import kit_of
from leadflow.events.access import principal_from_claims, public, verifier_of

pages = APIRouter(include_in_schema=False, dependencies=[public()])


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _forbidden(ctx: Ctx, what: str) -> HTMLResponse:
    return ctx.page("message.html", status=403, title="Not for your role", message=what)


# -- sign-in ------------------------------------------------------------------------------


@pages.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error="")


@pages.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    kit = kit_of(request)
    form = await _form(request)
    target = _safe_next(form.get("next"))
    if not session.csrf_ok(request, form):
        return render(
            request, "login.html", status=400, next=target, error="The form expired: try again."
        )
    # The console's own token endpoint, in process: the same throttling and checks as the API.
    transport = httpx.ASGITransport(app=request.app, client=(_client_host(request), 0))
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        r = await client.post(
            "/v1/auth/token",
            data={
                "username": form.get("username", ""),
                "password": form.get("password", ""),
                "grant_type": "password",
            },
        )
    if r.status_code != 200:
        error = {
            401: "Wrong e-mail or password.",
            429: "Too many failed sign-ins: wait a few minutes.",
            422: "Enter your e-mail and password.",
        }.get(r.status_code, "Sign-in failed.")
        return render(request, "login.html", status=r.status_code, next=target, error=error)
    token = r.json()
    claims = await verifier_of(kit).verify(token["access_token"])
    who = principal_from_claims(claims, kit.settings.auth_roles_claim, kit.settings.auth_rep_claim)
    landing = target if target != "/" else menu.home_of(who)
    response = RedirectResponse(landing, status_code=303)
    session.set_session(request, response, token["access_token"], int(token["expires_in"]))
    return response


def _client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@pages.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    if not session.csrf_ok(request, form):
        return render(request, "login.html", status=400, next="/", error="The form expired.")
    response = RedirectResponse("/login", status_code=303)
    session.clear_session(response)
    return response


@pages.get("/")
async def home(ctx: CtxDep) -> Response:
    return RedirectResponse(menu.home_of(ctx.who), status_code=303)


# -- the rep's queue ----------------------------------------------------------------------


async def _queue_view(ctx: Ctx) -> dict[str, Any]:
    rep_id = ctx.who.rep_id or ""
    queue, codes, team = await asyncio.gather(
        ctx.api.get("routing", f"/v1/reps/{rep_id}/queue"),
        ctx.api.get("routing", "/v1/routing/reason-codes"),
        ctx.api.get("routing", f"/v1/reps/{rep_id}/team-queue"),
    )
    now = ctx.kit.clock.now()
    rows = []
    for item in (queue.body or {}).get("leads", []) if queue.ok else []:
        contact = item.get("contact") or {}
        lead = item.get("lead") or {}
        sla = item.get("sla")
        due = None
        if sla and sla.get("due_at"):
            due_at = datetime.fromisoformat(sla["due_at"])
            text, breached = menu.countdown(due_at, now)
            due = {"iso": sla["due_at"], "text": text, "breached": breached}
        rows.append(
            {
                "lead_id": item["lead_id"],
                "stage": item.get("stage"),
                "name": " ".join(
                    p for p in (contact.get("first_name"), contact.get("last_name")) if p
                )
                or contact.get("name")
                or "(no name)",
                "company": contact.get("company") or lead.get("company") or "",
                "title": contact.get("title") or lead.get("title") or "",
                "phone": contact.get("phone") or "",
                "email": contact.get("email") or "",
                "grade": lead.get("matrix_cell") or lead.get("grade") or "",
                "why": _why(lead),
                "due": due,
                "actions": menu.actions_for(item.get("stage")),
            }
        )
    waiting = [
        {
            "lead_id": item["lead_id"],
            "queue_id": item.get("queue_id"),
            "name": (item.get("contact") or {}).get("name") or "(no name)",
            "company": (item.get("contact") or {}).get("company")
            or (item.get("lead") or {}).get("company")
            or "",
            "grade": (item.get("lead") or {}).get("matrix_cell")
            or (item.get("lead") or {}).get("grade")
            or "",
        }
        for item in ((team.body or {}).get("leads", []) if team.ok else [])
    ]
    return {
        "rows": rows,
        "waiting": waiting,
        "queue_error": "" if queue.ok else queue.problem,
        "reason_codes": codes.body if codes.ok and isinstance(codes.body, dict) else {},
    }


def _why(lead: dict[str, Any]) -> str:
    """The routing facts that put the lead in this rep's hands (the full score explanation
    is the lead page's)."""
    parts = [
        f"{k.replace('_', ' ')} {lead[k]}"
        for k in ("seniority", "industry", "company_size", "country", "product_interest")
        if lead.get(k) not in (None, "")
    ]
    return ", ".join(parts)


@pages.get("/queue", response_class=HTMLResponse)
async def queue_page(ctx: CtxDep) -> HTMLResponse:
    if not menu.may_open(ctx.who, "/queue"):
        return _forbidden(ctx, "The queue is a rep's own: your account has no rep id.")
    return ctx.page(
        "queue.html",
        **await _queue_view(ctx),
        labels=menu.ACTION_LABELS,
        reason_actions=menu.REASON_ACTIONS,
        flash="",
        error="",
    )


@pages.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(ctx: CtxDep) -> HTMLResponse:
    if not menu.may_open(ctx.who, "/queue"):
        return _forbidden(ctx, "The queue is a rep's own.")
    return ctx.page(
        "_queue_rows.html",
        **await _queue_view(ctx),
        labels=menu.ACTION_LABELS,
        reason_actions=menu.REASON_ACTIONS,
        flash="",
        error="",
    )


@pages.post("/queue/{lead_id}/{action}", response_class=HTMLResponse)
async def queue_action(
    ctx: CtxDep,
    lead_id: uuid.UUID,
    action: Annotated[str, Path(pattern="^[a-z]{1,16}$")],
) -> Response:
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return ctx.page("message.html", status=400, title="Expired", message="Reload the page.")
    if action not in menu.ACTION_LABELS:
        return ctx.page("message.html", status=404, title="Unknown action", message=action)
    if action == "claim":  # taking a queued lead is accepting it as oneself
        body: dict[str, object] = {"rep_id": ctx.who.rep_id}
        answer = await ctx.api.post("routing", f"/v1/leads/{lead_id}/accept", body)
    else:
        answer = await ctx.api.post(
            "routing", f"/v1/leads/{lead_id}/{action}", menu.action_body(action, form)
        )
    flash, error = _outcome(action, answer)
    if not ctx.request.headers.get("hx-request"):
        return RedirectResponse("/queue", status_code=303)
    return ctx.page(
        "_queue_rows.html",
        **await _queue_view(ctx),
        labels=menu.ACTION_LABELS,
        reason_actions=menu.REASON_ACTIONS,
        flash=flash,
        error=error,
    )


def _outcome(action: str, answer: Answer) -> tuple[str, str]:
    label = menu.ACTION_LABELS[action]
    if answer.ok:
        stage = (answer.body or {}).get("stage")
        return f"{label}: done" + (f" (now {stage})" if stage else "") + ".", ""
    detail = answer.problem + (" — " + "; ".join(answer.fields) if answer.fields else "")
    return "", f"{label} refused: {detail}"


# -- API docs -----------------------------------------------------------------------------


@pages.get("/api-docs", response_class=HTMLResponse)
async def api_docs(ctx: CtxDep) -> HTMLResponse:
    s = settings_of(ctx.kit)
    services = [
        ("console", ""),
        ("intake", s.console_intake_url),
        ("scoring", s.console_scoring_url),
        ("routing", s.console_routing_url),
        ("sla-monitor", s.console_sla_url),
        ("analytics", s.console_analytics_url),
    ]
    return ctx.page(
        "api_docs.html", services=[(n, (u.rstrip("/") if u else "") + "/docs") for n, u in services]
    )
