"""Routing's batch handler decided without a database: a consumer batch folded through the
kernel's pure ``decide_each`` on plain lead rows and a plain configuration — fair shares
across one batch, caps freed by leads leaving sales within it, one assignment per cycle."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from leadflow.events.batch import decide_each
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadQualified, NurtureEnrolled
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.lifecycle import Stage
from leadflow.routing.assignment import AssignContext, Assignment, decide_assignment
from leadflow.routing.domain import LeadRow, LiveState, Rep, Roster, Rule, RuleSet, Target, Team
from leadflow.routing.store import Config, ConfigCache

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
US = LeadSnapshot(country="US", grade="A")
ROSTER = Roster.of(
    [Rep(id="a", team_id="na", weight=3), Rep(id="b", team_id="na"), Rep(id="c", team_id="na")],
    [Team(id="na", queue_id="na-q")],
)
RULES = RuleSet(
    version=2,
    rules=[Rule(id="na", when={"country": ["US"]}, target=Target(kind="team", team_id="na"))],
)
HANDLER = Assignment(ConfigCache())


def _ctx(roster: Roster = ROSTER, loads: LiveState | None = None) -> AssignContext:
    return AssignContext(now=NOW, config=Config(1, roster, RULES), loads=loads or LiveState())


def _row(lead_id: uuid.UUID, stage: Stage | None = None, rep: str | None = None) -> LeadRow:
    return LeadRow(
        lead_id=lead_id,
        stage=stage,
        held_from=None,
        cycle=1 if stage else 0,
        snapshot=LeadSnapshot(),
        assignee_kind="rep" if rep else None,
        rep_id=rep,
        team_id="na" if rep else None,
        queue_id=None,
        excluded_reps=[],
        assigned_at=None,
        opportunity_id=None,
        amount=None,
        currency=None,
    )


def _qualified(lead_id: uuid.UUID) -> Envelope:
    payload = LeadQualified(
        fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1, lead=US
    )
    return Envelope.new(payload, lead_id=lead_id)


def test_a_batch_of_500_spreads_by_weight_as_sequential_decisions_would() -> None:
    ids = [new_id() for _ in range(500)]
    ctx = _ctx()
    outcome = decide_each(HANDLER, {i: _row(i) for i in ids}, [_qualified(i) for i in ids], ctx)
    owners = Counter(row.rep_id for row in outcome.changed.values())
    assert owners == {"a": 300, "b": 100, "c": 100}
    assert ctx.loads is not None and ctx.loads.open_counts == {"a": 300, "b": 100, "c": 100}
    assert all(row.stage is Stage.MQL and row.cycle == 1 for row in outcome.changed.values())
    assert len(outcome.appends) == 500


def test_the_assignment_names_rule_method_and_who_to_tell() -> None:
    lead = new_id()
    decision = decide_assignment(_row(lead), _qualified(lead), _ctx())
    [event] = decision.events
    assert isinstance(event, LeadAssigned)
    assert (event.rep_id, event.team_id, event.rule_id, event.method) == (
        "a",
        "na",
        "na",
        "round_robin",
    )
    assert event.rules_version == 2 and event.cycle == "new_business"


def test_a_lead_leaving_sales_in_the_batch_frees_its_rep_for_the_next() -> None:
    capped = Roster.of([Rep(id="x", team_id="na", max_open=1)], [Team(id="na", queue_id="na-q")])
    old, new = new_id(), new_id()
    ctx = _ctx(capped, LiveState(open_counts={"x": 1}))
    states = {old: _row(old, Stage.MQL, rep="x"), new: _row(new)}
    gone = Envelope.new(LeadDisqualified(reason="competitor"), lead_id=old)
    outcome = decide_each(HANDLER, states, [gone, _qualified(new)], ctx)
    assert outcome.changed[old].stage is Stage.DISQUALIFIED
    assert outcome.changed[new].rep_id == "x"
    assert ctx.loads is not None and ctx.loads.open_counts == {"x": 1}


def test_without_the_freed_capacity_the_lead_waits_in_the_teams_queue() -> None:
    capped = Roster.of([Rep(id="x", team_id="na", max_open=1)], [Team(id="na", queue_id="na-q")])
    lead = new_id()
    ctx = _ctx(capped, LiveState(open_counts={"x": 1}))
    decision = decide_assignment(_row(lead), _qualified(lead), ctx)
    assert decision.state is not None and decision.state.queue_id == "na-q"
    assert decision.state.rep_id is None


def test_a_repeated_qualification_in_one_batch_assigns_once() -> None:
    lead = new_id()
    outcome = decide_each(HANDLER, {lead: _row(lead)}, [_qualified(lead), _qualified(lead)], _ctx())
    assert len(outcome.appends) == 1
    assert outcome.changed[lead].assigned_cycles == frozenset({1})


def test_a_cycle_already_assigned_in_the_database_is_not_assigned_again() -> None:
    lead = new_id()
    row = _row(lead)
    row = LeadRow(**{**row.__dict__, "assigned_cycles": frozenset({1})})
    assert decide_assignment(row, _qualified(lead), _ctx()).events == ()


def test_requalified_after_nurture_is_a_new_cycle_with_exclusions_cleared() -> None:
    lead = new_id()
    row = LeadRow(
        **{
            **_row(lead, Stage.MQL, rep="b").__dict__,
            "excluded_reps": ["a"],
            "assigned_cycles": frozenset({1}),
        }
    )
    nurture = Envelope.new(NurtureEnrolled(track_id="t", reason="recycled"), lead_id=lead)
    outcome = decide_each(HANDLER, {lead: row}, [nurture, _qualified(lead)], _ctx())
    after = outcome.changed[lead]
    assert after.cycle == 2 and after.excluded_reps == [] and after.stage is Stage.MQL


def test_a_refused_move_changes_nothing() -> None:
    lead = new_id()
    won_lead = _row(lead, Stage.WON, rep="a")
    decision = decide_assignment(
        won_lead, Envelope.new(LeadDisqualified(reason="x"), lead_id=lead), _ctx()
    )
    assert decision.state is None and decision.events == ()


def test_each_assigned_event_id_becomes_its_arbiter_row() -> None:
    first, second = new_id(), new_id()
    ctx = _ctx()
    outcome = decide_each(
        HANDLER,
        {first: _row(first), second: _row(second)},
        [_qualified(first), _qualified(second)],
        ctx,
    )
    envelopes = {}
    for lead_id, payloads, _cause, _at in outcome.appends:
        envelopes[lead_id] = [Envelope.new(p, lead_id=lead_id) for p in payloads]
        HANDLER.appended(lead_id, envelopes[lead_id], ctx)
    assert [(a.lead_id, a.cycle, a.event_id) for a in ctx.arbiter] == [
        (first, 1, envelopes[first][0].event_id),
        (second, 1, envelopes[second][0].event_id),
    ]
    assert ctx.arbiter[0].explanation["method"] == "round_robin"
