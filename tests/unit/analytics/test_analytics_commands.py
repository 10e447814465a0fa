"""Analytics' commands decided without a database: campaign costs and projection rebuilds."""

from __future__ import annotations

from datetime import date

import pytest

from leadflow.analytics.commands import (
    CommandRefused,
    EnterCampaignCost,
    EnteredCost,
    RebuildProjections,
    RemoveCampaignCost,
    decide_enter_cost,
    decide_rebuild,
    decide_remove_cost,
)
from leadflow.analytics.projections import PROJECTION_NAMES


def march(first: int, last: int) -> EnterCampaignCost:
    return EnterCampaignCost(
        campaign="spring",
        channel="web_form",
        period_start=date(2025, 3, first),
        period_end=date(2025, 3, last),
        amount=1200.0,
        currency="EUR",
    )


def test_a_cost_for_days_nobody_entered_is_accepted() -> None:
    entered = [EnteredCost(1, date(2025, 2, 1), date(2025, 2, 28))]
    assert decide_enter_cost(march(1, 31), entered) is None  # no refusal
    assert decide_enter_cost(march(1, 31), []) is None


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2025, 3, 31), date(2025, 4, 30)), (date(2025, 2, 1), date(2025, 3, 1))],
)
def test_a_cost_sharing_even_one_day_with_an_entered_one_is_refused(start: date, end: date) -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_enter_cost(march(1, 31), [EnteredCost(7, start, end)])
    assert refused.value.status == 409
    assert refused.value.extra == {"existing_id": 7}
    assert refused.value.errors == [{"field": "period_start", "message": "overlaps cost 7"}]
    assert "delete it first" in refused.value.detail


def test_the_clash_named_is_the_earliest_entered_cost() -> None:
    entered = [
        EnteredCost(9, date(2025, 3, 10), date(2025, 3, 12)),
        EnteredCost(4, date(2025, 3, 20), date(2025, 3, 25)),
    ]
    with pytest.raises(CommandRefused) as refused:
        decide_enter_cost(march(1, 31), entered)
    assert refused.value.extra == {"existing_id": 4}


def test_a_period_that_ends_before_it_starts_is_refused_naming_the_field() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_enter_cost(march(20, 10), [])
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "period_end"


def test_removing_a_cost_that_is_not_there_is_refused() -> None:
    decide_remove_cost(RemoveCampaignCost(3), EnteredCost(3, date(2025, 3, 1), date(2025, 3, 2)))
    with pytest.raises(CommandRefused) as refused:
        decide_remove_cost(RemoveCampaignCost(3), None)
    assert refused.value.status == 404
    assert refused.value.errors == [{"field": "cost_id", "message": "not found"}]


def test_rebuilding_one_projection_replays_its_whole_group() -> None:
    assert decide_rebuild(RebuildProjections("velocity"), PROJECTION_NAMES, []) == tuple(
        PROJECTION_NAMES
    )


def test_a_rebuild_of_an_unknown_projection_or_while_one_runs_is_refused() -> None:
    with pytest.raises(CommandRefused) as unknown:
        decide_rebuild(RebuildProjections("nope"), PROJECTION_NAMES, [])
    assert unknown.value.status == 404
    assert unknown.value.errors[0]["field"] == "name"
    with pytest.raises(CommandRefused) as running:
        decide_rebuild(RebuildProjections("funnel"), PROJECTION_NAMES, ["funnel", "reps"])
    assert running.value.status == 409
