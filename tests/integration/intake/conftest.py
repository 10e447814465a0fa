"""Fixtures for intake's integration tests: the real app on a real Postgres (own schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from leadflow.events.kit import ServiceKit
from leadflow.intake.app import create_app
from leadflow.intake.settings import IntakeSettings
from leadflow.testing import app_client

ADMIN = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Intake:
    client: httpx.AsyncClient
    kit: ServiceKit
    api_key: str

    async def new_key(self, *scopes: str, device_id: str | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/admin/api-keys",
            headers=ADMIN,
            json={"name": "test", "scopes": list(scopes), "device_id": device_id},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.kit.connect() as tx:
            return await tx.fetch(sql, **params)

    async def count(self, sql: str, **params: Any) -> int:
        async with self.kit.connect() as tx:
            return int(await tx.fetchval(sql, **params) or 0)


def make_settings(settings_for: Callable[..., Any], **overrides: Any) -> IntakeSettings:
    values: dict[str, Any] = {
        "run_consumers": False,
        "intake_ip_rate_per_second": 1000.0,
        "intake_ip_burst": 1000,
    }
    values.update(overrides)
    settings: IntakeSettings = settings_for(IntakeSettings, **values)
    return settings


@pytest.fixture
async def intake(settings_for: Callable[..., Any]) -> AsyncIterator[Intake]:
    app = create_app(make_settings(settings_for))
    async with app_client(app) as client:
        kit = app.state.kit
        created = await client.post(
            "/v1/admin/api-keys",
            headers=ADMIN,
            json={"name": "web", "scopes": ["inquiries", "scans", "activities"]},
        )
        assert created.status_code == 201, created.text
        yield Intake(client, kit, created.json()["key"])
