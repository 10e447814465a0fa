"""Every service's ``/docs`` served offline: Swagger UI's assets come from the
``swagger-ui-bundle-v2`` package installed with the kernel, never from a CDN, so the page
works on a laptop without internet and behind a strict egress policy.

FastAPI's default ``/docs`` and ``/redoc`` load their scripts and styles from jsDelivr; the
kit turns them off and mounts these instead (ReDoc is not shipped: Swagger UI covers it).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def install_offline_docs(app: FastAPI, title: str) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title} · API",
            swagger_js_url=root + ASSETS + "/swagger-ui-bundle.js",
            swagger_css_url=root + ASSETS + "/swagger-ui.css",
            swagger_favicon_url=root + ASSETS + "/favicon-32x32.png",
        )

    # A plain route (not an API route): like FastAPI's own /docs, outside the OpenAPI
    # document and the permission table (the page holds no data; /openapi.json is public).
    app.add_route("/docs", docs, include_in_schema=False)
