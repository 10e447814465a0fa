"""Duplicates merged (consent kept narrow), consent changes, activity, crypto-shredding."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = pytest.mark.postgres


async def post(intake: Intake, contact: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await intake.client.post(
        "/v1/inquiries", headers={"X-Api-Key": intake.api_key}, json={"contact": contact, **extra}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def event_types(intake: Intake, lead_id: str) -> list[str]:
    rows = await intake.rows(
        "SELECT event_type FROM event_log WHERE lead_id = :id ORDER BY stream_version",
        id=uuid.UUID(lead_id),
    )
    return [r[0] for r in rows]


async def test_same_phone_merge_keeps_the_work_address_primary_and_consent_as_given(
    intake: Intake,
) -> None:
    first = await post(
        intake,
        {"email": "jo@acme.com", "phone": "+14155550100", "title": "CTO"},
        consent={"marketing_opt_in": True, "text_version": "v1"},
    )
    dup = await post(
        intake, {"email": "jo.private@gmail.com", "phone": "+1 415 555 0100", "city": "Austin"}
    )
    assert dup["lead_id"] == first["lead_id"]
    assert dup["matched"] is True and dup["match_reason"] == "same_phone"
    # the duplicate said nothing about consent: unknown neither narrows nor widens it
    assert await event_types(intake, first["lead_id"]) == [
        "lead.captured",
        "leads.merged",
        "lead.profile_updated",
    ]
    profile = (await intake.client.get(f"/v1/leads/{first['lead_id']}", headers=ADMIN)).json()
    assert profile["consent"]["marketing_opt_in"] is True
    assert profile["contact"]["city"] == "Austin" and profile["contact"]["title"] == "CTO"
    # the business address stays primary, the private one is secondary
    assert profile["contact"]["email"] == "jo@acme.com"
    assert profile["contact"]["secondary_emails"] == ["jo.private@gmail.com"]
    assert sorted(profile["emails"]) == ["jo.private@gmail.com", "jo@acme.com"]
    updated = await intake.rows(
        "SELECT payload FROM event_log WHERE event_type='lead.profile_updated'"
    )
    assert sorted(updated[0][0]["changed_fields"]) == ["city", "secondary_emails"]
    # both emails now find the surviving lead
    found = (
        await intake.client.get(
            "/v1/leads", params={"email": "JO.PRIVATE@gmail.com"}, headers=ADMIN
        )
    ).json()["items"]
    assert [f["lead_id"] for f in found] == [first["lead_id"]]
    merged = await intake.rows("SELECT payload FROM event_log WHERE event_type='leads.merged'")
    assert merged[0][0]["match_reason"] == "same_phone"


async def test_same_name_at_the_same_company_domain_is_merged(intake: Intake) -> None:
    first = await post(
        intake, {"email": "p.singh@infosys.example", "first_name": "Priya", "last_name": "Singh"}
    )
    second = await post(
        intake,
        {"email": "priya.singh@infosys.example", "first_name": "PRIYA", "last_name": "singh"},
    )
    assert second["lead_id"] == first["lead_id"]
    assert second["match_reason"] == "same_name_and_domain"
    other = await post(
        intake, {"email": "priya.singh@gmail.com", "first_name": "Priya", "last_name": "Singh"}
    )
    assert other["matched"] is False


async def test_consent_can_be_withdrawn_and_given_explicitly(intake: Intake) -> None:
    lead = await post(
        intake, {"email": "c@acme.com"}, consent={"marketing_opt_in": True, "text_version": "v1"}
    )
    url = f"/v1/leads/{lead['lead_id']}/consent"
    out = await intake.client.post(
        url, headers=ADMIN, json={"marketing_opt_in": False, "source": "preference-center"}
    )
    assert out.status_code == 200 and out.json()["changed"] is True
    again = await intake.client.post(url, headers=ADMIN, json={"marketing_opt_in": False})
    assert again.json()["changed"] is False
    assert await event_types(intake, lead["lead_id"]) == ["lead.captured", "consent.changed"]
    missing = await intake.client.post(
        f"/v1/leads/{uuid.uuid4()}/consent", headers=ADMIN, json={"marketing_opt_in": True}
    )
    assert missing.status_code == 404


async def test_do_not_contact_is_recorded_apart_from_marketing_consent(intake: Intake) -> None:
    lead = await post(
        intake, {"email": "d@acme.com"}, consent={"marketing_opt_in": True, "text_version": "v1"}
    )
    url = f"/v1/leads/{lead['lead_id']}/consent"
    out = await intake.client.post(
        url, headers=ADMIN, json={"do_not_contact": True, "reason": "asked on the phone"}
    )
    assert out.status_code == 200 and out.json() == {
        "lead_id": lead["lead_id"], "changed": True, "do_not_contact": True,
    }  # fmt: skip
    profile = (await intake.client.get(f"/v1/leads/{lead['lead_id']}", headers=ADMIN)).json()
    assert profile["do_not_contact"] is True
    assert profile["consent"]["marketing_opt_in"] is True  # untouched
    again = await intake.client.post(url, headers=ADMIN, json={"do_not_contact": True})
    assert again.json()["changed"] is False
    lifted = await intake.client.post(url, headers=ADMIN, json={"do_not_contact": False})
    assert lifted.json()["changed"] is True
    assert await event_types(intake, lead["lead_id"]) == [
        "lead.captured",
        "do_not_contact.changed",
        "do_not_contact.changed",
    ]
    payloads = await intake.rows(
        "SELECT payload FROM event_log WHERE event_type='do_not_contact.changed' "
        "ORDER BY stream_version"
    )
    assert [p[0]["do_not_contact"] for p in payloads] == [True, False]
    # The reason is free text about the person: sealed at rest with the lead's key.
    assert payloads[0][0]["reason"] is None and "_sealed" in payloads[0][0]
    empty = await intake.client.post(url, headers=ADMIN, json={})
    assert empty.status_code == 422
    assert empty.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in empty.json()["errors"]} == {"marketing_opt_in", "do_not_contact"}


async def test_anonymous_activity_is_kept_and_attached_when_the_person_identifies(
    intake: Intake,
) -> None:
    headers = {"X-Api-Key": intake.api_key}
    known = await post(intake, {"email": "k@acme.com"})
    batch = {
        "items": [
            {
                "activity_id": "a1",
                "type": "page_view",
                "occurred_at": "2026-02-01T10:00:00Z",
                "anonymous_id": "cookie-1",
                "url": "https://acme.example/pricing",
            },
            {
                "activity_id": "a2",
                "type": "content_download",
                "occurred_at": "2026-02-01T10:05:00Z",
                "email": "new@acme.com",
                "content_id": "whitepaper-7",
            },
            {
                "activity_id": "a3",
                "type": "email_click",
                "occurred_at": "2026-02-01T10:06:00Z",
                "lead_id": known["lead_id"],
                "campaign": "spring",
            },
            {
                "activity_id": "a4",
                "type": "teleport",
                "occurred_at": "2026-02-01T10:06:00Z",
                "email": "k@acme.com",
            },
            {"activity_id": "a5", "type": "page_view", "occurred_at": "2026-02-01T10:06:00Z"},
        ]
    }
    response = await intake.client.post("/v1/activities", json=batch, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["status"] for i in body["items"]] == [
        "anonymous",
        "anonymous",
        "accepted",
        "rejected",
        "rejected",
    ]
    assert body["items"][3]["errors"][0]["field"] == "items[3].type"
    replay = (await intake.client.post("/v1/activities", json=batch, headers=headers)).json()
    assert replay["duplicate"] == 3
    assert await event_types(intake, known["lead_id"]) == ["lead.captured", "activity.recorded"]
    # the anonymous visitor fills a form with the email that downloaded the whitepaper and
    # the cookie that viewed the pricing page
    lead = await post(intake, {"email": "new@acme.com"}, anonymous_id="cookie-1")
    assert await event_types(intake, lead["lead_id"]) == [
        "lead.captured",
        "activity.recorded",
        "activity.recorded",
    ]
    later = (
        await intake.client.post(
            "/v1/activities",
            headers=headers,
            json={
                "items": [
                    {
                        "activity_id": "a6",
                        "type": "webinar_attendance",
                        "occurred_at": "2026-02-02T10:00:00Z",
                        "anonymous_id": "cookie-1",
                    }
                ]
            },
        )
    ).json()
    assert later["items"][0] == {
        "activity_id": "a6",
        "status": "accepted",
        "lead_id": lead["lead_id"],
    }


async def test_erasure_makes_personal_fields_unreadable_in_every_event_while_counts_stay(
    intake: Intake,
) -> None:
    headers = {"X-Api-Key": intake.api_key}
    secret = "zelda.secretname@hyrule.example"
    lead = await post(
        intake,
        {"email": secret, "first_name": "Zelda", "phone": "+14155550199"},
        notes="met at the castle",
    )
    await post(intake, {"email": secret, "title": "Princess"}, notes="second visit")
    dup = await post(intake, {"email": "z@gmail.com", "phone": "+14155550199"})
    assert dup["lead_id"] == lead["lead_id"]
    other = await post(intake, {"email": "link@hyrule.example"})
    await intake.client.post(
        "/v1/activities",
        headers=headers,
        json={
            "items": [
                {
                    "activity_id": "x1",
                    "type": "page_view",
                    "occurred_at": "2026-02-01T10:00:00Z",
                    "email": secret,
                }
            ]
        },
    )
    before = await intake.rows("SELECT event_type, count(*) FROM event_log GROUP BY 1 ORDER BY 1")
    # personal data is encrypted at rest even before erasure
    raw = await intake.rows("SELECT payload::text FROM event_log")
    assert not [r[0] for r in raw if "zelda" in r[0].lower() or "castle" in r[0]]
    async with intake.kit.connect() as conn:
        readable = await intake.kit.store.read_stream(conn, uuid.UUID(lead["lead_id"]))
    assert readable[0].payload.contact.email == secret  # type: ignore[attr-defined]

    response = await intake.client.delete(f"/v1/leads/{lead['lead_id']}", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert len(response.json()["erased"]) == 2  # the survivor and the duplicate merged into it

    after = await intake.rows("SELECT event_type, count(*) FROM event_log GROUP BY 1 ORDER BY 1")
    expected = {t: n for t, n in before}
    expected["lead.erased"] = 2
    assert dict(after) == expected
    async with intake.kit.connect() as conn:
        events = [
            e
            for stored in await intake.kit.store.read_all(conn, 0, 10_000)
            for e in [stored.envelope]
        ]
    mine = {uuid.UUID(i) for i in response.json()["erased"]}
    for event in events:
        dumped = event.payload.model_dump_json()
        if event.lead_id in mine:
            assert "zelda" not in dumped.lower() and "castle" not in dumped
            assert "4155550199" not in dumped and "second visit" not in dumped
            assert "z@gmail.com" not in dumped
    others = [e for e in events if e.lead_id == uuid.UUID(other["lead_id"])]
    assert others[0].payload.contact.email == "link@hyrule.example"  # type: ignore[attr-defined]
    profile = (await intake.client.get(f"/v1/leads/{lead['lead_id']}", headers=ADMIN)).json()
    assert profile["erased"] is True and profile["contact"] == {} and profile["emails"] == []
    assert (await intake.client.get("/v1/leads", params={"email": secret}, headers=ADMIN)).json()[
        "items"
    ] == []
    leftovers = await intake.rows("SELECT count(*) FROM activities WHERE email = :e", e=secret)
    assert leftovers[0][0] == 0
    # erasing twice is harmless and appends nothing more
    await intake.client.delete(f"/v1/leads/{lead['lead_id']}", headers=ADMIN)
    assert await intake.count("SELECT count(*) FROM event_log WHERE event_type='lead.erased'") == 2
    # the same person coming back later is a new lead, not a resurrection
    again = await post(intake, {"email": secret})
    assert again["matched"] is False and again["lead_id"] != lead["lead_id"]


async def test_concurrent_probable_duplicates_fold_into_one_lead(intake: Intake) -> None:
    import asyncio

    answers = await asyncio.gather(
        *(
            post(intake, {"email": f"twin{n}@example{n}.org", "phone": "+14155550177"})
            for n in range(24)
        )
    )
    assert len({a["lead_id"] for a in answers}) == 1
    assert (
        await intake.count("SELECT count(*) FROM event_log WHERE event_type = 'leads.merged'") == 23
    )
