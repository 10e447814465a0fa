"""POST /v1/inquiries: acceptance, identity resolution, idempotency, refusals."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.intake.conftest import ADMIN, Intake

pytestmark = pytest.mark.postgres


def inquiry(email: str = "jane.doe@acme.com", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "contact": {
            "email": email,
            "first_name": "jane",
            "last_name": "DOE",
            "company": "Acme",
            "country": "India",
            "phone": "98765 43210",
        },
        "source": {"campaign": "spring-webinar", "utm_source": "newsletter"},
        "answers": {"timeframe": "this quarter", "budget": "50k"},
        "consent": {"marketing_opt_in": True, "text_version": "v3"},
    }
    body.update(extra)
    return body


async def test_inquiry_is_accepted_and_stored_with_its_event_before_the_answer(
    intake: Intake,
) -> None:
    response = await intake.client.post(
        "/v1/inquiries", json=inquiry(), headers={"X-Api-Key": intake.api_key}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["matched"] is False
    lead_id = uuid.UUID(body["lead_id"])
    events = await intake.rows("SELECT event_type FROM event_log WHERE lead_id = :id", id=lead_id)
    assert [e[0] for e in events] == ["lead.captured"]
    assert await intake.count("SELECT count(*) FROM outbox WHERE lead_id = :id", id=lead_id) == 1
    async with intake.kit.connect() as conn:
        [stored] = await intake.kit.store.read_stream(conn, lead_id)
    contact = stored.payload.contact  # type: ignore[attr-defined]
    assert (
        contact.email,
        contact.first_name,
        contact.last_name,
        contact.phone,
        contact.country,
    ) == ("jane.doe@acme.com", "Jane", "Doe", "+919876543210", "IN")
    assert stored.payload.account.domain == "acme.com"  # type: ignore[attr-defined]


async def test_same_email_again_is_an_inquiry_on_the_same_lead(intake: Intake) -> None:
    headers = {"X-Api-Key": intake.api_key}
    first = (await intake.client.post("/v1/inquiries", json=inquiry(), headers=headers)).json()
    second = await intake.client.post(
        "/v1/inquiries",
        headers=headers,
        json=inquiry(
            contact={"email": " JANE.DOE@acme.com", "title": "CTO"},
            consent={"marketing_opt_in": False},
        ),
    )
    assert second.status_code == 202
    assert second.json()["lead_id"] == first["lead_id"] and second.json()["matched"] is True
    types = [
        r[0]
        for r in await intake.rows(
            "SELECT event_type FROM event_log WHERE lead_id = :id ORDER BY stream_version",
            id=uuid.UUID(first["lead_id"]),
        )
    ]
    assert types == ["lead.captured", "inquiry.received", "lead.profile_updated", "consent.changed"]
    profile = (await intake.client.get(f"/v1/leads/{first['lead_id']}", headers=ADMIN)).json()
    assert profile["contact"]["title"] == "CTO" and profile["inquiries"] == 2
    assert profile["stage"] == "inquiry" and profile["consent"]["marketing_opt_in"] is False


async def test_idempotency_key_replays_the_first_answer_without_a_second_event(
    intake: Intake,
) -> None:
    headers = {"X-Api-Key": intake.api_key, "Idempotency-Key": "req-1"}
    first = await intake.client.post("/v1/inquiries", json=inquiry(), headers=headers)
    again = await intake.client.post("/v1/inquiries", json=inquiry(), headers=headers)
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await intake.count("SELECT count(*) FROM event_log") == 1
    other = await intake.client.post("/v1/inquiries", json=inquiry("x@acme.com"), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_bad_email_and_missing_fields_are_refused_naming_the_field(
    intake: Intake,
) -> None:
    headers = {"X-Api-Key": intake.api_key}
    bad = await intake.client.post("/v1/inquiries", headers=headers, json=inquiry("not-an-email"))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in bad.json()["errors"]] == ["contact.email"]
    missing = await intake.client.post("/v1/inquiries", headers=headers, json={"source": {}})
    assert missing.status_code == 422
    assert "contact" in [e["field"] for e in missing.json()["errors"]]
    no_email = await intake.client.post(
        "/v1/inquiries", headers=headers, json={"contact": {"first_name": "X"}}
    )
    assert [e["field"] for e in no_email.json()["errors"]] == ["contact.email"]
    unknown = await intake.client.post("/v1/inquiries", headers=headers, json=inquiry(shoe_size=42))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "shoe_size"
    assert await intake.count("SELECT count(*) FROM event_log") == 0


async def test_malformed_json_and_an_overlong_idempotency_key_are_refused_naming_them(
    intake: Intake,
) -> None:
    headers = {"X-Api-Key": intake.api_key, "Content-Type": "application/json"}
    broken = await intake.client.post("/v1/inquiries", headers=headers, content=b'{"contact": ')
    assert broken.status_code == 422
    assert broken.headers["content-type"].startswith("application/problem+json")
    assert broken.json()["errors"][0]["type"] == "json_invalid"
    overlong = await intake.client.post(
        "/v1/inquiries",
        headers={"X-Api-Key": intake.api_key, "Idempotency-Key": "k" * 201},
        json=inquiry(),
    )
    assert overlong.status_code == 422
    assert overlong.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in overlong.json()["errors"]] == ["Idempotency-Key"]
    longest = await intake.client.post(
        "/v1/inquiries",
        headers={"X-Api-Key": intake.api_key, "Idempotency-Key": "k" * 200},
        json=inquiry(),
    )
    assert longest.status_code == 202, longest.text
    assert await intake.count("SELECT count(*) FROM event_log") == 1


async def test_wrong_missing_revoked_and_unscoped_keys_are_refused(intake: Intake) -> None:
    missing = await intake.client.post("/v1/inquiries", json=inquiry())
    assert missing.status_code == 401 and missing.json()["errors"][0]["field"] == "X-Api-Key"
    wrong = await intake.client.post(
        "/v1/inquiries", json=inquiry(), headers={"X-Api-Key": "lf_nope"}
    )
    assert wrong.status_code == 401
    scans_only = await intake.new_key("scans")
    unscoped = await intake.client.post(
        "/v1/inquiries", json=inquiry(), headers={"X-Api-Key": scans_only["key"]}
    )
    assert unscoped.status_code == 403
    key = await intake.new_key("inquiries")
    ok = await intake.client.post(
        "/v1/inquiries", json=inquiry(), headers={"X-Api-Key": key["key"]}
    )
    assert ok.status_code == 202
    revoked = await intake.client.delete(f"/v1/admin/api-keys/{key['key_id']}", headers=ADMIN)
    assert revoked.status_code == 204
    after = await intake.client.post(
        "/v1/inquiries", json=inquiry(), headers={"X-Api-Key": key["key"]}
    )
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    listed = (await intake.client.get("/v1/admin/api-keys", headers=ADMIN)).json()["items"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    stored = await intake.rows("SELECT key_hash FROM api_keys")
    assert key["key"] not in {r[0] for r in stored}


async def test_oversized_body_gets_413_problem(intake: Intake) -> None:
    big = inquiry(notes="x" * 2_000_000)
    response = await intake.client.post(
        "/v1/inquiries", json=big, headers={"X-Api-Key": intake.api_key}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_concurrent_inquiries_share_transactions_and_each_is_answered(
    intake: Intake,
) -> None:
    import asyncio

    async def send(n: int) -> dict[str, object]:
        key = n % 60  # every key is sent twice, with the same body
        response = await intake.client.post(
            "/v1/inquiries",
            headers={"X-Api-Key": intake.api_key, "Idempotency-Key": f"k{key}"},
            json={"contact": {"email": f"c{key % 40}@acme{key % 40}.example"}},
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    answers = await asyncio.gather(*(send(n) for n in range(120)))
    for n in range(60):
        assert answers[n] == answers[n + 60]  # the replay got the first answer
    assert len({a["inquiry_id"] for a in answers}) == 60
    assert len({a["lead_id"] for a in answers}) == 40
    assert (
        await intake.count("SELECT count(*) FROM event_log WHERE event_type = 'lead.captured'")
        == 40
    )
    assert (
        await intake.count("SELECT count(*) FROM event_log WHERE event_type = 'inquiry.received'")
        == 20
    )
    refused = await intake.client.post(
        "/v1/inquiries",
        headers={"X-Api-Key": intake.api_key, "Idempotency-Key": "k1"},
        json={"contact": {"email": "someone.else@acme.example"}},
    )
    assert refused.status_code == 422
