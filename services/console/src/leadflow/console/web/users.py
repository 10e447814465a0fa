"""The admin's users page: invite (create with a first password), change roles and rep id,
reset a password, remove. Each change goes through the console's own users API with the
admin's token, so the permission table and the API's validation (roles, a rep needs a rep
id, passwords of 12+ characters) decide, and their words are shown."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from leadflow.console.web import session
from leadflow.console.web.backend import Answer
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, Role, public

users_pages = APIRouter(include_in_schema=False, dependencies=[public()])
ROLES = [r.value for r in Role]


async def console_api(ctx: Ctx, method: str, path: str, body: Any = None) -> Answer:
    """The console's own API, in process, with the person's token."""
    transport = httpx.ASGITransport(app=ctx.request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        r = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {ctx.api.token}"}
        )
    data = r.json() if r.content else None
    if r.is_success:
        return Answer(r.status_code, data)
    detail = str(data.get("detail", "")) if isinstance(data, dict) else ""
    errors = data.get("errors", []) if isinstance(data, dict) else []
    fields = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    return Answer(r.status_code, data, detail or f"answered {r.status_code}", fields)


async def _page(ctx: Ctx, flash: str = "", error: str = "", status: int = 200) -> HTMLResponse:
    if not ctx.who.can(Permission.USERS):
        return ctx.page(
            "message.html", status=403, title="Not for your role", message="admins only"
        )
    answer = await console_api(ctx, "GET", "/v1/users")
    users = (answer.body or {}).get("users", []) if answer.ok else []
    return ctx.page(
        "users.html",
        status=status,
        users=users,
        roles=ROLES,
        flash=flash,
        error=error or ("" if answer.ok else answer.problem),
    )


def _said(answer: Answer) -> str:
    return answer.problem + (" — " + "; ".join(answer.fields) if answer.fields else "")


@users_pages.get("/users", response_class=HTMLResponse)
async def users_page(ctx: CtxDep) -> HTMLResponse:
    return await _page(ctx)


@users_pages.post("/users", response_class=HTMLResponse)
async def invite(ctx: CtxDep) -> HTMLResponse:
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _page(ctx, error="The form expired: try again.", status=400)
    raw = await ctx.request.form()
    body = {
        "email": form.get("email", "").strip(),
        "name": form.get("name", "").strip(),
        "password": form.get("password", ""),
        "roles": [r for r in raw.getlist("roles") if isinstance(r, str)],
        "rep_id": form.get("rep_id", "").strip() or None,
    }
    answer = await console_api(ctx, "POST", "/v1/users", body)
    if not answer.ok:
        return await _page(ctx, error=f"Not created: {_said(answer)}", status=answer.status)
    return await _page(ctx, flash=f"Created {body['email']}.")


@users_pages.post("/users/{user_id}/{change}", response_class=HTMLResponse)
async def change_user(ctx: CtxDep, user_id: uuid.UUID, change: str) -> HTMLResponse:
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _page(ctx, error="The form expired: try again.", status=400)
    path = f"/v1/users/{user_id}"
    if change == "roles":
        raw = await ctx.request.form()
        body = {
            "roles": [r for r in raw.getlist("roles") if isinstance(r, str)],
            "rep_id": form.get("rep_id", "").strip() or None,
        }
        answer = await console_api(ctx, "PATCH", path, body)
        done = "Roles changed."
    elif change == "password":
        answer = await console_api(ctx, "PATCH", path, {"password": form.get("password", "")})
        done = "Password reset."
    elif change == "delete":
        answer = await console_api(ctx, "DELETE", path)
        done = "User removed."
    else:
        return await _page(ctx, error=f"unknown change {change!r}", status=404)
    if not answer.ok:
        return await _page(ctx, error=f"Refused: {_said(answer)}", status=answer.status)
    return await _page(ctx, flash=done)
