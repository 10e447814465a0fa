"""Intake's activity API speaks the shared activity catalogue: names and aliases accepted and
recorded canonically, unknown types refused naming the field, properties typed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from leadflow.events.catalogue.activities import CATALOGUE
from leadflow.events.shredding import LeadKeyCodec
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.postgres

AT = "2026-02-01T10:00:00Z"


async def _lead(intake: Intake) -> str:
    response = await intake.client.post(
        "/v1/inquiries",
        headers={"X-Api-Key": intake.api_key},
        json={"contact": {"email": f"{uuid.uuid4().hex[:8]}@acme.com"}},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["lead_id"])


async def _post(intake: Intake, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = await intake.client.post(
        "/v1/activities", headers={"X-Api-Key": intake.api_key}, json={"items": items}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _recorded(intake: Intake, lead_id: str) -> list[dict[str, Any]]:
    """The stored activity events, opened as intake reads them (properties are personal
    fields, sealed with the lead's key in the log)."""
    rows = await intake.rows(
        "SELECT payload FROM event_log WHERE lead_id = :id AND event_type = 'activity.recorded' "
        "ORDER BY stream_version",
        id=uuid.UUID(lead_id),
    )
    codec = LeadKeyCodec()
    async with intake.kit.connect() as conn:
        return [
            await codec.decode(conn, uuid.UUID(lead_id), "activity.recorded", r[0]) for r in rows
        ]


async def test_every_catalogued_type_and_alias_is_accepted_and_recorded_canonically(
    intake: Intake,
) -> None:
    lead_id = await _lead(intake)
    spellings = [
        (spelling, kind.name)
        for kind in CATALOGUE.types
        if kind.door == "activities"
        for spelling in (kind.name, *kind.aliases)
    ]
    body = await _post(
        intake,
        [
            {"activity_id": f"v{n}", "type": spelling, "occurred_at": AT, "lead_id": lead_id}
            for n, (spelling, _canonical) in enumerate(spellings)
        ],
    )
    assert body["accepted"] == len(spellings), body
    recorded = await _recorded(intake, lead_id)
    assert [p["activity_type"] for p in recorded] == [c for _s, c in spellings]
    assert {"demo_request", "webinar_attended", "email_bounced", "unsubscribed",
            "time_on_site"} <= {p["activity_type"] for p in recorded}  # fmt: skip


async def test_unknown_and_inquiry_types_are_refused_naming_the_field(intake: Intake) -> None:
    lead_id = await _lead(intake)
    body = await _post(
        intake,
        [
            {"activity_id": "u1", "type": "teleport", "occurred_at": AT, "lead_id": lead_id},
            {"activity_id": "u2", "type": "inquiry", "occurred_at": AT, "lead_id": lead_id},
            {"activity_id": "u3", "type": "Demo Request", "occurred_at": AT, "lead_id": lead_id},
        ],
    )
    assert [i["status"] for i in body["items"]] == ["rejected", "rejected", "accepted"]
    first, second = body["items"][0]["errors"][0], body["items"][1]["errors"][0]
    assert first["field"] == "items[0].type" and "demo_request" in first["message"]
    assert second["field"] == "items[1].type" and "/v1/inquiries" in second["message"]
    assert [p["activity_type"] for p in await _recorded(intake, lead_id)] == ["demo_request"]


async def test_properties_take_numbers_and_booleans(intake: Intake) -> None:
    lead_id = await _lead(intake)
    body = await _post(
        intake,
        [
            {"activity_id": "p1", "type": "time_on_site", "occurred_at": AT, "lead_id": lead_id,
             "properties": {"seconds": 420, "returning": True, "ratio": 0.5, "page": "/pricing"}},
            {"activity_id": "p2", "type": "video_view", "occurred_at": AT, "lead_id": lead_id,
             "properties": {"percent": [1, 2]}},
        ],
    )  # fmt: skip
    assert [i["status"] for i in body["items"]] == ["accepted", "rejected"]
    assert body["items"][1]["errors"][0]["field"].startswith("items[1].properties")
    (recorded,) = await _recorded(intake, lead_id)
    assert recorded["properties"] == {
        "seconds": 420, "returning": True, "ratio": 0.5, "page": "/pricing",
    }  # fmt: skip
    assert type(recorded["properties"]["seconds"]) is int
