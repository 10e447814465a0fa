"""The five services, as the console's pages call them: server-side, with the signed-in
person's own token, so every permission is the owning service's decision.

A page never turns a service's refusal into a crash: :class:`Answer` carries the status and
the problem's text (``detail`` and the fields it names) for the page to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from leadflow.console.settings import ConsoleSettings


@dataclass
class Answer:
    status: int
    body: Any = None
    problem: str = ""
    fields: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _problem_text(body: Any, status: int) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        return f"the service answered {status}", []
    errors = body.get("errors") or []
    fields = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    text = str(body.get("detail") or body.get("title") or f"the service answered {status}")
    return text, fields


class Services:
    """One signed-in person's calls, over one HTTP client for the page being built."""

    def __init__(self, settings: ConsoleSettings, token: str, client: httpx.AsyncClient):
        self.urls = {
            "intake": settings.console_intake_url.rstrip("/"),
            "scoring": settings.console_scoring_url.rstrip("/"),
            "routing": settings.console_routing_url.rstrip("/"),
            "sla": settings.console_sla_url.rstrip("/"),
            "analytics": settings.console_analytics_url.rstrip("/"),
        }
        self.token = token
        self.client = client

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Answer:
        try:
            r = await self.client.request(
                method,
                self.urls[service] + path,
                json=json,
                params=params,
                files=files,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            return Answer(503, problem=f"{service} is not reachable ({type(exc).__name__})")
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.is_success:
            return Answer(r.status_code, body)
        text, fields = _problem_text(body, r.status_code)
        return Answer(r.status_code, body, text, fields)

    async def get(self, service: str, path: str, **params: Any) -> Answer:
        return await self.call(service, "GET", path, params=params or None)

    async def post(self, service: str, path: str, body: Any) -> Answer:
        return await self.call(service, "POST", path, json=body)

    async def get_text(self, service: str, path: str, **params: Any) -> tuple[int, str]:
        """A page the service renders itself (an HTML export): its status and text."""
        try:
            r = await self.client.get(
                self.urls[service] + path,
                params=params or None,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError as exc:
            return 503, f"{service} is not reachable ({type(exc).__name__})"
        return r.status_code, r.text
