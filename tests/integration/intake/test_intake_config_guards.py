"""Configuration intake refuses when saved, not when a lead arrives: a web form's field map
that feeds no lead field, and account owners (routing owns those)."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = pytest.mark.postgres
SITE = "https://www.acme-shop.example"


def _form(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Spring webinar",
        "allowed_origins": [SITE],
        "field_map": {"work_email": "contact.email", "org": "contact.company"},
        "required": ["work_email"],
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("method", ["post", "put"])
async def test_form_with_an_unknown_field_map_target_is_refused_naming_it(
    intake: Intake, method: str
) -> None:
    body = _form(field_map={"work_email": "contact.emial", "org": "contact.company"})
    if method == "post":
        response = await intake.client.post("/v1/admin/forms", json=body, headers=ADMIN)
    else:
        response = await intake.client.put("/v1/admin/forms/spring", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == "field_map.work_email"
    assert "contact.emial" in error["message"]
    assert await intake.count("SELECT count(*) FROM forms") == 0


async def test_form_with_known_targets_of_every_group_is_saved(intake: Intake) -> None:
    body = _form(
        field_map={
            "work_email": "contact.email",
            "name": "contact.full_name",
            "why": "answers.compelling_event",
            "cmp": "source.utm_campaign",
            "optin": "consent.marketing_opt_in",
            "visitor": "anonymous_id",
        }
    )
    response = await intake.client.put("/v1/admin/forms/spring", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["field_map"]["why"] == "answers.compelling_event"


async def test_account_owner_is_refused_and_points_to_routing(intake: Intake) -> None:
    response = await intake.client.put(
        "/v1/admin/accounts/acme.com",
        json={"account_id": "acct-1", "name": "Acme", "owner_rep_id": "rep-7"},
        headers=ADMIN,
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "owner_rep_id"
    assert "/v1/routing/accounts/" in problem["errors"][0]["message"]
    assert problem["owner_api"] == "/v1/routing/accounts/acme.com"
    assert await intake.count("SELECT count(*) FROM accounts") == 0
    # the account itself (for lead-to-account match) is intake's
    response = await intake.client.put(
        "/v1/admin/accounts/acme.com", json={"account_id": "acct-1", "name": "Acme"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    assert await intake.count("SELECT count(*) FROM accounts") == 1
