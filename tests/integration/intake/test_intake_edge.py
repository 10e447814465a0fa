"""Edge security: rate limits (429 + Retry-After), admin access, bootstrap credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadflow.intake.app import create_app
from leadflow.testing import app_client
from tests.integration.intake.conftest import ADMIN, make_settings

pytestmark = pytest.mark.postgres


async def test_per_key_rate_limit_answers_429_with_retry_after(
    settings_for: Callable[..., Any],
) -> None:
    app = create_app(
        make_settings(settings_for, intake_key_rate_per_second=0.5, intake_key_burst=3)
    )
    async with app_client(app) as client:
        created = await client.post(
            "/v1/admin/api-keys", headers=ADMIN, json={"name": "t", "scopes": ["inquiries"]}
        )
        key = created.json()["key"]
        other = (
            await client.post(
                "/v1/admin/api-keys", headers=ADMIN, json={"name": "u", "scopes": ["inquiries"]}
            )
        ).json()["key"]
        codes = []
        for n in range(4):
            response = await client.post(
                "/v1/inquiries",
                headers={"X-Api-Key": key},
                json={"contact": {"email": f"r{n}@acme.com"}},
            )
            codes.append(response.status_code)
        assert codes == [202, 202, 202, 429]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["errors"][0]["field"] == "API key"
        # another key is not affected
        fine = await client.post(
            "/v1/inquiries",
            headers={"X-Api-Key": other},
            json={"contact": {"email": "other@acme.com"}},
        )
        assert fine.status_code == 202


async def test_per_ip_rate_limit_on_public_form_posts(settings_for: Callable[..., Any]) -> None:
    app = create_app(make_settings(settings_for, intake_ip_rate_per_second=0.1, intake_ip_burst=2))
    async with app_client(app) as client:
        form = await client.post(
            "/v1/admin/forms",
            headers=ADMIN,
            json={"name": "f", "allowed_origins": ["https://site.example"]},
        )
        url = f"/v1/forms/{form.json()['form_key']}"
        codes = [
            (
                await client.post(
                    url, data={"email": f"i{n}@acme.com"}, headers={"Accept": "application/json"}
                )
            ).status_code
            for n in range(3)
        ]
        assert codes == [202, 202, 429]


async def test_bootstrap_key_and_form_exist_after_startup(
    settings_for: Callable[..., Any],
) -> None:
    settings = make_settings(
        settings_for,
        intake_bootstrap_api_key="lf_local_dev_key_123",
        intake_bootstrap_form_key="demo-form",
    )
    app = create_app(settings)
    async with app_client(app) as client:
        ok = await client.post(
            "/v1/inquiries",
            headers={"X-Api-Key": "lf_local_dev_key_123"},
            json={"contact": {"email": "dev@acme.com"}},
        )
        assert ok.status_code == 202
        form = (await client.get("/v1/admin/forms/demo-form", headers=ADMIN)).json()
        assert form["allowed_origins"] == ["http://localhost:8001"]
        page = await client.get("/v1/forms/demo-form/example")
        assert page.status_code == 200
        admin_via_key = await client.get(
            "/v1/admin/forms", headers={"X-Api-Key": "lf_local_dev_key_123"}
        )
        assert admin_via_key.status_code == 403


async def test_admin_routes_refuse_a_wrong_token_and_accept_an_admin_scoped_key(
    settings_for: Callable[..., Any],
) -> None:
    app = create_app(make_settings(settings_for))
    async with app_client(app) as client:
        wrong = await client.get("/v1/admin/api-keys", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401  # not a valid credential (RFC 6750 invalid_token)
        admin_key = (
            await client.post(
                "/v1/admin/api-keys", headers=ADMIN, json={"name": "ops", "scopes": ["admin"]}
            )
        ).json()
        listed = await client.get("/v1/admin/api-keys", headers={"X-Api-Key": admin_key["key"]})
        assert listed.status_code == 200
        bad_scope = await client.post(
            "/v1/admin/api-keys", headers=ADMIN, json={"name": "x", "scopes": ["everything"]}
        )
        assert bad_scope.status_code == 422
        assert bad_scope.json()["errors"][0]["field"] == "scopes"
