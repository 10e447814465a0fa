"""New business against expansion, per buying cycle (analytics.cycles), exact figures on
scripted histories."""

from __future__ import annotations

from typing import Any

from leadflow.analytics.cycles import cycle_funnel, cycle_runs
from leadflow.events.lifecycle import Cycle

NEW_WIN = [
    ("lead.captured", {}),
    ("lead.qualified", {}),
    ("lead.accepted", {}),
    ("lead.sales_qualified", {}),
    ("opportunity.opened", {}),
    ("deal.won", {"amount": "10000.00", "currency": "USD"}),
    ("customer.became", {}),
]
EXPANSION_WIN = [
    ("inquiry.received", {}),
    ("expansion.opened", {}),
    ("lead.qualified", {}),
    ("lead.accepted", {}),
    ("lead.sales_qualified", {}),
    ("opportunity.opened", {}),
    ("deal.won", {"amount": "2500.00", "currency": "USD"}),
    ("customer.became", {}),
]
EXPANSION_LOST = [
    ("expansion.opened", {}),
    ("lead.qualified", {}),
    ("lead.accepted", {}),
    ("lead.sales_qualified", {}),
    ("opportunity.opened", {}),
    ("deal.lost", {}),
]


def _row(rows: list[dict[str, Any]], cycle: str) -> dict[str, Any]:
    return next(r for r in rows if r["cycle"] == cycle)


def test_a_customers_cycles_are_counted_apart_from_its_new_business() -> None:
    runs = cycle_runs([*NEW_WIN, *EXPANSION_WIN, *EXPANSION_LOST])
    assert [r.cycle for r in runs] == [Cycle.NEW_BUSINESS, Cycle.EXPANSION, Cycle.EXPANSION]
    assert [r.lost for r in runs] == [False, False, True]


def test_the_cycle_funnel_on_a_scripted_history() -> None:
    histories = [
        [*NEW_WIN, *EXPANSION_WIN, *EXPANSION_LOST],  # a customer: won, expanded twice
        [*NEW_WIN, *EXPANSION_WIN[:3]],  # a customer whose expansion is an MQL now
        [("lead.captured", {}), ("lead.qualified", {})],  # a prospect, MQL
        [*NEW_WIN, ("customer.churned", {}), ("inquiry.received", {})],  # churned, won back
        # a colleague at a customer account opens an expansion from inquiry
        [("lead.captured", {}), ("expansion.opened", {}), ("lead.qualified", {})],
        [*NEW_WIN, ("expansion.opened", {})],  # an expansion that has not qualified yet
    ]
    runs = [run for h in histories for run in cycle_runs(h)]
    rows = cycle_funnel(runs)
    new, expansion = _row(rows, "new_business"), _row(rows, "expansion")
    # new business: six first cycles, plus the win-back; four won
    assert new["cycles"] == 7
    assert [(s["stage"], s["count"], s["conversion"]) for s in new["stages"]] == [
        ("inquiry", 7, None),
        ("mql", 5, 0.7143),
        ("sal", 4, 0.8),
        ("sql", 4, 1.0),
        ("opportunity", 4, 1.0),
        ("won", 4, 1.0),
    ]
    assert new["won_revenue"] == [{"currency": "USD", "amount": "40000.00", "deals": 4}]
    assert new["lost"] == 0
    # expansion: five cycles (two of the first customer, one of the second, the colleague's,
    # the last customer's that waits at inquiry)
    assert expansion["cycles"] == 5
    assert [(s["stage"], s["count"]) for s in expansion["stages"]] == [
        ("inquiry", 5),
        ("mql", 4),
        ("sal", 2),
        ("sql", 2),
        ("opportunity", 2),
        ("won", 1),
    ]
    assert expansion["lost"] == 1
    assert expansion["won_revenue"] == [{"currency": "USD", "amount": "2500.00", "deals": 1}]
