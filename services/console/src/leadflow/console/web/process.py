"""The process as everyone agreed it, with its live figures (issue 29 item 2): ``/process``
draws analytics' process map (each stage a box: owner, expected duration, count, conversion,
median against expected, leakage; each allowed move an arrow with its count) for a period;
``/audit`` shows analytics' audit (speed to lead, leakage, defect rate, recycled return,
gaps, maturity with its evidence) and ``/audit.html`` relays analytics' printable export.

Analytics computes everything (``reports`` permission); the console only lays it out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from leadflow.console.web.marketing import _denied, _problem
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events import process_diagram as diagram
from leadflow.events.access import Permission, public

process = APIRouter(include_in_schema=False, dependencies=[public()])


def _period(ctx: Ctx) -> dict[str, str]:
    q = ctx.request.query_params
    return {k: q[k].strip() for k in ("from", "to") if q.get(k, "").strip()}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@process.get("/process", response_class=HTMLResponse)
async def process_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.REPORTS):
        return denied
    period = _period(ctx)
    answer = await ctx.api.get("analytics", "/v1/process/map", **period)
    body: dict[str, Any] = answer.body if answer.ok and isinstance(answer.body, dict) else {}
    drawn = diagram.drawing(body.get("stages") or [], body.get("arrows") or [])
    return ctx.page(
        "process.html",
        m=body,
        period=period,
        **drawn,
        duration=duration,
        pct=pct,
        error=_problem(answer),
    )


@process.get("/audit", response_class=HTMLResponse)
async def audit_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.REPORTS):
        return denied
    period = _period(ctx)
    answer = await ctx.api.get("analytics", "/v1/audit", **period)
    return ctx.page(
        "audit.html",
        a=answer.body if answer.ok and isinstance(answer.body, dict) else None,
        period=period,
        query="&".join(f"{k}={v}" for k, v in period.items()),
        duration=duration,
        pct=pct,
        error=_problem(answer),
    )


@process.get("/audit.html", response_class=HTMLResponse)
async def audit_export(ctx: CtxDep) -> HTMLResponse:
    """Analytics' printable audit, fetched with the person's token (a plain link to
    analytics would carry no credentials)."""
    if denied := _denied(ctx, Permission.REPORTS):
        return denied
    status, html = await ctx.api.get_text("analytics", "/v1/audit.html", **_period(ctx))
    if status != 200:
        return ctx.page("message.html", status=502, title="Audit export", message=html[:500])
    return HTMLResponse(html)
