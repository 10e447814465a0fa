"""A lead's history as stays: the pure walk the process map and the audit are computed from.

The map and the audit answer questions the per-day projection tables cannot (why did a lead
leave a stage, how long after qualifying was it first contacted, did a recycled lead come
back), so they read the events of the leads active in a period from the log and walk each
lead here. Analytics never refuses a move (see ``domain``): the walk follows the kernel's
lifecycle table leniently, like the projections' fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.analytics.domain import cycle_after, source_of, stage_entered
from leadflow.analytics.segments import UNKNOWN
from leadflow.events.lifecycle import Cycle

# A stage's way forward (anything else a lead leaves it for is leakage). Hold resumes are
# forward moves too (back into the stage it was held from, or onwards).
FORWARD: Mapping[str, frozenset[str]] = {
    "inquiry": frozenset({"mql", "nurture"}),
    "nurture": frozenset({"mql"}),
    "mql": frozenset({"sal"}),
    "sal": frozenset({"sql"}),
    "sql": frozenset({"opportunity"}),
    "opportunity": frozenset({"won"}),
    "on_hold": frozenset({"inquiry", "mql", "sal", "sql", "opportunity", "won"}),
}
# A sales-side hand-back (the recycle loop the return rate measures).
RECYCLE_EVENTS = frozenset({"lead.recycled", "lead.rejected"})
# Events a rep records on a lead: the evidence of a rep's activity.
REP_ACTIVITY = frozenset(
    {
        "lead.accepted",
        "lead.rejected",
        "lead.contacted",
        "lead.sales_qualified",
        "opportunity.opened",
        "deal.won",
        "deal.lost",
        "lead.recycled",
        "lead.put_on_hold",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One logged event of one lead (what the walk needs of it)."""

    lead_id: str
    event_type: str
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stay:
    """A lead's time in one stage: entered by one event, left by another (or still there)."""

    lead_id: str
    stage: str
    entered_at: datetime
    left_at: datetime | None = None
    left_by: str | None = None  # the event type that moved the lead out
    left_to: str | None = None
    reason: str | None = None  # the reason code / reason the leaving event gave

    @property
    def leaked(self) -> bool:
        """Left without moving on (only stages with a way forward can leak)."""
        forward = FORWARD.get(self.stage)
        return forward is not None and self.left_to is not None and self.left_to not in forward

    def seconds(self, until: datetime | None = None) -> float | None:
        end = self.left_at or until
        if end is None:
            return None
        return max(0.0, (end - self.entered_at).total_seconds())


@dataclass(slots=True)
class LeadWalk:
    """Everything the map and the audit need about one lead."""

    lead_id: str
    channel: str = UNKNOWN
    stays: list[Stay] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rep_id: str | None = None  # the rep who owns the lead at the end of the walk

    @property
    def stage(self) -> str | None:
        return self.stays[-1].stage if self.stays else None


def reason_of(event: Event) -> str:
    """``event_type`` or ``event_type:reason`` (a rejection's reason code, a hold's reason)."""
    p = event.payload
    reason = p.get("reason_code") or p.get("reason")
    return f"{event.event_type}:{reason}" if reason else event.event_type


def walk(lead_id: str, events: Iterable[Event]) -> LeadWalk:
    """Fold one lead's events (in occurred order) into stays."""
    lead = LeadWalk(lead_id)
    open_stay: Stay | None = None
    cycle = Cycle.NEW_BUSINESS.value
    for e in sorted(events, key=lambda x: x.occurred_at):
        lead.events.append(e)
        if e.event_type == "lead.captured" and lead.channel == UNKNOWN:
            lead.channel = source_of(e.payload)[0]
        if e.event_type in ("lead.assigned", "lead.reassigned"):
            lead.rep_id = e.payload.get("rep_id") or None
        elif e.event_type in REP_ACTIVITY and e.payload.get("rep_id") and lead.rep_id is None:
            lead.rep_id = str(e.payload["rep_id"])
        current = open_stay.stage if open_stay else None
        target = stage_entered(e.event_type, current, cycle)
        cycle = cycle_after(e.event_type, current, cycle)
        if target is None or target == current:
            continue
        if open_stay is not None:
            lead.stays[-1] = Stay(
                lead_id,
                open_stay.stage,
                open_stay.entered_at,
                e.occurred_at,
                e.event_type,
                target,
                reason_of(e),
            )
        open_stay = Stay(lead_id, target, e.occurred_at)
        lead.stays.append(open_stay)
    return lead


def walk_all(events: Sequence[Event]) -> list[LeadWalk]:
    """Walk every lead of a period's events (grouped by lead, each lead's order kept)."""
    by_lead: dict[str, list[Event]] = {}
    for e in events:
        by_lead.setdefault(e.lead_id, []).append(e)
    return [walk(lead_id, evs) for lead_id, evs in by_lead.items()]


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)``; ``None`` = open on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def holds(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def p90(values: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile (an observed value, so a reader can find the lead)."""
    if not values:
        return None
    s = sorted(values)
    rank = -(-9 * len(s) // 10)  # ceil(0.9 n)
    return s[max(rank, 1) - 1]


def share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None
