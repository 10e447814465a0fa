"""Web forms: browser-style posts, redirects, JSON answers, CORS, honeypot, admin CRUD."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = pytest.mark.postgres
SITE = "https://www.acme-shop.example"


async def make_form(intake: Intake, **overrides: object) -> str:
    body: dict[str, object] = {
        "name": "Spring webinar",
        "allowed_origins": [SITE],
        "thank_you_url": f"{SITE}/thanks",
        "campaign": "spring-webinar",
        "field_map": {"work_email": "contact.email", "org": "contact.company"},
        "required": ["work_email"],
        "consent_text_version": "v2",
    }
    body.update(overrides)
    response = await intake.client.post("/v1/admin/forms", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["form_key"])


async def test_browser_form_post_is_redirected_to_the_thank_you_page(intake: Intake) -> None:
    key = await make_form(intake)
    response = await intake.client.post(
        f"/v1/forms/{key}",
        data={
            "work_email": "Sam@Acme.com",
            "first_name": "sam",
            "org": "Acme",
            "utm_source": "linkedin",
            "marketing_opt_in": "yes",
            "hp_website": "",
        },
        headers={
            "Origin": SITE,
            "Accept": "text/html,application/xhtml+xml",
            "Referer": f"{SITE}/webinar",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{SITE}/thanks"
    assert response.headers["access-control-allow-origin"] == SITE
    [row] = await intake.rows("SELECT lead_id FROM lead_emails WHERE email = 'sam@acme.com'")
    async with intake.kit.connect() as conn:
        [event] = await intake.kit.store.read_stream(conn, row[0])
    payload = event.payload
    assert payload.capture_method == "web_form"  # type: ignore[attr-defined]
    assert payload.source.form_id == key  # type: ignore[attr-defined]
    assert payload.source.campaign == "spring-webinar"  # type: ignore[attr-defined]
    assert payload.source.utm_source == "linkedin"  # type: ignore[attr-defined]
    assert payload.consent.marketing_opt_in is True  # type: ignore[attr-defined]
    assert payload.contact.company == "Acme"  # type: ignore[attr-defined]


async def test_multipart_post_asking_for_json_gets_json(intake: Intake) -> None:
    key = await make_form(intake)
    response = await intake.client.post(
        f"/v1/forms/{key}",
        files={"work_email": (None, "kim@acme.com")},
        headers={"Origin": SITE, "Accept": "application/json"},
    )
    assert response.status_code == 202, response.text
    uuid.UUID(response.json()["lead_id"])
    # the consent box was not ticked: the form shows one, so that is "not given" (and
    # recorded as not stated: nothing the person said)
    consent = await intake.rows("SELECT consent FROM leads")
    assert consent[0][0]["marketing_opt_in"] is False
    assert consent[0][0]["stated"] is False


async def test_a_second_form_with_the_box_unticked_does_not_withdraw_consent(
    intake: Intake,
) -> None:
    key = await make_form(intake)
    headers = {"Origin": SITE, "Accept": "application/json"}
    ticked = await intake.client.post(
        f"/v1/forms/{key}",
        files={"work_email": (None, "lee@acme.com"), "marketing_opt_in": (None, "yes")},
        headers=headers,
    )
    assert ticked.status_code == 202, ticked.text
    again = await intake.client.post(
        f"/v1/forms/{key}", files={"work_email": (None, "lee@acme.com")}, headers=headers
    )
    assert again.status_code == 202 and again.json()["lead_id"] == ticked.json()["lead_id"]
    consent = await intake.rows("SELECT consent FROM leads")
    assert consent[0][0]["marketing_opt_in"] is True
    types = await intake.rows("SELECT event_type FROM event_log ORDER BY global_position")
    assert [t[0] for t in types] == ["lead.captured", "inquiry.received"]


async def test_disallowed_origin_is_refused_and_preflight_only_answers_allowed_ones(
    intake: Intake,
) -> None:
    key = await make_form(intake)
    refused = await intake.client.post(
        f"/v1/forms/{key}",
        data={"work_email": "a@b.com"},
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "Origin"
    ok = await intake.client.options(
        f"/v1/forms/{key}", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"}
    )
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == SITE
    bad = await intake.client.options(
        f"/v1/forms/{key}",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    assert await intake.count("SELECT count(*) FROM event_log") == 0


async def test_honeypot_filled_is_dropped_with_the_same_looking_answer(intake: Intake) -> None:
    key = await make_form(intake)
    bot = await intake.client.post(
        f"/v1/forms/{key}",
        data={"work_email": "bot@spam.example", "hp_website": "http://x"},
        headers={"Origin": SITE},
    )
    assert bot.status_code == 303 and bot.headers["location"] == f"{SITE}/thanks"
    bot_json = await intake.client.post(
        f"/v1/forms/{key}",
        data={"work_email": "bot@spam.example", "hp_website": "x"},
        headers={"Origin": SITE, "Accept": "application/json"},
    )
    assert bot_json.status_code == 202 and set(bot_json.json()) == {
        "lead_id",
        "inquiry_id",
        "matched",
        "match_reason",
    }
    assert await intake.count("SELECT count(*) FROM event_log") == 0


async def test_missing_required_field_is_named_and_unknown_form_is_404(intake: Intake) -> None:
    key = await make_form(intake)
    missing = await intake.client.post(
        f"/v1/forms/{key}", data={"first_name": "x"}, headers={"Origin": SITE}
    )
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["work_email"]
    unknown = await intake.client.post("/v1/forms/nope-nope", data={"email": "a@b.com"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "form_key"


async def test_example_page_is_a_real_form_that_posts_back(intake: Intake) -> None:
    key = await make_form(intake, thank_you_url=None)
    page = await intake.client.get(f"/v1/forms/{key}/example")
    assert page.status_code == 200 and "<form" in page.text
    assert f'action="http://test/v1/forms/{key}"' in page.text
    # Post what the page's fields send, from the page's own origin (not in the list).
    response = await intake.client.post(
        f"/v1/forms/{key}",
        headers={"Origin": "http://test"},
        data={
            "email": "page@acme.com",
            "first_name": "Pat",
            "hp_website": "",
            "utm_source": "example-page",
            "marketing_opt_in": "yes",
        },
    )
    assert response.status_code == 303
    thanks = await intake.client.get(response.headers["location"])
    assert thanks.status_code == 200 and "Thank you" in thanks.text


async def test_form_admin_refuses_wildcard_origins_and_needs_the_admin_token(
    intake: Intake,
) -> None:
    wildcard = await intake.client.post(
        "/v1/admin/forms", headers=ADMIN, json={"name": "x", "allowed_origins": ["*"]}
    )
    assert wildcard.status_code == 422
    assert wildcard.json()["errors"][0]["field"].startswith("allowed_origins")
    no_token = await intake.client.get("/v1/admin/forms")
    assert no_token.status_code == 401
    key = await make_form(intake)
    listed = (await intake.client.get("/v1/admin/forms", headers=ADMIN)).json()["items"]
    assert [f["form_key"] for f in listed] == [key]
    assert (await intake.client.delete(f"/v1/admin/forms/{key}", headers=ADMIN)).status_code == 204
    assert (await intake.client.get(f"/v1/admin/forms/{key}", headers=ADMIN)).status_code == 404


async def test_a_changed_or_deleted_form_takes_effect_on_the_next_post(intake: Intake) -> None:
    """Posts read forms through a short cache; a change made on this replica is seen at once."""
    key = await make_form(intake)
    other = "https://partner.example"

    async def post(origin: str) -> int:
        response = await intake.client.post(
            f"/v1/forms/{key}",
            data={"work_email": f"{uuid.uuid4().hex[:8]}@acme.com", "hp_website": ""},
            headers={"Origin": origin, "Accept": "application/json"},
        )
        return response.status_code

    assert await post(SITE) == 202
    assert await post(other) == 403  # the cached form does not allow it...
    changed = await intake.client.put(
        f"/v1/admin/forms/{key}",
        headers=ADMIN,
        json={
            "name": "Spring webinar",
            "allowed_origins": [other],
            "field_map": {"work_email": "contact.email"},
        },
    )
    assert changed.status_code == 200, changed.text
    assert await post(other) == 202  # ...the replaced one does, at once
    assert await post(SITE) == 403
    assert (await intake.client.delete(f"/v1/admin/forms/{key}", headers=ADMIN)).status_code == 204
    assert await post(other) == 404
