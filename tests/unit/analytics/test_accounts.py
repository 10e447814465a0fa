"""Accounts and buying groups (issue 30), pure: roles, the account page and waterfall,
new business against expansion — exact figures on a scripted buying group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from leadflow.analytics.accounts import (
    AccountReach,
    Role,
    account_view,
    account_waterfall,
    fold_person,
    infer_role,
    revenue_split,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACME = {"account_id": "acct-acme", "domain": "acme.com", "name": "Acme", "registered": True}


@pytest.mark.parametrize(
    ("title", "answers", "role"),
    [
        ("Chief Financial Officer", {}, Role.DECISION_MAKER),
        ("VP Engineering", {}, Role.DECISION_MAKER),
        ("Project Coordinator", {"authority": "Yes, I sign off"}, Role.DECISION_MAKER),
        ("Project Coordinator", {"authority": "No"}, Role.USER),
        ("IT Manager", {"timeframe": "this quarter"}, Role.CHAMPION),
        ("Head of Operations", {"budget": "50k"}, Role.CHAMPION),
        ("Director of Operations", {}, Role.INFLUENCER),
        ("IT Manager", {"timeframe": "n/a"}, Role.INFLUENCER),
        ("Solutions Architect", {}, Role.INFLUENCER),
        ("Support Agent", {}, Role.USER),
        (None, {}, Role.USER),
    ],
)
def test_roles_are_inferred_from_title_seniority_and_answers(
    title: str | None, answers: dict[str, str], role: Role
) -> None:
    assert infer_role(title, None, answers)[0] is role


def test_an_explicit_seniority_wins_over_the_title() -> None:
    assert infer_role("Coordinator", "vp", {})[0] is Role.DECISION_MAKER


def _events(title: str, *rest: tuple[str, dict[str, Any]], answers: dict[str, str] | None = None):
    captured = {"contact": {"title": title, "company": "Acme"}, "account": ACME}
    if answers:
        captured["answers"] = answers
    out = [("lead.captured", T0, captured)]
    for i, (event_type, payload) in enumerate(rest, start=1):
        out.append((event_type, T0 + timedelta(hours=i), payload))
    return out


def _buying_group() -> list[Any]:
    scored = lambda fit, eng: ("lead.scored", {"fit": fit, "engagement": eng, "grade": "A"})  # noqa: E731
    cfo = fold_person(
        "l1",
        _events(
            "Chief Financial Officer",
            scored(80.0, 40.0),
            ("lead.qualified", {"lead": {"seniority": "c_level"}}),
            ("lead.assigned", {"rep_id": "rep-7", "method": "account_owner"}),
            ("lead.accepted", {}),
            ("lead.sales_qualified", {}),
            ("opportunity.opened", {"amount": "50000", "currency": "EUR"}),
            ("deal.won", {"amount": "50000", "currency": "EUR"}),
        ),
    )
    champion = fold_person(
        "l2",
        _events(
            "IT Manager",
            scored(60.0, 55.0),
            ("lead.qualified", {}),
            ("lead.assigned", {"rep_id": "rep-7", "method": "account_owner"}),
            ("lead.accepted", {}),
            ("lead.sales_qualified", {}),
            ("opportunity.opened", {"amount": "8000", "currency": "EUR"}),
            answers={"timeframe": "this quarter"},
        ),
    )
    influencer = fold_person(
        "l3", _events("Director of Operations", ("activity.recorded", {}), scored(50.0, 15.0))
    )
    user = fold_person("l4", _events("Support Agent", scored(20.0, 5.0)))
    return [user, influencer, champion, cfo]


def test_the_account_page_shows_the_buying_group_with_roles_stages_and_money() -> None:
    view = account_view("acme.com", _buying_group())
    people = {p["lead_id"]: p for p in view["people"]}
    assert [p["lead_id"] for p in view["people"]] == ["l2", "l1", "l3", "l4"]  # by engagement
    assert {k: (p["role"], p["stage"]) for k, p in people.items()} == {
        "l1": ("decision_maker", "won"),
        "l2": ("champion", "opportunity"),
        "l3": ("influencer", "inquiry"),
        "l4": ("user", "inquiry"),
    }
    assert view["roles"] == {"decision_maker": 1, "champion": 1, "influencer": 1, "user": 1}
    assert people["l3"]["activities"] == 1 and people["l3"]["engagement"] == 15.0
    assert view["account_id"] == "acct-acme" and view["registered"] is True
    assert view["owner_rep_id"] == "rep-7"
    assert view["customer_status"] == "customer"
    assert view["open_opportunities"] == [
        {"lead_id": "l2", "amount": "8000", "currency": "EUR",
         "opened_at": (T0 + timedelta(hours=6)).isoformat()}
    ]  # fmt: skip
    assert view["won_revenue"] == [{"currency": "EUR", "amount": "50000"}]


def test_an_account_without_a_win_is_a_prospect() -> None:
    view = account_view("acme.com", _buying_group()[:3])
    assert view["customer_status"] == "prospect" and view["won_revenue"] == []


def test_the_account_waterfall_counts_each_account_once_per_stage() -> None:
    reach = [
        # acme: four people, one won: one account at every stage, not four leads
        AccountReach("acme", True, True, True, True),
        AccountReach("acme", True, True, True, False),
        AccountReach("acme", True, False, False, False),
        AccountReach("acme", True, False, False, False),
        AccountReach("beta", True, True, False, False),
        AccountReach("beta", True, False, False, False),
        AccountReach("gamma", True, False, False, False),
        AccountReach("delta", True, True, True, False),
    ]
    assert account_waterfall(reach) == [
        {"stage": "engaged", "count": 4, "conversion": None},
        {"stage": "qualified", "count": 3, "conversion": 0.75},
        {"stage": "opportunity", "count": 2, "conversion": 0.6667},
        {"stage": "won", "count": 1, "conversion": 0.5},
    ]


def test_a_customer_accounts_later_wins_are_expansion_per_currency() -> None:
    deals = [
        # after acme's first win (a colleague's deal): expansion
        ("acme", T0 + timedelta(days=30), Decimal("10000"), "EUR", "new_business"),
        ("acme", T0, Decimal("50000"), "EUR", "new_business"),
        ("delta", T0 + timedelta(days=2), Decimal("2000.50"), "USD", "new_business"),
        ("acme", T0 + timedelta(days=40), Decimal("700"), "USD", "expansion"),
    ]
    assert revenue_split(deals) == [
        {"currency": "EUR", "new_business": "50000", "expansion": "10000",
         "new_business_deals": 1, "expansion_deals": 1},
        {"currency": "USD", "new_business": "2000.50", "expansion": "700",
         "new_business_deals": 1, "expansion_deals": 1},
    ]  # fmt: skip


def test_a_deal_won_in_an_expansion_cycle_is_expansion_even_as_the_accounts_first() -> None:
    # The account's first recorded deal, but the routing said it closed an expansion cycle
    # (a customer from before the data, say): expansion, never new business.
    deals = [("omega", T0, Decimal("300"), "USD", "expansion")]
    assert revenue_split(deals) == [
        {"currency": "USD", "new_business": "0", "expansion": "300",
         "new_business_deals": 0, "expansion_deals": 1},
    ]  # fmt: skip


WIN = [
    ("lead.qualified", {}),
    ("lead.accepted", {}),
    ("lead.sales_qualified", {}),
    ("opportunity.opened", {"amount": "50000", "currency": "EUR"}),
    ("deal.won", {"amount": "50000", "currency": "EUR", "cycle": "new_business"}),
    ("customer.became", {"cycle": "new_business"}),
]
EXPANSION_WIN = [
    ("inquiry.received", {}),
    ("expansion.opened", {"trigger": "hand_raise"}),
    ("lead.qualified", {"cycle": "expansion"}),
    ("lead.assigned", {"rep_id": "rep-7", "method": "account_owner", "cycle": "expansion"}),
    ("lead.accepted", {}),
    ("lead.sales_qualified", {}),
    ("opportunity.opened", {"amount": "12000", "currency": "EUR"}),
    ("deal.won", {"amount": "12000", "currency": "EUR", "cycle": "expansion"}),
    ("customer.became", {"cycle": "expansion"}),
]


def test_a_customer_and_its_expansion_on_the_account_page() -> None:
    customer = fold_person("c1", _events("Chief Financial Officer", *WIN, *EXPANSION_WIN[:5]))
    view = account_view("acme.com", [customer])
    [row] = view["people"]
    assert (row["stage"], row["cycle"], row["customer"]) == ("sal", "expansion", True)
    assert view["customer_status"] == "customer" and view["open_expansions"] == 1
    assert view["owner_rep_id"] == "rep-7"

    customer = fold_person("c1", _events("Chief Financial Officer", *WIN, *EXPANSION_WIN))
    view = account_view("acme.com", [customer])
    [row] = view["people"]
    assert (row["stage"], row["cycle"], row["customer"]) == ("customer", "expansion", True)
    assert view["open_expansions"] == 0
    assert view["won_revenue"] == [{"currency": "EUR", "amount": "62000"}]
    assert view["expansion_revenue"] == [{"currency": "EUR", "amount": "12000"}]


def test_churn_ends_the_accounts_customer_status() -> None:
    churned = fold_person(
        "c1", _events("Chief Financial Officer", *WIN, ("customer.churned", {"reason_code": "x"}))
    )
    prospect = fold_person("p2", _events("Support Agent"))
    view = account_view("acme.com", [churned, prospect])
    assert view["customer_status"] == "churned"
    assert {p["lead_id"]: p["stage"] for p in view["people"]} == {"c1": "churned", "p2": "inquiry"}
    # a colleague still a customer keeps the account a customer
    other = fold_person("c3", _events("VP Engineering", *WIN))
    assert account_view("acme.com", [churned, other])["customer_status"] == "customer"
