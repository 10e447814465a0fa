"""Every service's /docs works offline: the page names no other host, and the Swagger UI
assets it loads are served by the service itself."""

from __future__ import annotations

import re

import httpx
from fastapi import APIRouter, FastAPI

from leadflow.events.docs import install_offline_docs


async def test_docs_page_and_assets_come_from_the_service_itself() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    router = APIRouter()

    @router.get("/v1/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(router)
    install_offline_docs(app, "Test")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        loaded = [u for pair in urls for u in pair if u]
        assert loaded, page.text
        assert all(u.startswith("/") for u in loaded), loaded  # no CDN, no other host
        assert "cdn.jsdelivr" not in page.text and "unpkg" not in page.text
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            r = await client.get(asset)
            assert r.status_code == 200 and len(r.content) > 10_000, asset
        assert (await client.get("/openapi.json")).json()["paths"]["/v1/ping"]
