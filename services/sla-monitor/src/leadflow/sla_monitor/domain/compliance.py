"""Compliance arithmetic: an SLA's verdict and the figures the compliance report shows."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    status: str
    on_time: bool | None
    elapsed_seconds: float | None
    elapsed_business_seconds: float | None
    breached: bool = False  # the deadline passed unmet at some point (breached_at is set)


def verdict(o: Outcome) -> str | None:
    """An SLA's verdict, counted once per SLA: ``on_time`` (met by the deadline), ``late``
    (breached, whatever came after: met late, stopped by a reassignment, still open), or
    None (still running, or stopped before its deadline). docs/metrics.md, "SLA compliance";
    analytics counts the same verdicts from the events."""
    if o.status == "met" and o.on_time:
        return "on_time"
    if o.breached or (o.status == "met" and not o.on_time) or o.status == "breached":
        return "late"
    return None


def compliance(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Met-on-time % = on time / SLAs with a verdict; medians over met ones."""
    verdicts = [verdict(o) for o in outcomes]
    met_on_time = verdicts.count("on_time")
    late = verdicts.count("late")
    met_late = sum(1 for o in outcomes if o.status == "met" and not o.on_time)
    breached_open = sum(1 for o in outcomes if o.status == "breached")
    breached_stopped = sum(1 for o in outcomes if o.status == "stopped" and o.breached)
    running = sum(1 for o in outcomes if o.status == "open")
    stopped = sum(1 for o in outcomes if o.status == "stopped")
    decided = met_on_time + late
    elapsed = [
        o.elapsed_seconds for o in outcomes if o.status == "met" and o.elapsed_seconds is not None
    ]
    business = [
        o.elapsed_business_seconds
        for o in outcomes
        if o.status == "met" and o.elapsed_business_seconds is not None
    ]
    return {
        "total": len(outcomes),
        "met_on_time": met_on_time,
        "met_late": met_late,
        "breached_open": breached_open,
        "breached_stopped": breached_stopped,
        "late": late,
        "open": running,
        "stopped": stopped,
        "met_on_time_pct": round(100.0 * met_on_time / decided, 2) if decided else None,
        "median_elapsed_seconds": statistics.median(elapsed) if elapsed else None,
        "median_elapsed_business_seconds": statistics.median(business) if business else None,
    }
