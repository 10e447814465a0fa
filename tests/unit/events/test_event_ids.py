"""Event ids are RFC 9562 UUIDv7s that sort in creation order, even within a millisecond."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.envelope import Envelope, new_event_id


def test_ids_made_in_a_burst_are_unique_and_sort_in_creation_order() -> None:
    ids = [new_event_id() for _ in range(20_000)]  # many share a millisecond
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}


def test_an_id_carries_the_unix_milliseconds_it_was_made_in() -> None:
    before = time.time_ns() // 1_000_000
    made = new_event_id()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after + 1  # +1: a counter overflow borrows a ms


def test_a_new_envelope_refuses_a_naive_occurred_at() -> None:
    payload = ActivityRecorded(activity_id="a", activity_type="page_view")
    with pytest.raises(ValueError, match="timezone-aware"):
        Envelope.new(payload, lead_id=new_event_id(), occurred_at=datetime(2026, 1, 1))
    aware = Envelope.new(
        payload, lead_id=new_event_id(), occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert Envelope.from_json(aware.to_json()) == aware
