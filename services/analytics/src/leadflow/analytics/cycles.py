"""Buying cycles measured apart (issue 30; pure, no I/O): new business against expansion.

The kernel's lifecycle carries a cycle (``leadflow.events.lifecycle.Cycle``). A lead runs one
new-business cycle from its first hand-raise (and another after a win-back from lost,
disqualified or churned); every ``expansion.opened`` starts an expansion cycle of a
customer, re-running ``inquiry → mql → sal → sql → opportunity → won``. This module folds each
lead's stage-moving events with the kernel's table and counts, per cycle kind, how many
cycles reached each milestone (a later milestone implies the earlier ones, as in the funnel),
how many ended lost, and the revenue they won per currency (never summed across
currencies). The projections' funnel counts new business only (a lead's milestones by its
inquiry cohort); this is where expansion is counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from leadflow.events.lifecycle import (
    REENGAGEABLE_STAGES,
    Cycle,
    LeadLifecycle,
    Stage,
    TransitionRefused,
)

MILESTONES: tuple[str, ...] = ("inquiry", "mql", "sal", "sql", "opportunity", "won")
_HAND_RAISES = frozenset({"lead.captured", "inquiry.received"})


@dataclass
class CycleRun:
    """One buying cycle of one lead."""

    cycle: Cycle
    reached: set[str] = field(default_factory=set)
    lost: bool = False
    won: list[tuple[Decimal, str]] = field(default_factory=list)

    def reach(self, stage: str) -> None:
        if stage in MILESTONES:
            self.reached.update(MILESTONES[: MILESTONES.index(stage) + 1])


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


def cycle_runs(events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[CycleRun]:
    """One lead's cycles from its events ``(event_type, payload)`` in order. A move the
    table refuses (producers' events can arrive out of causal order) is skipped."""
    state = LeadLifecycle()
    runs: list[CycleRun] = []
    for event_type, payload in events:
        before = state
        try:
            state = state.apply(event_type)
        except TransitionRefused:
            continue
        starts = event_type == "expansion.opened" and state != before
        if event_type in _HAND_RAISES and (
            before.stage is None or before.stage in REENGAGEABLE_STAGES
        ):
            starts = True
        if starts:
            runs.append(CycleRun(state.cycle))
            runs[-1].reach(Stage.INQUIRY.value)  # every cycle starts with a hand raised
        if not runs:
            continue
        run = runs[-1]
        if state.stage is not None and state.stage != before.stage:
            run.reach(state.stage.value)
        if event_type == "deal.won":
            run.reach(Stage.WON.value)
            run.won.append((_money(payload.get("amount")), str(payload.get("currency") or "USD")))
        elif event_type == "deal.lost":
            run.lost = True
    return runs


def cycle_funnel(runs: Sequence[CycleRun]) -> list[dict[str, Any]]:
    """Per cycle kind (new business, expansion): cycles run, each milestone's count and
    conversion from the one before, cycles lost, and won revenue per currency."""
    out = []
    for kind in Cycle:
        mine = [r for r in runs if r.cycle is kind]
        stages = []
        previous: int | None = None
        for milestone in MILESTONES:
            count = sum(1 for r in mine if milestone in r.reached)
            conversion = round(count / previous, 4) if previous else None
            stages.append({"stage": milestone, "count": count, "conversion": conversion})
            previous = count
        totals: dict[str, Decimal] = {}
        deals: dict[str, int] = {}
        for r in mine:
            for amount, currency in r.won:
                totals[currency] = totals.get(currency, Decimal(0)) + amount
                deals[currency] = deals.get(currency, 0) + 1
        out.append(
            {
                "cycle": kind.value,
                "cycles": len(mine),
                "stages": stages,
                "lost": sum(1 for r in mine if r.lost),
                "won_revenue": [
                    {"currency": c, "amount": str(totals[c]), "deals": deals[c]}
                    for c in sorted(totals)
                ],
            }
        )
    return out
