"""Outcomes a CRM reports (``crm.py``'s ``POST /v1/routing/crm/events``), decided purely:
whether the lead already has the outcome (a redelivery, or a rep was first: recorded once),
and the churn of a customer, which only the CRM reports. The other outcomes are recorded by
the hand-off commands a rep would have used (``handoff``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from leadflow.events.catalogue.routing import CustomerChurned
from leadflow.events.lifecycle import CUSTOMER_STAGES, Cycle, LeadLifecycle, Stage
from leadflow.routing.domain import LeadRow

Outcome = Literal["opportunity", "won", "lost", "churned"]


def already_has(lead: LeadRow, outcome: Outcome) -> bool:
    """Whether the lead already has ``outcome``: a win leaves a customer (``won`` or
    ``customer``), a lost expansion leaves a customer too (the cycle ended)."""
    if outcome == "won":
        return lead.stage in CUSTOMER_STAGES
    if outcome == "lost":
        expansion_ended = lead.stage is Stage.CUSTOMER and lead.buying_cycle is Cycle.EXPANSION
        return lead.stage is Stage.LOST or expansion_ended
    target = {"opportunity": Stage.OPPORTUNITY, "churned": Stage.CHURNED}[outcome]
    return lead.stage is target


@dataclass(frozen=True)
class RecordChurn:
    """The customer left, says the CRM (``reason`` in its words, ``source_system`` its name)."""

    lead_id: uuid.UUID
    reason: str | None = None
    source_system: str | None = None


def decide_churn(cmd: RecordChurn, lead: LeadRow) -> tuple[LeadLifecycle, CustomerChurned]:
    """``customer.churned`` and the lifecycle after it: the lifecycle refuses it
    (``TransitionRefused``, 409) for a lead that is not a customer; an open expansion cycle
    ends with it, so the lead leaves its rep's queue."""
    after = lead.lifecycle.apply(CustomerChurned.event_type)
    churned = CustomerChurned(
        reason_code=cmd.reason, account_id=lead.snapshot.account_id, source_system=cmd.source_system
    )
    return after, churned
