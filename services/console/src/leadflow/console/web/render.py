"""Templates and the request context every page shares (who is signed in, their menu, the
CSRF value), and the guard that sends a browser without a session to the sign-in page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from leadflow.console.settings import ConsoleSettings
from leadflow.console.web import menu, session
from leadflow.console.web.backend import Services
from leadflow.events import ServiceKit, kit_of
from leadflow.events.access import Principal

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """Raised by :func:`signed_in`; the app answers with a redirect to the sign-in page
    (or, for an htmx request, an ``HX-Redirect`` so the whole page goes there)."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = "/login?next=" + quote(exc.next_path, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@dataclass
class Ctx:
    """One page request of a signed-in person."""

    request: Request
    kit: ServiceKit
    who: Principal
    api: Services

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, name, status=status, who=self.who, **values)


def render(
    request: Request, name: str, *, status: int = 200, who: Principal | None = None, **values: Any
) -> HTMLResponse:
    html = templates.get_template(name).render(
        request=request,
        who=who,
        pages=menu.pages_for(who) if who else [],
        role_label=menu.role_label(who) if who else "",
        path=request.url.path,
        csrf=session.csrf_token(request),
        csrf_field=session.CSRF_FIELD,
        **values,
    )
    response = HTMLResponse(html, status_code=status)
    session.keep_csrf(request, response)
    return response


def settings_of(kit: ServiceKit) -> ConsoleSettings:
    assert isinstance(kit.settings, ConsoleSettings)
    return kit.settings


async def signed_in(request: Request) -> AsyncIterator[Ctx]:
    kit = kit_of(request)
    who = await session.principal_of(kit, request)
    if who is None:
        raise SignInRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    async with httpx.AsyncClient(timeout=15) as client:
        yield Ctx(request, kit, who, Services(settings_of(kit), session.token_of(request), client))


CtxDep = Annotated[Ctx, Depends(signed_in)]
