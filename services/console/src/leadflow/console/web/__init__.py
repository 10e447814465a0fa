"""The console's web UI: server-rendered pages (Jinja2 + htmx) over the services' APIs.

:func:`mount` adds the pages and the packaged static files (htmx, the stylesheet, the
countdown script: nothing is loaded from another host) to the console's app.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from leadflow.console.web.accounts import accounts_pages
from leadflow.console.web.dashboard import dashboard_pages
from leadflow.console.web.imports import imports
from leadflow.console.web.leads import leads
from leadflow.console.web.manager import manager
from leadflow.console.web.marketing import marketing
from leadflow.console.web.ops import ops
from leadflow.console.web.pages import pages
from leadflow.console.web.process import process
from leadflow.console.web.render import STATIC, SignInRequired, sign_in_redirect
from leadflow.console.web.users import users_pages


def mount(app: FastAPI) -> None:
    app.include_router(pages)
    app.include_router(dashboard_pages)
    app.include_router(accounts_pages)
    app.include_router(leads)
    app.include_router(marketing)
    app.include_router(users_pages)
    app.include_router(manager)
    app.include_router(ops)
    app.include_router(imports)
    app.include_router(process)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired):  # type: ignore[no-untyped-def]
        return sign_in_redirect(request, exc)


__all__ = ["mount"]
