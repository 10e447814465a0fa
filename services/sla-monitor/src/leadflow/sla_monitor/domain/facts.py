"""What sla-monitor knows about a lead (segment and owner), learnt from the events it reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned, LeadReassigned
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.envelope import EventPayload

if TYPE_CHECKING:
    from leadflow.sla_monitor.domain.policies import SlaPolicy


@dataclass(frozen=True)
class LeadFacts:
    """What sla-monitor knows about a lead: its segment and current owner."""

    grade: str | None = None
    region: str | None = None
    country: str | None = None
    channel: str | None = None
    rep_id: str | None = None
    team_id: str | None = None


def facts_after(facts: LeadFacts, payload: EventPayload) -> LeadFacts:
    """What an event teaches us about a lead's segment and owner (others leave it unchanged)."""
    snapshot: LeadSnapshot | None = getattr(payload, "lead", None)
    updates: dict[str, str | None] = {}
    if isinstance(snapshot, LeadSnapshot):
        for name in ("grade", "region", "country", "channel"):
            value = getattr(snapshot, name)
            if value is not None:
                updates[name] = value
    if isinstance(payload, LeadQualified):
        updates["grade"] = payload.grade
    if isinstance(payload, LeadAssigned | LeadReassigned):
        updates["rep_id"] = payload.rep_id
        updates["team_id"] = payload.team_id
    elif isinstance(payload, LeadAccepted):
        updates["rep_id"] = payload.rep_id
    return replace(facts, **updates) if updates else facts


def already_ended(
    policy: SlaPolicy, started_at: datetime, seen: Mapping[str, datetime]
) -> tuple[Literal["met", "stopped"], str, datetime] | None:
    """Did an event that ends this policy already happen at or after its start?

    Producers' topics are not ordered against each other: routing's ``lead.assigned`` can be
    consumed before scoring's ``lead.qualified`` that caused it. A clock whose ending we
    already saw is closed at once instead of breaching for nothing.
    """
    best: tuple[Literal["met", "stopped"], str, datetime] | None = None
    for kind, events in (("met", policy.met_on), ("stopped", policy.stop_on)):
        for event_type in events:
            at = seen.get(event_type)
            if at is not None and at >= started_at and (best is None or at < best[2]):
                best = (kind, event_type, at)  # type: ignore[assignment]
    return best
