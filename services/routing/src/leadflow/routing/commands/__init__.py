"""Routing's API actions as commands: dataclasses with pure ``decide`` functions; routes
parse, build a command, run it in a unit of work and map the result or the refusal
(``CommandRefused``) to HTTP.

``handoff``: sales' actions on a lead (accept ... recycle); ``reassign``: a sales manager's
reassignment (its decision shared with the SLA escalation handler); ``roster``: deleting
what the configuration may still use, and naming an account's owner; ``crm``: outcomes a
CRM reports (whether the lead already has one, a customer's churn).
"""

from leadflow.routing.commands.crm import RecordChurn, already_has, decide_churn
from leadflow.routing.commands.handoff import (
    Accept,
    HandOff,
    HandOffContext,
    HandOffDecision,
    Hold,
    OpenOpportunity,
    Qualify,
    RecordContact,
    RecordLoss,
    RecordWin,
    Recycle,
    Reject,
    WithReason,
    decide_handoff,
)
from leadflow.routing.commands.reassign import (
    Reassign,
    Reassignment,
    decide_escalation,
    decide_reassign,
)
from leadflow.routing.commands.roster import (
    RemoveFromRoster,
    SetAccountOwner,
    decide_account_owner,
    decide_removal,
)
from leadflow.routing.domain import CommandRefused

__all__ = [
    "Accept",
    "CommandRefused",
    "HandOff",
    "HandOffContext",
    "HandOffDecision",
    "Hold",
    "OpenOpportunity",
    "Qualify",
    "Reassign",
    "Reassignment",
    "RecordChurn",
    "RecordContact",
    "RecordLoss",
    "RecordWin",
    "Recycle",
    "Reject",
    "RemoveFromRoster",
    "SetAccountOwner",
    "WithReason",
    "already_has",
    "decide_account_owner",
    "decide_churn",
    "decide_escalation",
    "decide_handoff",
    "decide_reassign",
    "decide_removal",
]
