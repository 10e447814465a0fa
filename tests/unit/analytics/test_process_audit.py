"""The process map and the audit on a scripted history, every figure computed by hand.

Period: Monday 2 March 2026 to Sunday 8 March (``[Mar 2 00:00, Mar 9 00:00)``), T0 = Mar 2
09:00 UTC. Six leads, built-in process (version 0, built-in SLA coverage):

    A web_form   captured T0, scored +1m, MQL +2m, assigned r1 (rule r-emea) +3m, SLA started
                 +3m, contacted +6m (240 s after MQL), accepted +10m, SQL +1d, opp +2d, won +5d
    B web_form   captured, scored, MQL +1h, assigned r1 (round_robin) +1h1m, rejected by r1
                 (bad_fit) +2h -> nurture, MQL again +3d, assigned r2 (direct) +3d1m; r2 silent
    C badge_scan captured +2h, disqualified (competitor) +3h
    D badge_scan captured +4h, nurture +5h (not_sales_ready)
    E web_form   captured, MQL +1d (never scored), assigned to a queue (no rep) +1d1m
    F web_form   captured, scored, MQL +2d, assigned r1 +2d1m, contacted +2d2h (7200 s),
                 accepted +2d3h, recycled by r1 (no_budget) +4d -> nurture
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.analytics import audit as audit_mod
from leadflow.analytics.history import Event, Period, walk_all
from leadflow.analytics.process_map import process_map
from leadflow.events.process import BUILT_IN_SLA_STAGES, ProcessDefinition, built_in_process

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERIOD = Period(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
NOW = datetime(2026, 3, 20, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
COVERAGE: dict[str, list[str]] = {}
for _pid, _stage in BUILT_IN_SLA_STAGES.items():
    COVERAGE.setdefault(_stage, []).append(_pid)


def ev(lead: str, event_type: str, at: datetime, **payload: Any) -> Event:
    return Event(lead, event_type, at, payload)


def captured(lead: str, at: datetime, channel: str) -> Event:
    return ev(lead, "lead.captured", at, source={"channel": channel})


def history() -> list[Event]:
    return [
        captured("A", T0, "web_form"),
        ev("A", "lead.scored", T0 + M),
        ev("A", "lead.qualified", T0 + 2 * M),
        ev("A", "lead.assigned", T0 + 3 * M, rep_id="r1", rule_id="r-emea"),
        ev("A", "sla.started", T0 + 3 * M, policy_id="accept-4bh"),
        ev("A", "lead.contacted", T0 + 6 * M, rep_id="r1"),
        ev("A", "lead.accepted", T0 + 10 * M, rep_id="r1"),
        ev("A", "lead.sales_qualified", T0 + D, rep_id="r1"),
        ev("A", "opportunity.opened", T0 + 2 * D, rep_id="r1", amount="100", currency="EUR"),
        ev("A", "deal.won", T0 + 5 * D, rep_id="r1", amount="100", currency="EUR"),
        captured("B", T0 + H, "web_form"),
        ev("B", "lead.scored", T0 + H),
        ev("B", "lead.qualified", T0 + H),
        ev("B", "lead.assigned", T0 + H + M, rep_id="r1", method="round_robin"),
        ev("B", "lead.rejected", T0 + 2 * H, rep_id="r1", reason_code="bad_fit"),
        ev("B", "lead.qualified", T0 + 3 * D),
        ev("B", "lead.assigned", T0 + 3 * D + M, rep_id="r2", method="direct"),
        captured("C", T0 + 2 * H, "badge_scan"),
        ev("C", "lead.disqualified", T0 + 3 * H, reason="competitor"),
        captured("D", T0 + 4 * H, "badge_scan"),
        ev("D", "nurture.enrolled", T0 + 5 * H, reason="not_sales_ready"),
        captured("E", T0 + D, "web_form"),
        ev("E", "lead.qualified", T0 + D),
        ev("E", "lead.assigned", T0 + D + M, rep_id=None, queue_id="q1"),
        captured("F", T0 + 2 * D, "web_form"),
        ev("F", "lead.scored", T0 + 2 * D),
        ev("F", "lead.qualified", T0 + 2 * D),
        ev("F", "lead.assigned", T0 + 2 * D + M, rep_id="r1"),
        ev("F", "lead.contacted", T0 + 2 * D + 2 * H, rep_id="r1"),
        ev("F", "lead.accepted", T0 + 2 * D + 3 * H, rep_id="r1"),
        ev("F", "lead.recycled", T0 + 4 * D, rep_id="r1", reason_code="no_budget"),
    ]


def run_audit(
    events: list[Event],
    definition: ProcessDefinition | None = None,
    version: int = 0,
    coverage: dict[str, list[str]] | None = None,
    published: dict[str, int] | None = None,
) -> dict[str, Any]:
    return audit_mod.audit(
        definition or built_in_process(),
        version,
        COVERAGE if coverage is None else coverage,
        published or {},
        walk_all(events),
        PERIOD,
        NOW,
    )


def test_speed_to_lead_counts_from_each_mql_to_its_first_contact() -> None:
    s = run_audit(history())["speed_to_lead"]
    # MQL entries: A, B, B again, E, F; contacts 240 s (A) and 7200 s (F).
    assert s == {
        "mqls": 5,
        "contacted": 2,
        "median_seconds": 3720.0,
        "p90_seconds": 7200.0,
        "within_5_minutes": 1,
        "within_1_hour": 1,
        "never_contacted": 3,
    }


def test_leakage_defects_and_recycled_return_rate() -> None:
    a = run_audit(history())
    assert a["leakage"] == {
        "inquiry": {"total": 1, "by_reason": {"lead.disqualified:competitor": 1}},
        "mql": {"total": 1, "by_reason": {"lead.rejected:bad_fit": 1}},
        "sal": {"total": 1, "by_reason": {"lead.recycled:no_budget": 1}},
    }
    assert a["defect_rate"] == {"mqls": 5, "rejected": 1, "rate": 0.2, "reasons": {"bad_fit": 1}}
    # B (rejected) came back as an MQL on day 3; F (recycled) did not.
    assert a["recycled_return"] == {"handed_back": 2, "returned_to_mql": 1, "rate": 0.5}
    assert a["leads"] == 6 and a["process_version"] == 0


def test_gaps_of_the_built_in_process_on_the_history() -> None:
    g = run_audit(history())["gaps"]
    assert g == {
        "stages_without_owner": [],
        "stages_without_sla": ["inquiry", "sql", "opportunity", "on_hold"],
        "sources_without_conversion": [{"channel": "badge_scan", "inquiries": 2}],
        "leads_without_owner": {"count": 1, "lead_ids": ["E"]},
        "reps_without_activity": [{"rep_id": "r2", "assigned": 1}],
    }


def test_a_stage_without_owner_or_missing_from_the_definition_is_a_gap() -> None:
    stages = [s for s in built_in_process().stages if s.stage.value != "sql"]
    stages = [s.model_copy(update={"owner": None}) if s.stage == "sal" else s for s in stages]
    g = run_audit(history(), ProcessDefinition(stages=stages), 3)["gaps"]
    assert g["stages_without_owner"] == ["sal", "sql"]


def test_maturity_of_the_history_under_the_built_in_process() -> None:
    m = run_audit(history())["maturity"]
    met = {k: c["met"] for k, c in m["criteria"].items()}
    assert met == {
        "sales_ready_definition": False,  # built-in, never agreed (published)
        "agreed_statuses": False,
        "automated_flow": True,  # 5 of 5 MQLs assigned
        "documented_routing": False,  # 3 of 5 assignments name a rule or method
        "scoring": False,  # 4 of 5 MQLs scored first (E was not)
        "sla": True,
        "analytics": True,
    }
    assert m["score"] == 3 and m["of"] == 7
    assert m["criteria"]["documented_routing"]["evidence"] == {
        "routing_rules_published": 0,
        "assignments": 5,
        "assignments_naming_rule_or_method": 3,
    }
    assert m["criteria"]["scoring"]["evidence"] == {
        "mqls": 5,
        "scored_before_mql": 4,
        "share": 0.8,
    }


# -- a mature process, then one history per criterion that fails it alone ------------------


def mature() -> list[Event]:
    """Two MQLs, both scored, assigned by a named rule, SLA clocks, a won deal."""
    return [
        captured("P", T0, "web_form"),
        ev("P", "lead.scored", T0),
        ev("P", "lead.qualified", T0 + M),
        ev("P", "lead.assigned", T0 + 2 * M, rep_id="r1", rule_id="r-emea"),
        ev("P", "sla.started", T0 + 2 * M),
        ev("P", "lead.accepted", T0 + 3 * M, rep_id="r1"),
        ev("P", "lead.sales_qualified", T0 + H, rep_id="r1"),
        ev("P", "opportunity.opened", T0 + 2 * H, rep_id="r1"),
        ev("P", "deal.won", T0 + D, rep_id="r1"),
        captured("Q", T0, "event"),
        ev("Q", "lead.scored", T0),
        ev("Q", "lead.qualified", T0 + M),
        ev("Q", "lead.assigned", T0 + 2 * M, rep_id="r1", rule_id="r-emea"),
        ev("Q", "lead.rejected", T0 + H, rep_id="r1", reason_code="bad_timing"),
    ]


def _drop(events: list[Event], lead: str, event_type: str) -> list[Event]:
    return [e for e in events if not (e.lead_id == lead and e.event_type == event_type)]


def _without_owner(stage: str) -> ProcessDefinition:
    return ProcessDefinition(
        stages=[
            s.model_copy(update={"owner": None}) if s.stage == stage else s
            for s in built_in_process().stages
        ]
    )


def _mql_without_criteria() -> ProcessDefinition:
    return ProcessDefinition(
        stages=[
            s.model_copy(update={"entry_criteria": []}) if s.stage == "mql" else s
            for s in built_in_process().stages
        ]
    )


def _unnamed_rejection(events: list[Event]) -> list[Event]:
    return [
        ev(e.lead_id, e.event_type, e.occurred_at, rep_id="r1")
        if e.event_type == "lead.rejected"
        else e
        for e in events
    ]


def _unruled(events: list[Event]) -> list[Event]:
    return [
        ev(e.lead_id, e.event_type, e.occurred_at, rep_id="r1")
        if e.event_type == "lead.assigned"
        else e
        for e in events
    ]


def _unknown_source(events: list[Event]) -> list[Event]:
    return [
        ev("Q", "lead.captured", T0) if e.lead_id == "Q" and e.event_type == "lead.captured" else e
        for e in events
    ]


def test_a_mature_process_meets_all_seven() -> None:
    m = run_audit(mature(), version=4)["maturity"]
    assert m["score"] == 7, m


@pytest.mark.parametrize(
    ("criterion", "events", "definition", "version", "coverage"),
    [
        ("sales_ready_definition", mature(), _mql_without_criteria(), 4, None),
        ("agreed_statuses", mature(), _without_owner("sql"), 4, None),
        ("agreed_statuses", _unnamed_rejection(mature()), None, 4, None),
        ("automated_flow", _drop(mature(), "Q", "lead.assigned"), None, 4, None),
        ("documented_routing", _unruled(mature()), None, 4, None),
        ("scoring", _drop(mature(), "Q", "lead.scored"), None, 4, None),
        ("sla", mature(), None, 4, {"mql": ["accept-4bh"]}),
        ("sla", _drop(mature(), "P", "sla.started"), None, 4, None),
        ("analytics", _drop(mature(), "P", "deal.won"), None, 4, None),
        ("analytics", _unknown_source(mature()), None, 4, None),
    ],
)
def test_each_maturity_criterion_fails_on_a_history_built_to_fail_it(
    criterion: str,
    events: list[Event],
    definition: ProcessDefinition | None,
    version: int,
    coverage: dict[str, list[str]] | None,
) -> None:
    m = run_audit(events, definition, version, coverage)["maturity"]
    failed = [k for k, c in m["criteria"].items() if not c["met"]]
    assert failed == [criterion]
    assert m["score"] == 6


def test_a_built_in_process_is_not_an_agreed_one() -> None:
    m = run_audit(mature(), version=0)["maturity"]
    failed = [k for k, c in m["criteria"].items() if not c["met"]]
    assert failed == ["sales_ready_definition", "agreed_statuses"]


def test_published_routing_rules_document_routing_even_without_rule_ids() -> None:
    m = run_audit(_unruled(mature()), version=4, published={"routing.rules_published": 1})
    assert m["maturity"]["criteria"]["documented_routing"]["met"]


# -- the process map ---------------------------------------------------------------------------


def test_the_map_has_a_box_per_stage_with_owner_duration_and_live_figures() -> None:
    body = process_map(built_in_process(), 0, COVERAGE, walk_all(history()), PERIOD, NOW)
    boxes = {b["stage"]: b for b in body["stages"]}
    assert list(boxes) == [
        "inquiry", "nurture", "mql", "sal", "sql", "opportunity",
        "won", "customer", "lost", "disqualified", "on_hold", "churned",
    ]  # fmt: skip
    assert [b["stage"] for b in body["stages"] if b["terminal"]] == [
        "won", "customer", "lost", "disqualified", "churned",
    ]  # fmt: skip
    mql = boxes["mql"]
    assert (mql["owner"], mql["expected_duration"]) == (
        "marketing_ops",
        {"amount": 2.0, "unit": "days"},
    )
    assert mql["sla_policies"] == ["mql-assigned-30m", "accept-4bh"]
    # Entered 5 (A, B, B, E, F); moved on to SAL: A, F. Ended in the period: A 480 s, B 3600 s,
    # F 10800 s. Still there on Mar 9: B (3 d 15 h) and E (5 d 15 h), both over 2 days.
    assert mql["figures"] == {
        "count": 5,
        "current": 2,
        "conversion": 0.4,
        "median_seconds": 3600.0,
        "expected_seconds": 172800.0,
        "median_vs_expected": 0.0208,
        "over_expected": 2,
        "leakage": 1,
    }
    inquiry = boxes["inquiry"]["figures"]
    # Six entered; five moved on (4 to MQL, D to nurture); C was disqualified.
    assert (inquiry["count"], inquiry["conversion"], inquiry["leakage"]) == (6, 0.8333, 1)
    assert boxes["won"]["figures"]["conversion"] is None
    assert boxes["won"]["figures"]["count"] == 1


def test_the_map_arrows_are_the_lifecycle_moves_with_counts() -> None:
    body = process_map(built_in_process(), 0, COVERAGE, walk_all(history()), PERIOD, NOW)
    arrows = {(a["from"], a["to"], a["event_type"]): a for a in body["arrows"]}
    assert arrows[("mql", "nurture", "lead.rejected")]["kind"] == "reject"
    assert arrows[("mql", "nurture", "lead.rejected")]["count"] == 1
    assert arrows[("sal", "nurture", "lead.recycled")]["kind"] == "recycle"
    assert arrows[("sal", "nurture", "lead.recycled")]["count"] == 1
    assert arrows[("sql", "on_hold", "lead.put_on_hold")]["kind"] == "hold"
    assert arrows[("on_hold", "sal", None)]["kind"] == "resume"
    assert arrows[("inquiry", "mql", "lead.qualified")]["count"] == 4
    assert arrows[("nurture", "mql", "lead.qualified")]["count"] == 1
    assert arrows[("mql", "sal", "lead.accepted")] == {
        "from": "mql",
        "to": "sal",
        "event_type": "lead.accepted",
        "kind": "forward",
        "count": 2,
    }
    assert arrows[("disqualified", "inquiry", "lead.reinstated")]["kind"] == "reengage"
    assert arrows[("opportunity", "lost", "deal.lost")]["kind"] == "close"


def test_a_held_lead_resumed_by_its_stage_event_counts_on_the_resume_arrow() -> None:
    events = [
        captured("H", T0, "web_form"),
        ev("H", "lead.qualified", T0 + M),
        ev("H", "lead.accepted", T0 + 2 * M, rep_id="r1"),
        ev("H", "lead.put_on_hold", T0 + H, reason="budget freeze"),
        ev("H", "lead.accepted", T0 + 2 * D, rep_id="r1"),
    ]
    body = process_map(built_in_process(), 0, COVERAGE, walk_all(events), PERIOD, NOW)
    arrows = {(a["from"], a["to"], a["event_type"]): a["count"] for a in body["arrows"]}
    assert arrows[("sal", "on_hold", "lead.put_on_hold")] == 1
    assert arrows[("on_hold", "sal", None)] == 1
    hold = next(b for b in body["stages"] if b["stage"] == "on_hold")["figures"]
    assert (hold["count"], hold["median_seconds"], hold["leakage"]) == (1, 169200.0, 0)


# -- the plan's capacity ------------------------------------------------------------------------


def test_reps_needed_for_the_planned_mqls_at_the_measured_rate() -> None:
    from leadflow.analytics.planning import measured_rates, rep_capacity

    # 30 assignments to 3 reps over 10 days: 1 MQL a rep a day, 30 a rep a 30-day month;
    # 100 planned MQLs need ceil(100 / 30) = 4 reps: one short.
    assert rep_capacity(100, 30, 3, 10, 30) == {
        "active_reps": 3,
        "assigned": 30,
        "measured_days": 10,
        "mqls_per_rep_per_period": 30.0,
        "planned_mqls": 100,
        "reps_needed": 4,
        "reps_short": 1,
    }
    assert rep_capacity(90, 30, 3, 10, 30)["reps_short"] == 0
    assert rep_capacity(100, 0, 0, 10, 30)["reps_needed"] is None  # nothing measured
    rates = measured_rates({"inquiry": 10, "mql": 4, "sal": 2, "sql": 2, "opportunity": 0})
    assert rates == {"inquiry": 0.4, "mql": 0.5, "sal": 1.0, "sql": 0.0, "opportunity": None}
