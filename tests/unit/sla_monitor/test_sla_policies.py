"""Policies and the pure decisions they drive: start, meet, stop, warn, breach, escalate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadflow.sla_monitor.domain import (
    Duration,
    EscalationStep,
    LeadFacts,
    Outcome,
    Segment,
    SlaInstance,
    SlaPolicy,
    all_timer_keys,
    compliance,
    default_calendar,
    default_policies,
    escalations_due,
    meet_sla,
    plan_for_event,
    should_breach,
    should_warn,
    start_sla,
)

H = timedelta(hours=1)
CAL = default_calendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def policy(**kw: object) -> SlaPolicy:
    base: dict[str, object] = {
        "policy_id": "accept",
        "start_on": ["lead.assigned"],
        "met_on": ["lead.accepted", "lead.rejected"],
        "stop_on": ["lead.recycled"],
        "duration": Duration(amount=4, unit="hours"),
    }
    base.update(kw)
    return SlaPolicy.model_validate(base)


def running(p: SlaPolicy, status: str = "open", step: int = 0, **kw: object) -> SlaInstance:
    started = start_sla("s1", p, 1, utc(2026, 3, 2, 10), CAL, LeadFacts(rep_id="r1")).sla
    from dataclasses import replace

    return replace(started, status=status, escalation_step=step, **kw)  # type: ignore[arg-type]


# -- defaults ------------------------------------------------------------------------


def test_defaults_cover_accept_contact_sal_age_nurture_and_mql_assignment() -> None:
    measures = {p.measures for p in default_policies()}
    assert measures == {"accept", "contact", "sal_age", "nurture_touch", "mql_assignment"}
    accept = next(p for p in default_policies() if p.measures == "accept")
    assert [s.action for s in accept.escalation] == [
        "remind_owner",
        "notify_manager",
        "reassign",
        "return_to_marketing",
    ]


def test_assignment_starts_accept_and_meets_mql_assignment() -> None:
    policies = default_policies()
    mql = start_sla(
        "m",
        next(p for p in policies if p.measures == "mql_assignment"),
        1,
        utc(2026, 3, 2, 10),
        CAL,
        LeadFacts(),
    ).sla
    plan = plan_for_event("lead.assigned", LeadFacts(rep_id="r1"), policies, [mql])
    assert [p.measures for p in plan.start] == ["accept"]
    assert plan.meet == [mql]


def test_acceptance_meets_accept_and_starts_contact_and_sal_age() -> None:
    policies = default_policies()
    accept = start_sla("a", policies[0], 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    plan = plan_for_event("lead.accepted", LeadFacts(rep_id="r1"), policies, [accept])
    assert plan.meet == [accept]
    assert sorted(p.measures or "" for p in plan.start) == ["contact", "sal_age"]


def test_rejection_also_satisfies_accept_sla() -> None:
    policies = default_policies()
    accept = start_sla("a", policies[0], 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    plan = plan_for_event("lead.rejected", LeadFacts(), policies, [accept])
    assert plan.meet == [accept] and plan.start == []


def test_reassignment_stops_old_accept_clock_and_starts_a_fresh_one() -> None:
    policies = default_policies()
    accept = start_sla("a", policies[0], 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    plan = plan_for_event("lead.reassigned", LeadFacts(rep_id="r2"), policies, [accept])
    assert plan.stop == [accept]
    assert [p.measures for p in plan.start] == ["accept"]


def test_nurture_touch_meets_and_restarts_the_cadence_clock() -> None:
    policies = default_policies()
    nurture = next(p for p in policies if p.measures == "nurture_touch")
    sla = start_sla("n", nurture, 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    plan = plan_for_event("nurture.touch_due", LeadFacts(), policies, [sla])
    assert plan.meet == [sla]
    assert [p.policy_id for p in plan.start] == [nurture.policy_id]


def test_closing_events_stop_every_sales_clock() -> None:
    policies = default_policies()
    slas = [
        start_sla(f"s{i}", p, 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
        for i, p in enumerate(policies[:3])
    ]
    for event in (
        "lead.recycled",
        "lead.disqualified",
        "lead.put_on_hold",
        "deal.won",
        "deal.lost",
    ):
        plan = plan_for_event(event, LeadFacts(), policies, slas)
        assert plan.stop == slas and plan.meet == [] and plan.start == []


def test_contacted_meets_contact_but_leaves_sal_age_running() -> None:
    policies = default_policies()
    contact = start_sla("c", policies[1], 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    sal = start_sla("s", policies[2], 1, utc(2026, 3, 2, 10), CAL, LeadFacts()).sla
    plan = plan_for_event("lead.contacted", LeadFacts(), policies, [contact, sal])
    assert plan.meet == [contact] and plan.stop == []
    plan = plan_for_event("lead.sales_qualified", LeadFacts(), policies, [sal])
    assert plan.meet == [sal]


def test_a_running_policy_is_not_started_twice() -> None:
    p = policy()
    plan = plan_for_event("lead.assigned", LeadFacts(), [p], [running(p)])
    assert plan.start == []


def test_a_breached_sla_can_still_be_met_late() -> None:
    p = policy()
    breached = running(p, status="breached")
    plan = plan_for_event("lead.accepted", LeadFacts(), [p], [breached])
    assert plan.meet == [breached]
    verdict = meet_sla(breached, utc(2026, 3, 3, 10), CAL)
    assert not verdict.on_time


def test_finished_slas_are_ignored() -> None:
    p = policy()
    plan = plan_for_event("lead.accepted", LeadFacts(), [p], [running(p, status="met")])
    assert plan.meet == []


def test_disabled_policy_never_starts() -> None:
    plan = plan_for_event("lead.assigned", LeadFacts(), [policy(enabled=False)], [])
    assert plan.start == []


def test_unrelated_event_does_nothing() -> None:
    p = policy()
    plan = plan_for_event("lead.scored", LeadFacts(), [p], [running(p)])
    assert plan.meet == plan.stop == plan.start == []


# -- segments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "lead", "applies"),
    [
        (Segment(), LeadFacts(), True),
        (Segment(grades=["A"]), LeadFacts(grade="A+"), True),
        (Segment(grades=["A"]), LeadFacts(grade="A-"), True),
        (Segment(grades=["A+"]), LeadFacts(grade="A"), False),
        (Segment(grades=["A", "B"]), LeadFacts(grade="C"), False),
        (Segment(grades=["A"]), LeadFacts(grade=None), False),
        (Segment(regions=["EMEA"]), LeadFacts(region="emea"), True),
        (Segment(regions=["EMEA"]), LeadFacts(region="AMER"), False),
        (Segment(countries=["DE", "AT"]), LeadFacts(country="AT"), True),
        (Segment(channels=["web_form"]), LeadFacts(channel="badge_scan"), False),
        (
            Segment(grades=["A"], channels=["web_form"]),
            LeadFacts(grade="A", channel="web_form"),
            True,
        ),
        (
            Segment(grades=["A"], channels=["web_form"]),
            LeadFacts(grade="B", channel="web_form"),
            False,
        ),
    ],
)
def test_segment_filters(segment: Segment, lead: LeadFacts, applies: bool) -> None:
    assert segment.matches(lead) is applies
    plan = plan_for_event("lead.assigned", lead, [policy(segment=segment)], [])
    assert bool(plan.start) is applies


def test_several_policies_can_run_on_one_lead() -> None:
    fast = policy(
        policy_id="a-grade-1h",
        segment=Segment(grades=["A"]),
        duration=Duration(amount=1, unit="hours"),
    )
    plan = plan_for_event("lead.assigned", LeadFacts(grade="A"), [policy(), fast], [])
    assert {p.policy_id for p in plan.start} == {"accept", "a-grade-1h"}


# -- policy validation ---------------------------------------------------------------


def test_policy_without_an_end_is_refused() -> None:
    with pytest.raises(ValidationError, match="never end"):
        policy(met_on=[], stop_on=[])


def test_policy_with_zero_duration_is_refused() -> None:
    with pytest.raises(ValidationError, match="positive"):
        policy(duration=Duration(amount=0))


@pytest.mark.parametrize("pct", [0, 100, 120])
def test_warning_threshold_must_be_inside_the_window(pct: float) -> None:
    with pytest.raises(ValidationError):
        policy(warn_at_pct=pct)


def test_unknown_escalation_action_is_refused() -> None:
    with pytest.raises(ValidationError):
        policy(escalation=[{"action": "shout"}])


# -- starting, warning, breaching ----------------------------------------------------


def test_start_computes_business_deadline_warning_and_timers() -> None:
    p = policy()
    started = start_sla("s1", p, 3, utc(2026, 3, 6, 15), CAL, LeadFacts(rep_id="r1", team_id="t"))
    sla = started.sla
    assert sla.due_at == utc(2026, 3, 9, 11)  # Fri 15:00 + 4 business hours
    assert sla.warn_at == utc(2026, 3, 9, 10)  # 75% = 3 business hours
    assert (sla.rep_id, sla.team_id, sla.policy_version) == ("r1", "t", 3)
    assert started.timers == [
        ("s1:warn", utc(2026, 3, 9, 10), "sla.warn"),
        ("s1:breach", utc(2026, 3, 9, 11), "sla.breach"),
    ]
    assert set(all_timer_keys("s1")) >= {k for k, _, _ in started.timers}


def test_calendar_time_policy_warning_is_a_fraction_of_elapsed_time() -> None:
    p = policy(duration=Duration(amount=30, unit="days", business=False), warn_at_pct=80)
    sla = start_sla("n", p, 1, utc(2026, 1, 1), CAL, LeadFacts()).sla
    assert sla.due_at == utc(2026, 1, 31)
    assert sla.warn_at == utc(2026, 1, 25)


def test_policy_without_warning_schedules_only_the_breach() -> None:
    started = start_sla("s", policy(warn_at_pct=None), 1, utc(2026, 3, 2, 10), CAL, LeadFacts())
    assert [k for k, _, _ in started.timers] == ["s:breach"]


def test_met_in_time_reports_business_and_calendar_elapsed() -> None:
    sla = running(policy())  # started Mon 10:00, due 14:00
    verdict = meet_sla(sla, utc(2026, 3, 2, 12, 30), CAL)
    assert verdict.on_time
    assert verdict.elapsed == verdict.elapsed_business == timedelta(hours=2, minutes=30)


def test_met_overnight_counts_only_business_hours() -> None:
    sla = running(policy())
    verdict = meet_sla(sla, utc(2026, 3, 3, 10), CAL)
    assert verdict.elapsed == 24 * H
    assert verdict.elapsed_business == 8 * H
    assert not verdict.on_time


def test_met_exactly_at_the_deadline_is_on_time() -> None:
    sla = running(policy())
    assert meet_sla(sla, sla.due_at, CAL).on_time


def test_warning_only_while_open_and_before_due() -> None:
    sla = running(policy())
    assert should_warn(sla, sla.due_at - timedelta(seconds=1))
    assert not should_warn(sla, sla.due_at)
    assert not should_warn(running(policy(), status="met"), sla.due_at - H)


def test_breach_only_while_open() -> None:
    assert should_breach(running(policy()))
    for status in ("met", "stopped", "breached"):
        assert not should_breach(running(policy(), status=status))


# -- escalation ladder --------------------------------------------------------------


LADDER = [
    EscalationStep(action="remind_owner"),
    EscalationStep(action="notify_manager", after=Duration(amount=1, unit="hours")),
    EscalationStep(action="reassign", after=Duration(amount=4, unit="hours")),
    EscalationStep(action="return_to_marketing", after=Duration(amount=2, unit="days")),
]


def test_breach_raises_the_first_step_at_once_and_schedules_the_next() -> None:
    p = policy(escalation=LADDER)
    sla = running(p, status="breached")  # due Mon 14:00
    decision = escalations_due(p, sla, sla.due_at, CAL)
    assert [(n, s.action) for n, s in decision.raise_steps] == [(1, "remind_owner")]
    assert decision.next_due == utc(2026, 3, 2, 15)


def test_ladder_offsets_count_business_time_after_the_breach() -> None:
    p = policy(escalation=LADDER)
    sla = running(p, status="breached", step=2)
    decision = escalations_due(p, sla, utc(2026, 3, 2, 15), CAL)
    assert decision.raise_steps == []
    # reassign 4 business hours after Mon 14:00 -> Tue 10:00
    assert decision.next_due == utc(2026, 3, 3, 10)
    decision = escalations_due(p, sla, utc(2026, 3, 3, 10), CAL)
    assert [s.action for _, s in decision.raise_steps] == ["reassign"]
    # 2 business days (16h) after Mon 14:00 -> Wed 14:00
    assert decision.next_due == utc(2026, 3, 4, 14)


def test_missed_steps_are_all_raised_once_in_order_after_downtime() -> None:
    p = policy(escalation=LADDER)
    sla = running(p, status="breached", step=1)
    decision = escalations_due(p, sla, utc(2026, 3, 10, 9), CAL)
    assert [n for n, _ in decision.raise_steps] == [2, 3, 4]
    assert decision.next_due is None


def test_no_escalation_unless_breached() -> None:
    p = policy(escalation=LADDER)
    for status in ("open", "met", "stopped"):
        decision = escalations_due(p, running(p, status=status), utc(2030, 1, 1), CAL)
        assert decision.raise_steps == [] and decision.next_due is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60 * 60 * 24 * 7), min_size=1, max_size=40))
def test_firing_the_ladder_at_any_times_raises_each_step_exactly_once(offsets: list[int]) -> None:
    p = policy(escalation=LADDER)
    sla = running(p, status="breached")
    raised: list[int] = []
    from dataclasses import replace

    for offset in [*sorted(offsets), 60 * 60 * 24 * 30]:
        decision = escalations_due(p, sla, sla.due_at + timedelta(seconds=offset), CAL)
        raised += [n for n, _ in decision.raise_steps]
        if decision.raise_steps:
            sla = replace(sla, escalation_step=decision.raise_steps[-1][0])
    assert raised == [1, 2, 3, 4]


# -- compliance ------------------------------------------------------------------------


def test_compliance_counts_verdicts_and_medians() -> None:
    outcomes = [
        Outcome("met", True, 60.0, 60.0),
        Outcome("met", True, 120.0, 100.0),
        Outcome("met", False, 1000.0, 500.0),
        Outcome("breached", None, None, None),
        Outcome("open", None, None, None),
        Outcome("stopped", None, None, None),
    ]
    c = compliance(outcomes)
    assert c["met_on_time"] == 2 and c["met_late"] == 1 and c["breached_open"] == 1
    assert c["met_on_time_pct"] == 50.0
    assert c["median_elapsed_seconds"] == 120.0
    assert c["median_elapsed_business_seconds"] == 100.0
    assert c["total"] == 6 and c["open"] == 1 and c["stopped"] == 1


def test_compliance_without_verdicts_has_no_percentage() -> None:
    c = compliance([Outcome("open", None, None, None)])
    assert c["met_on_time_pct"] is None and c["median_elapsed_seconds"] is None


def test_a_breach_stays_a_late_verdict_when_the_clock_is_stopped_after_it() -> None:
    c = compliance(
        [
            Outcome("met", True, 60.0, 60.0),
            Outcome("stopped", None, None, None, breached=True),  # reassigned after its breach
            Outcome("stopped", None, None, None),  # reassigned before its deadline: no verdict
            Outcome("met", False, 900.0, 900.0, breached=True),  # breached, then met late
        ]
    )
    assert (c["met_on_time"], c["late"], c["breached_stopped"], c["stopped"]) == (1, 2, 1, 2)
    assert c["met_on_time_pct"] == 33.33
