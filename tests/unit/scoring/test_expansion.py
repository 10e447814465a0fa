"""When a customer's new interest opens an expansion cycle (leadflow.scoring.expansion)."""

from __future__ import annotations

import pytest

from leadflow.scoring.expansion import (
    colleague_opens,
    expansion_trigger,
    is_hand_raise,
    is_win_back,
)


@pytest.mark.parametrize(
    "activity_type", ["inquiry", "demo_request", "Demo Requested", "contact_sales", "trial"]
)
def test_a_customers_hand_raise_opens_an_expansion(activity_type: str) -> None:
    assert is_hand_raise(activity_type)
    assert expansion_trigger("won", activity_type, None) == "hand_raise"
    assert expansion_trigger("won", activity_type, False) == "hand_raise"


def test_a_customers_engagement_opens_one_only_past_the_mql_bar() -> None:
    assert not is_hand_raise("page_view")
    assert expansion_trigger("won", "page_view", False) is None
    assert expansion_trigger("won", "page_view", None) is None
    assert expansion_trigger("won", "page_view", True) == "engagement"


@pytest.mark.parametrize("status", ["open", "lost", "churned", "history", "merged", "erased"])
def test_only_a_customer_opens_an_expansion(status: str) -> None:
    assert expansion_trigger(status, "demo_request", True) is None


def test_a_churned_customers_hand_raise_is_a_win_back_not_an_expansion() -> None:
    assert is_win_back("churned", "inquiry")
    assert is_win_back("churned", "demo_request")
    assert not is_win_back("churned", "page_view")
    assert not is_win_back("won", "inquiry")


def test_a_new_colleague_at_a_customer_account_opens_an_expansion() -> None:
    assert colleague_opens("open", "new_business", 0, account_is_customer=True)
    assert not colleague_opens("open", "new_business", 0, account_is_customer=False)
    assert not colleague_opens("open", "expansion", 1, account_is_customer=True)  # already
    assert not colleague_opens("won", "new_business", 0, account_is_customer=True)  # a customer
