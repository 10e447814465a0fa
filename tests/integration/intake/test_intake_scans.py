"""Badge scanner batches: per-item answers, vCard/MECARD badges, idempotent replays."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.postgres

VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;John;;;\r\nORG:Globex;R&D\r\n"
    "EMAIL;TYPE=WORK:john.doe@globex.example\r\nTEL:+44 20 7946 0958\r\nEND:VCARD\r\n"
)
MECARD = "MECARD:N:Roe,Jane;EMAIL:jane@initech.example;TEL:+14155550100;ORG:Initech;;"


def batch() -> dict[str, object]:
    return {
        "event_id": "expo-2026",
        "items": [
            {
                "scan_id": "s1",
                "scanned_at": "2026-03-01T09:15:00+01:00",
                "badge": VCARD,
                "notes": "wants a demo",
                "rating": "hot",
            },
            {
                "scan_id": "s2",
                "scanned_at": "2026-03-01T10:00:00+01:00",
                "badge": MECARD,
                "rating": "warm",
            },
            {
                "scan_id": "s3",
                "scanned_at": "2026-03-01T10:05:00+01:00",
                "badge": {
                    "email": "ali@umbrella.example",
                    "first_name": "Ali",
                    "company": "Umbrella",
                },
                "rating": "cold",
            },
            {
                "scan_id": "s4",
                "scanned_at": "2026-03-01T10:06:00+01:00",
                "badge": "BEGIN:VCARD\nVERSION:3.0\nFN:Broken",
            },
            {"scan_id": "s5", "badge": {"email": "x@y.example"}},
            {
                "scan_id": "s6",
                "scanned_at": "2026-03-01T10:07:00+01:00",
                "badge": {"email": "not-an-email"},
            },
        ],
    }


async def test_scan_batch_answers_per_item_and_bad_items_do_not_reject_good_ones(
    intake: Intake,
) -> None:
    device = await intake.new_key("scans", device_id="scanner-7")
    response = await intake.client.post(
        "/v1/scans", json=batch(), headers={"X-Api-Key": device["key"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = {i["scan_id"]: i["status"] for i in body["items"]}
    assert statuses == {
        "s1": "accepted",
        "s2": "accepted",
        "s3": "accepted",
        "s4": "rejected",
        "s5": "rejected",
        "s6": "rejected",
    }
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (3, 0, 3)
    reasons = {i["scan_id"]: i["errors"] for i in body["items"] if i["status"] == "rejected"}
    assert "END:VCARD" in reasons["s4"][0]["message"]
    assert reasons["s4"][0]["field"] == "items[3].badge"
    assert reasons["s5"][0]["field"] == "items[4].scanned_at"
    assert reasons["s6"][0]["field"] == "items[5].badge.email"
    rows = await intake.rows(
        "SELECT e.occurred_at, e.payload FROM event_log e WHERE event_type = 'lead.captured' "
        "ORDER BY occurred_at"
    )
    assert len(rows) == 3
    # the device clock's time is when it happened, not when it was uploaded
    assert rows[0][0].isoformat() == "2026-03-01T08:15:00+00:00"
    assert rows[0][1]["capture_method"] == "badge_scan"
    assert rows[0][1]["source"]["device_id"] == "scanner-7"
    assert rows[0][1]["source"]["event_id"] == "expo-2026"
    assert rows[0][1]["rating"] == "hot"


async def test_scan_batch_replayed_after_a_lost_response_changes_nothing(
    intake: Intake,
) -> None:
    device = await intake.new_key("scans", device_id="scanner-8")
    headers = {"X-Api-Key": device["key"]}
    first = (await intake.client.post("/v1/scans", json=batch(), headers=headers)).json()
    events = await intake.count("SELECT count(*) FROM event_log")
    outbox = await intake.count("SELECT count(*) FROM outbox")
    replay = (await intake.client.post("/v1/scans", json=batch(), headers=headers)).json()
    assert (replay["accepted"], replay["duplicate"], replay["rejected"]) == (0, 3, 3)
    first_leads = {i["scan_id"]: i["lead_id"] for i in first["items"] if "lead_id" in i}
    replay_leads = {i["scan_id"]: i["lead_id"] for i in replay["items"] if "lead_id" in i}
    assert first_leads == replay_leads
    assert await intake.count("SELECT count(*) FROM event_log") == events
    assert await intake.count("SELECT count(*) FROM outbox") == outbox


async def test_same_scan_id_from_another_device_is_a_new_scan(intake: Intake) -> None:
    a = await intake.new_key("scans", device_id="a")
    b = await intake.new_key("scans", device_id="b")
    one = {
        "event_id": "expo",
        "items": [{"scan_id": "1", "scanned_at": "2026-03-01T09:00:00Z", "badge": MECARD}],
    }
    assert (
        await intake.client.post("/v1/scans", json=one, headers={"X-Api-Key": a["key"]})
    ).json()["accepted"] == 1
    second = (
        await intake.client.post("/v1/scans", json=one, headers={"X-Api-Key": b["key"]})
    ).json()
    # a new scan, of a person we know: an inquiry on the same lead
    assert second["accepted"] == 1 and second["items"][0]["matched"] is True


async def test_scans_need_the_scans_scope(intake: Intake) -> None:
    other = await intake.new_key("inquiries")
    response = await intake.client.post(
        "/v1/scans", json=batch(), headers={"X-Api-Key": other["key"]}
    )
    assert response.status_code == 403
