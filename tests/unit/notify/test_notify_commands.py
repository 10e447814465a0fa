"""notify's admin commands decided without a database: a re-enabled endpoint's waiting
queues, a rotated secret's grace, a preference's address, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.events.envelope import new_id
from leadflow.notify.commands import (
    CommandRefused,
    EnableWebhook,
    RotateSecret,
    SetPreference,
    decide_enable,
    decide_preference,
    previous_secret_until,
    queue_key,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_re_enabling_delivers_every_waiting_queue_at_once_one_timer_per_lead() -> None:
    a, b = new_id(), new_id()
    timers = decide_enable(EnableWebhook("ep_1", NOW), object(), [a, b])
    assert [(t.key, t.kind, t.due_at, t.lead_id) for t in timers] == [
        (f"wh:ep_1:{a}", "webhook", NOW, a),
        (f"wh:ep_1:{b}", "webhook", NOW, b),
    ]
    assert queue_key("ep_1", a) == f"wh:ep_1:{a}"
    assert decide_enable(EnableWebhook("ep_1", NOW), object(), []) == []


def test_re_enabling_an_unknown_endpoint_is_a_404() -> None:
    with pytest.raises(CommandRefused) as info:
        decide_enable(EnableWebhook("ep_gone", NOW), None, [])
    assert (info.value.status, info.value.detail) == (404, "no webhook endpoint 'ep_gone'")


def test_the_old_secret_signs_for_a_day_after_a_rotation() -> None:
    cmd = RotateSecret("ep_1", "whsec_new", NOW)
    assert previous_secret_until(cmd) == NOW + timedelta(hours=24)


def test_a_preference_is_kept_under_the_lower_case_address() -> None:
    assert decide_preference(SetPreference("Ada@Example.COM", "daily_digest")) == "ada@example.com"


def test_a_preference_for_something_that_is_no_address_is_refused_naming_the_field() -> None:
    with pytest.raises(CommandRefused) as info:
        decide_preference(SetPreference("ada", "off"))
    refused = info.value
    assert refused.status == 422
    assert refused.errors == [{"field": "address", "message": "an e-mail address"}]
    assert refused.problem().body()["detail"] == "invalid fields: address"
