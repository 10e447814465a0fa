"""A CRM's outcomes decided without a database: which outcome a lead already has (so a
redelivery is recorded once) and a customer's churn."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.lifecycle import Cycle, Stage, TransitionRefused
from leadflow.routing.commands import RecordChurn, already_has, decide_churn
from leadflow.routing.domain import LeadRow

LEAD = uuid.UUID("0190f5b6-0000-7000-8000-0000000000cc")
ROW = LeadRow(
    lead_id=LEAD,
    stage=Stage.CUSTOMER,
    held_from=None,
    cycle=1,
    snapshot=LeadSnapshot(account_id="initech"),
    assignee_kind="rep",
    rep_id="bo",
    team_id=None,
    queue_id=None,
    excluded_reps=[],
    assigned_at=None,
    opportunity_id="opp-1",
    amount=None,
    currency="USD",
)


@pytest.mark.parametrize(
    ("stage", "cycle", "outcome", "has"),
    [
        (Stage.CUSTOMER, Cycle.NEW_BUSINESS, "won", True),
        (Stage.WON, Cycle.NEW_BUSINESS, "won", True),
        (Stage.OPPORTUNITY, Cycle.NEW_BUSINESS, "won", False),
        (Stage.LOST, Cycle.NEW_BUSINESS, "lost", True),
        (Stage.CUSTOMER, Cycle.EXPANSION, "lost", True),  # a lost expansion ends as a customer
        (Stage.CUSTOMER, Cycle.NEW_BUSINESS, "lost", False),
        (Stage.OPPORTUNITY, Cycle.NEW_BUSINESS, "opportunity", True),
        (Stage.CHURNED, Cycle.NEW_BUSINESS, "churned", True),
    ],
)
def test_an_outcome_the_lead_already_has_is_a_repeat(
    stage: Stage, cycle: Cycle, outcome: str, has: bool
) -> None:
    assert already_has(replace(ROW, stage=stage, buying_cycle=cycle), outcome) is has  # type: ignore[arg-type]


def test_a_customer_churns_with_the_crms_reason_and_account() -> None:
    after, churned = decide_churn(RecordChurn(LEAD, "budget cut", "salesforce"), ROW)
    assert after.stage is Stage.CHURNED
    assert (churned.reason_code, churned.account_id, churned.source_system) == (
        "budget cut",
        "initech",
        "salesforce",
    )


def test_only_a_customer_can_churn() -> None:
    with pytest.raises(TransitionRefused):
        decide_churn(RecordChurn(LEAD), replace(ROW, stage=Stage.SAL))
