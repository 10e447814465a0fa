"""Reassignments of an open lead, decided purely: a sales manager's (the ``Reassign``
command, ``POST /v1/leads/{id}/reassign``) and an SLA escalation's (``escalation.raised``
with action ``reassign``, handled by ``handlers``). Both come to a ``Reassignment``: the new
owner, the lead row after, the ``lead.reassigned`` fact and the explanation the assignment
API lists; ``handlers.record_reassignment`` writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.events.catalogue.routing import LeadReassigned
from leadflow.events.catalogue.sla import EscalationRaised
from leadflow.routing.assignment import owned, released, rep_skips, who_to_tell
from leadflow.routing.domain import (
    LeadRow,
    LiveState,
    Placement,
    choose_assignee,
    manual_reassignment,
)
from leadflow.routing.store import Config


@dataclass(frozen=True)
class Reassignment:
    """What a reassignment does: ``lead`` is the row after it, ``event`` the fact appended,
    ``explanation`` the decision as the assignment API lists it."""

    decision: Placement
    lead: LeadRow
    event: LeadReassigned
    explanation: Mapping[str, Any]


@dataclass(frozen=True)
class Reassign:
    """A sales manager hands the open lead ``lead_id`` to ``rep_id``, saying why."""

    lead_id: uuid.UUID
    rep_id: str
    reason: str


def decide_reassign(
    cmd: Reassign, lead: LeadRow, config: Config, loads: LiveState, now: datetime
) -> Reassignment:
    """The manager's choice, checked by ``manual_reassignment`` (raises ``ReassignRefused``,
    a ``CommandRefused``); ``loads`` move on as with any decision. The chosen rep's SLA
    exclusion on this lead is lifted: the manager's word overrides it."""
    decision = manual_reassignment(
        in_sales=lead.in_sales,
        stage=lead.stage.value if lead.stage else None,
        current_rep_id=lead.rep_id,
        rep_id=cmd.rep_id,
        reason=cmd.reason,
        roster=config.roster,
        rules=config.rules,
        state=loads.view(),
        now=now,
    )
    loads.record(decision, config.roster, now, released=released(lead))
    excluded = [r for r in lead.excluded_reps if r != cmd.rep_id]
    event = LeadReassigned(
        from_rep_id=lead.rep_id,
        assignee_kind=decision.assignee_kind,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        queue_id=decision.queue_id,
        reason=decision.reason,
        lead=lead.snapshot,
        method=decision.method,
        **who_to_tell(decision, config.roster),
    )
    explanation = {**decision.explanation(), "from_rep_id": lead.rep_id, "by": "sales manager"}
    return Reassignment(
        decision, owned(lead, decision, now, excluded_reps=excluded), event, explanation
    )


def decide_escalation(
    escalation: EscalationRaised, lead: LeadRow, config: Config, loads: LiveState, now: datetime
) -> Reassignment | None:
    """An SLA escalation's reassignment: the rules decide again without the rep who breached
    (nor any rep excluded before). None when the escalation names a rep who no longer owns
    the lead — a late step of an old clock: the new owner breached nothing and keeps it."""
    if escalation.rep_id is not None and lead.rep_id not in (None, escalation.rep_id):
        return None
    breacher = escalation.rep_id or lead.rep_id
    excluded = frozenset(lead.excluded_reps) | ({breacher} if breacher else set())
    decision = choose_assignee(
        lead.snapshot, config.rules, config.roster, loads.view(), now, exclude=excluded
    )
    loads.record(decision, config.roster, now, released=released(lead))
    event = LeadReassigned(
        from_rep_id=lead.rep_id,
        assignee_kind=decision.assignee_kind,
        rep_id=decision.rep_id,
        team_id=decision.team_id,
        queue_id=decision.queue_id,
        reason=f"SLA escalation step {escalation.step}: {decision.reason}",
        sla_id=escalation.sla_id,
        lead=lead.snapshot,
        rule_id=decision.rule_id,
        method=decision.method,
        skipped_reps=rep_skips(decision),
        **who_to_tell(decision, config.roster),
    )
    # The assignment API lists it among the lead's decisions, with why it happened.
    explanation = {
        **decision.explanation(),
        "from_rep_id": lead.rep_id,
        "sla_id": escalation.sla_id,
        "escalation_step": escalation.step,
    }
    after = owned(lead, decision, now, excluded_reps=sorted(excluded))
    return Reassignment(decision, after, event, explanation)
