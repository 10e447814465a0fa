"""A manager's reassignment, an SLA escalation's and the roster commands, decided without a
database: who gets the lead, which loads move, what is refused and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.sla import EscalationRaised
from leadflow.events.lifecycle import Stage
from leadflow.routing.commands import (
    CommandRefused,
    Reassign,
    RemoveFromRoster,
    SetAccountOwner,
    decide_account_owner,
    decide_escalation,
    decide_reassign,
    decide_removal,
)
from leadflow.routing.domain import (
    LeadRow,
    LiveState,
    Queue,
    Rep,
    Roster,
    Rule,
    RuleSet,
    Target,
    Team,
)
from leadflow.routing.store import Config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
LEAD = uuid.UUID("0190f5b6-0000-7000-8000-0000000000aa")
ROSTER = Roster.of(
    [Rep(id="ana", team_id="na"), Rep(id="bob", team_id="na"), Rep(id="cy", team_id="na")],
    [Team(id="na", queue_id="na-q")],
    [Queue(id="na-q", team_id="na")],
    {"acme.com": "cy"},
)
RULES = RuleSet(
    version=3,
    rules=[Rule(id="all", target=Target(kind="team", team_id="na"))],
    default_queue_id="na-q",
)
CONFIG = Config(7, ROSTER, RULES)


def _lead(rep: str = "ana", excluded: list[str] | None = None) -> LeadRow:
    return LeadRow(
        lead_id=LEAD,
        stage=Stage.SAL,
        held_from=None,
        cycle=1,
        snapshot=LeadSnapshot(country="US"),
        assignee_kind="rep",
        rep_id=rep,
        team_id="na",
        queue_id=None,
        excluded_reps=excluded or [],
        assigned_at=NOW,
        opportunity_id=None,
        amount=None,
        currency=None,
    )


def test_a_manager_reassignment_moves_the_loads_and_lifts_the_chosen_reps_exclusion() -> None:
    loads = LiveState(open_counts={"ana": 3, "bob": 1})
    done = decide_reassign(
        Reassign(LEAD, "bob", "ana is away"), _lead(excluded=["bob", "cy"]), CONFIG, loads, NOW
    )
    assert loads.open_counts == {"ana": 2, "bob": 2}
    assert done.lead.rep_id == "bob" and done.lead.excluded_reps == ["cy"]
    assert done.event.from_rep_id == "ana" and done.event.method == "manual"
    assert done.explanation["by"] == "sales manager"


def test_a_manager_cannot_reassign_to_the_current_owner() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_reassign(Reassign(LEAD, "ana", "x"), _lead(), CONFIG, LiveState(), NOW)
    assert (refused.value.status, refused.value.title) == (409, "Cannot reassign")
    assert refused.value.errors[0]["field"] == "rep_id"


def _escalation(rep: str | None) -> EscalationRaised:
    return EscalationRaised(sla_id="s1", policy_id="p", step=2, action="reassign", rep_id=rep)


def test_an_escalation_reassigns_away_from_the_breacher_and_remembers_the_exclusion() -> None:
    done = decide_escalation(_escalation("ana"), _lead(), CONFIG, LiveState(), NOW)
    assert done is not None
    assert done.lead.rep_id in {"bob", "cy"} and done.lead.excluded_reps == ["ana"]
    assert done.event.sla_id == "s1" and done.event.reason.startswith("SLA escalation step 2:")
    assert done.explanation["escalation_step"] == 2


def test_a_late_escalation_for_a_former_owner_leaves_the_lead_alone() -> None:
    assert decide_escalation(_escalation("bob"), _lead("ana"), CONFIG, LiveState(), NOW) is None


def test_removing_what_is_still_used_is_refused_naming_every_use() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_removal(RemoveFromRoster("rep", "cy"), RULES, ROSTER, [LEAD])
    assert refused.value.status == 409 and refused.value.title == "Rep in use"
    fields = [e["field"] for e in refused.value.errors]
    assert fields == ["accounts[acme.com]", "leads"]


def test_removing_an_unused_rep_is_allowed() -> None:
    assert decide_removal(RemoveFromRoster("rep", "bob"), RULES, ROSTER, []) is None


def test_a_queue_used_by_a_team_and_as_default_is_refused() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_removal(RemoveFromRoster("queue", "na-q"), RULES, ROSTER, [])
    assert [e["field"] for e in refused.value.errors] == ["default_queue_id", "teams[na].queue_id"]


def test_an_account_owner_must_be_a_known_rep() -> None:
    assert decide_account_owner(SetAccountOwner("ACME.com", "bob"), ROSTER) == "acme.com"
    with pytest.raises(CommandRefused) as refused:
        decide_account_owner(SetAccountOwner("acme.com", "zed"), ROSTER)
    assert refused.value.errors == [{"field": "rep_id", "message": "unknown rep"}]
