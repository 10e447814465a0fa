"""Routing decisions without I/O: each rule kind, each availability case, the explanation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from leadflow.events.calendar import WorkingHours, WorkingPeriod
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.routing.domain import (
    Conditions,
    OutOfOffice,
    Queue,
    Rep,
    Roster,
    RoutingState,
    Rule,
    RuleSet,
    Target,
    Team,
    check_references,
    choose_assignee,
    lead_for_rules,
    least_loaded,
    smooth_wrr,
)

# A Wednesday, 15:00 UTC: 10:00 in New York, 16:00 in Berlin, 00:00 Thursday in Tokyo.
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
NINE_TO_FIVE = WorkingPeriod(start="09:00", end="17:00")

US_LEAD = LeadSnapshot(
    country="US", region="NA", industry="Software", company_size=500, grade="A", channel="web_form"
)
DE_LEAD = LeadSnapshot(country="DE", region="EMEA", industry="Retail", company_size=20, grade="C")


def _roster(
    *reps: Rep, teams: tuple[Team, ...] = (), owners: dict[str, str] | None = None
) -> Roster:
    return Roster.of(
        reps,
        teams or (Team(id="na", members=[r.id for r in reps]),),
        [Queue(id="unassigned"), Queue(id="na-overflow", team_id="na")],
        owners,
    )


def _team_rule(rule_id: str = "r-na", **when: object) -> Rule:
    return Rule(id=rule_id, when=Conditions(**when), target=Target(kind="team", team_id="na"))


def _rules(*rules: Rule) -> RuleSet:
    return RuleSet(version=3, rules=list(rules))


def test_first_matching_rule_wins_and_earlier_misses_are_explained() -> None:
    rules = _rules(
        Rule(
            id="emea",
            when=Conditions(region=["EMEA"]),
            target=Target(kind="queue", queue_id="unassigned"),
        ),
        Rule(
            id="small", when=Conditions(company_size_max=50), target=Target(kind="rep", rep_id="a")
        ),
        _team_rule("na", country=["us", "CA"], grade=["A", "B"]),
    )
    d = choose_assignee(US_LEAD, rules, _roster(Rep(id="a"), Rep(id="b")), RoutingState(), NOW)
    assert (d.assignee_kind, d.rule_id, d.rules_version, d.method) == (
        "rep",
        "na",
        3,
        "round_robin",
    )
    assert [m.rule_id for m in d.missed] == ["emea", "small"]
    assert "region 'NA' not in ['EMEA']" in d.missed[0].reason
    assert "company_size 500 above 50" in d.missed[1].reason


@pytest.mark.parametrize(
    ("when", "matches"),
    [
        ({"grade": ["A"]}, True),  # a bare letter covers A+, A, A-
        ({"grade": ["A-"]}, False),
        ({"industry": ["software"]}, True),  # case-insensitive
        ({"product_interest": ["crm"]}, False),  # lead has none
        ({"channel": ["web_form", "api"]}, True),
        ({"company_size_min": 501}, False),
        ({"company_size_min": 100, "company_size_max": 1000}, True),
        ({"country": ["US"], "campaign": ["spring"]}, False),  # all conditions must hold
    ],
)
def test_conditions_match_lead_attributes(when: dict[str, object], matches: bool) -> None:
    assert (Conditions(**when).miss(US_LEAD) is None) is matches


def test_grade_from_the_qualifying_event_is_used_when_snapshot_has_none() -> None:
    lead = lead_for_rules(LeadSnapshot(country="US"), "B+")
    assert Conditions(grade=["B"]).miss(lead) is None


def test_direct_rep_target_assigns_that_rep() -> None:
    rules = _rules(Rule(id="vip", target=Target(kind="rep", rep_id="b")))
    d = choose_assignee(
        US_LEAD, rules, _roster(Rep(id="a"), Rep(id="b", team_id="na")), RoutingState(), NOW
    )
    assert (d.rep_id, d.team_id, d.method) == ("b", "na", "direct")


def test_unavailable_direct_rep_falls_through_to_next_rule() -> None:
    rules = _rules(
        Rule(id="vip", target=Target(kind="rep", rep_id="b")),
        Rule(id="rest", target=Target(kind="queue", queue_id="na-overflow")),
    )
    d = choose_assignee(US_LEAD, rules, _roster(Rep(id="b", active=False)), RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id, d.rule_id, d.team_id) == (
        "queue",
        "na-overflow",
        "rest",
        "na",
    )
    assert d.missed[0].rule_id == "vip" and "paused" in d.missed[0].reason
    assert [(s.rep_id, s.reason) for s in d.skipped_reps] == [("b", "paused")]


def test_unavailable_direct_rep_with_rule_fallback_queue_waits_there() -> None:
    rules = _rules(
        Rule(id="vip", target=Target(kind="rep", rep_id="b"), fallback_queue_id="na-overflow"),
    )
    d = choose_assignee(US_LEAD, rules, _roster(Rep(id="b", active=False)), RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id, d.rule_id) == ("queue", "na-overflow", "vip")


def test_queue_target_puts_lead_in_queue() -> None:
    rules = _rules(Rule(id="q", target=Target(kind="queue", queue_id="unassigned")))
    d = choose_assignee(US_LEAD, rules, _roster(Rep(id="a")), RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id, d.rep_id, d.method) == (
        "queue",
        "unassigned",
        None,
        "queue",
    )


def test_no_rule_matches_goes_to_default_queue_never_dropped() -> None:
    rules = _rules(_team_rule(country=["FR"]))
    d = choose_assignee(DE_LEAD, rules, _roster(Rep(id="a")), RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id, d.method) == ("queue", "unassigned", "fallback")
    assert d.missed[0].reason.startswith("country 'DE'")


def test_empty_rule_set_goes_to_default_queue() -> None:
    d = choose_assignee(US_LEAD, RuleSet(), Roster(), RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id) == ("queue", "unassigned")


def test_disabled_rule_is_skipped_with_reason() -> None:
    rule = Rule(id="off", enabled=False, target=Target(kind="queue", queue_id="na-overflow"))
    d = choose_assignee(US_LEAD, _rules(rule), _roster(), RoutingState(), NOW)
    assert d.missed[0].reason == "disabled" and d.queue_id == "unassigned"


def test_team_pool_with_nobody_eligible_uses_team_queue() -> None:
    team = Team(id="na", members=["a"], queue_id="na-overflow")
    roster = _roster(Rep(id="a", active=False), teams=(team,))
    d = choose_assignee(US_LEAD, _rules(_team_rule()), roster, RoutingState(), NOW)
    assert (d.assignee_kind, d.queue_id, d.team_id) == ("queue", "na-overflow", "na")


@pytest.mark.parametrize(
    ("rep", "state", "why"),
    [
        (Rep(id="a", active=False), RoutingState(), "paused"),
        (
            Rep(
                id="a",
                out_of_office=[
                    OutOfOffice(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1))
                ],
            ),
            RoutingState(),
            "out of office",
        ),
        (
            # 00:00 Thursday in Tokyo
            Rep(id="a", timezone="Asia/Tokyo", working_hours=WorkingHours()),
            RoutingState(),
            "outside working hours",
        ),
        (
            # 16:00 Wednesday in Berlin, but Berlin works Mon/Tue only
            Rep(
                id="a",
                timezone="Europe/Berlin",
                working_hours={"hours": {"mon": [NINE_TO_FIVE], "tue": [NINE_TO_FIVE]}},
            ),
            RoutingState(),
            "outside working hours",
        ),
        (Rep(id="a", max_open=2), RoutingState(open_counts={"a": 2}), "at open-lead cap (2/2)"),
        (
            Rep(id="a", max_new_per_day=1, timezone="America/New_York"),
            RoutingState(new_counts={("a", NOW.date()): 1}),
            "at daily cap (1/1)",
        ),
    ],
)
def test_unavailable_rep_is_skipped_with_reason(rep: Rep, state: RoutingState, why: str) -> None:
    roster = _roster(rep, Rep(id="z"))
    d = choose_assignee(US_LEAD, _rules(_team_rule()), roster, state, NOW)
    assert d.rep_id == "z"
    assert d.skipped_reps[0].rep_id == "a" and why in d.skipped_reps[0].reason


def test_rep_available_inside_working_hours_in_own_time_zone() -> None:
    rep = Rep(
        id="a",
        timezone="America/New_York",
        working_hours=WorkingHours(timezone="America/New_York"),
    )
    d = choose_assignee(US_LEAD, _rules(_team_rule()), _roster(rep), RoutingState(), NOW)
    assert d.rep_id == "a"


def test_ooo_range_that_has_ended_does_not_block() -> None:
    rep = Rep(id="a", out_of_office=[OutOfOffice(start=NOW - timedelta(days=2), end=NOW)])
    d = choose_assignee(US_LEAD, _rules(_team_rule()), _roster(rep), RoutingState(), NOW)
    assert d.rep_id == "a"


def test_daily_cap_counts_the_reps_local_day() -> None:
    # 15:00 UTC is already tomorrow in Tokyo, so yesterday's (UTC date) count doesn't apply.
    rep = Rep(id="a", timezone="Asia/Tokyo", max_new_per_day=1)
    state = RoutingState(new_counts={("a", NOW.date()): 1})
    d = choose_assignee(US_LEAD, _rules(_team_rule()), _roster(rep), state, NOW)
    assert d.rep_id == "a"


def test_territories_restrict_team_pool() -> None:
    roster = _roster(Rep(id="a", territories=["de", "AT"]), Rep(id="b", territories=["US"]))
    d = choose_assignee(DE_LEAD, _rules(_team_rule()), roster, RoutingState(), NOW)
    assert d.rep_id == "a"
    assert d.skipped_reps[0].rep_id == "b" and "territories" in d.skipped_reps[0].reason


def test_territories_ignored_when_rule_says_so() -> None:
    roster = _roster(Rep(id="b", territories=["US"]))
    rule = Rule(id="all", target=Target(kind="team", team_id="na", respect_territories=False))
    assert choose_assignee(DE_LEAD, _rules(rule), roster, RoutingState(), NOW).rep_id == "b"


def test_account_owner_gets_lead_before_rules() -> None:
    lead = US_LEAD.model_copy(update={"account_domain": "Acme.com"})
    roster = _roster(Rep(id="a"), Rep(id="owner", team_id="ent"), owners={"acme.com": "owner"})
    d = choose_assignee(lead, _rules(_team_rule()), roster, RoutingState(), NOW)
    assert (d.rep_id, d.method, d.rule_id, d.team_id) == ("owner", "account_owner", None, "ent")


def test_unavailable_account_owner_falls_back_to_rules_with_reason() -> None:
    lead = US_LEAD.model_copy(update={"account_id": "acc-1"})
    roster = _roster(Rep(id="a"), Rep(id="owner", active=False), owners={"acc-1": "owner"})
    rule = Rule(id="r", when=Conditions(), target=Target(kind="rep", rep_id="a"))
    d = choose_assignee(lead, _rules(rule), roster, RoutingState(), NOW)
    assert d.rep_id == "a"
    assert (
        d.skipped_reps[0].rep_id == "owner" and d.skipped_reps[0].reason == "account owner paused"
    )


def test_account_owner_ignored_when_rule_set_disables_it() -> None:
    lead = US_LEAD.model_copy(update={"account_id": "acc-1"})
    roster = _roster(Rep(id="a"), Rep(id="owner"), owners={"acc-1": "owner"})
    rules = RuleSet(
        rules=[Rule(id="r", target=Target(kind="rep", rep_id="a"))], account_owner_first=False
    )
    assert choose_assignee(lead, rules, roster, RoutingState(), NOW).rep_id == "a"


def test_excluded_rep_is_skipped_even_as_account_owner() -> None:
    lead = US_LEAD.model_copy(update={"account_id": "acc-1"})
    roster = _roster(Rep(id="owner"), Rep(id="b"), owners={"acc-1": "owner"})
    d = choose_assignee(lead, _rules(_team_rule()), roster, RoutingState(), NOW, exclude={"owner"})
    assert d.rep_id == "b"
    assert all(s.rep_id == "owner" for s in d.skipped_reps)


def test_round_robin_alternates_and_returns_new_pointer() -> None:
    roster = _roster(Rep(id="a"), Rep(id="b"))
    state = RoutingState()
    picks = []
    for _ in range(4):
        d = choose_assignee(US_LEAD, _rules(_team_rule()), roster, state, NOW)
        assert d.pool == "team:na" and d.pointer is not None
        picks.append(d.rep_id)
        state = RoutingState(pointers={"team:na": d.pointer})
    assert picks == ["a", "b", "a", "b"]


def test_smooth_wrr_spreads_picks_by_weight() -> None:
    reps = [Rep(id="a", weight=5), Rep(id="b", weight=1), Rep(id="c", weight=1)]
    credits: dict[str, int] = {}
    picks = []
    for _ in range(7):
        chosen, credits = smooth_wrr(reps, credits)
        picks.append(chosen.id)
    assert picks == ["a", "a", "b", "a", "c", "a", "a"]  # nginx's classic example
    assert credits == {"a": 0, "b": 0, "c": 0}


def test_least_loaded_picks_fewest_open_per_weight() -> None:
    reps = [Rep(id="a", weight=1), Rep(id="b", weight=3), Rep(id="c", weight=1)]
    state = RoutingState(open_counts={"a": 2, "b": 4, "c": 2})
    assert least_loaded(reps, state, NOW).id == "b"  # 4/3 < 2/1
    rule = Rule(id="ll", target=Target(kind="team", team_id="na", strategy="least_loaded"))
    d = choose_assignee(US_LEAD, _rules(rule), _roster(*reps), state, NOW)
    assert (d.rep_id, d.method, d.pointer) == ("b", "least_loaded", None)


def test_explanation_lists_rules_and_skipped_reps() -> None:
    rules = _rules(_team_rule("fr", country=["FR"]), _team_rule("all"))
    d = choose_assignee(
        US_LEAD, rules, _roster(Rep(id="a", active=False), Rep(id="b")), RoutingState(), NOW
    )
    exp = d.explanation()
    assert exp["rules_not_matched"] == [{"rule_id": "fr", "reason": "country 'US' not in ['FR']"}]
    assert exp["reps_skipped"] == [{"rep_id": "a", "reason": "paused"}]
    assert exp["rep_id"] == "b"


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        Rep(id="a", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="team_id"):
        Target(kind="team")
    with pytest.raises(ValidationError, match="grades"):
        Conditions(grade=["Z"])
    with pytest.raises(ValidationError, match="appears twice"):
        RuleSet(rules=[_team_rule("x"), _team_rule("x")])
    with pytest.raises(ValidationError, match="start must be before end"):
        Rep(id="a", working_hours=[{"start": "18:00", "end": "09:00"}])


def test_check_references_names_unknown_targets() -> None:
    rules = RuleSet(
        rules=[
            Rule(id="a", target=Target(kind="rep", rep_id="ghost")),
            Rule(id="b", target=Target(kind="team", team_id="na"), fallback_queue_id="nowhere"),
        ]
    )
    errors = check_references(rules, _roster(Rep(id="x")))
    assert [e["field"] for e in errors] == ["rules[0].target.rep_id", "rules[1].fallback_queue_id"]


def test_matching_caches_do_not_change_what_a_condition_or_rep_equals() -> None:
    used = Conditions(country=["us"], grade=["A", "B+"])
    assert used.miss(LeadSnapshot(country="US", grade="A-")) is None
    assert used.miss(LeadSnapshot(country="US", grade="B")) == "grade 'B' not in ['A', 'B+']"
    assert used.miss(LeadSnapshot(country="DE")) == "country 'DE' not in ['us']"
    assert used == Conditions(country=["us"], grade=["A", "B+"])
    rep = Rep(id="r", territories=["de"])
    assert rep.covers(LeadSnapshot(region="DE")) and not rep.covers(LeadSnapshot(country="FR"))
    assert rep == Rep(id="r", territories=["DE"])
