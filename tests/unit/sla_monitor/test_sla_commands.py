"""sla-monitor's admin commands decided without a database: what a policy or calendar change
publishes or stores, and when it is refused (status and the field to blame)."""

from __future__ import annotations

import pytest

from leadflow.events.calendar import BusinessCalendar
from leadflow.sla_monitor.commands import (
    CommandRefused,
    DeleteCalendar,
    DeletePolicy,
    PutCalendar,
    PutPolicy,
    decide_delete_calendar,
    decide_delete_policy,
    decide_put_calendar,
    decide_put_policy,
)
from leadflow.sla_monitor.domain import SlaPolicy, default_policies

CALENDARS = {"default", "emea"}


def accept(**kw: object) -> SlaPolicy:
    base = next(p for p in default_policies() if p.policy_id == "accept-4bh")
    return base.model_copy(update=kw)


def test_replacing_a_policy_keeps_its_place_in_the_set() -> None:
    policies = default_policies()
    faster = accept(name="accept within 2h")
    change = decide_put_policy(PutPolicy("accept-4bh", faster), policies, 4, CALENDARS)
    assert not change.created and change.edited_version == 4
    assert [p.policy_id for p in change.policies] == [p.policy_id for p in policies]
    assert change.policies[[p.policy_id for p in policies].index("accept-4bh")] == faster


def test_a_new_policy_is_appended_and_created() -> None:
    policies = default_policies()
    new = accept(policy_id="accept-emea", calendar_id="emea")
    change = decide_put_policy(PutPolicy("accept-emea", new), policies, 0, CALENDARS)
    assert change.created
    assert change.policies[-1] == new and len(change.policies) == len(policies) + 1


def test_a_policy_whose_id_is_not_the_paths_is_refused_naming_the_field() -> None:
    with pytest.raises(CommandRefused) as info:
        decide_put_policy(PutPolicy("other", accept()), default_policies(), 1, CALENDARS)
    assert info.value.status == 422
    assert info.value.errors == [{"field": "policy_id", "message": "expected 'other'"}]


def test_a_policy_on_an_unknown_calendar_is_refused_naming_the_field() -> None:
    with pytest.raises(CommandRefused) as info:
        decide_put_policy(
            PutPolicy("accept-4bh", accept(calendar_id="mars")), default_policies(), 1, CALENDARS
        )
    assert info.value.status == 422
    assert info.value.errors == [{"field": "calendar_id", "message": "unknown calendar 'mars'"}]
    assert info.value.problem().body()["detail"] == "invalid fields: calendar_id"


def test_deleting_a_policy_publishes_the_rest_and_an_unknown_one_is_a_404() -> None:
    policies = default_policies()
    change = decide_delete_policy(DeletePolicy("accept-4bh"), policies, 2)
    assert "accept-4bh" not in [p.policy_id for p in change.policies]
    assert len(change.policies) == len(policies) - 1
    with pytest.raises(CommandRefused) as info:
        decide_delete_policy(DeletePolicy("nope"), policies, 2)
    assert (info.value.status, info.value.detail) == (404, "no policy 'nope' in version 2")


def test_a_calendar_whose_id_is_not_the_paths_is_refused() -> None:
    cal = BusinessCalendar(calendar_id="emea", timezone="Europe/Berlin")
    assert decide_put_calendar(PutCalendar("emea", cal)) is cal
    with pytest.raises(CommandRefused) as info:
        decide_put_calendar(PutCalendar("apac", cal))
    assert info.value.status == 422
    assert info.value.errors[0]["field"] == "calendar_id"


def test_the_default_calendar_and_a_calendar_in_use_cannot_be_deleted() -> None:
    policies = [*default_policies(), accept(policy_id="accept-emea", calendar_id="emea")]
    with pytest.raises(CommandRefused) as default:
        decide_delete_calendar(DeleteCalendar("default"), policies)
    assert default.value.status == 409
    with pytest.raises(CommandRefused) as used:
        decide_delete_calendar(DeleteCalendar("emea"), policies)
    assert (used.value.status, used.value.errors) == (
        409,
        [{"field": "calendar_id", "message": "in use"}],
    )
    assert "accept-emea" in used.value.detail
    decide_delete_calendar(DeleteCalendar("apac"), policies)  # unused: allowed
