"""Funnel arithmetic with hand-computed numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from leadflow.analytics import attribution, domain, planning, report_math, segments
from leadflow.analytics.attribution import Touch
from leadflow.analytics.domain import Fact, LeadJourney
from leadflow.analytics.report_math import CostRow, SourceMetrics

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday


def fact(event_type: str, hours: float, **payload: object) -> Fact:
    return Fact(0, "lead-1", event_type, T0 + timedelta(hours=hours), payload)


def run(
    facts: list[Fact], state: LeadJourney | None = None
) -> tuple[LeadJourney, list[domain.Effects]]:
    state = state or LeadJourney()
    return state, [domain.fold(state, f) for f in facts]


def test_happy_path_counts_each_milestone_once_with_stage_durations() -> None:
    state, fx = run(
        [
            fact(
                "lead.captured",
                0,
                capture_method="web_form",
                source={"channel": "web_form", "campaign": "spring"},
            ),
            fact("lead.qualified", 24),
            fact("nurture.enrolled", 25),  # leaves mql for nurture
            fact("lead.qualified", 49),  # back to mql: no second MQL count
            fact("lead.accepted", 50, rep_id="r1"),
            fact("lead.sales_qualified", 74),
            fact("opportunity.opened", 98, amount="1000", currency="USD", opportunity_id="o"),
            fact("deal.won", 122, amount="1200"),
        ]
    )
    counted = [m for f in fx for m in f.new_milestones]
    assert counted == ["inquiry", "mql", "sal", "sql", "opportunity", "won"]
    transitions = [
        (f.transition.from_stage, f.transition.to_stage, f.transition.seconds)
        for f in fx
        if f.transition
    ]
    assert transitions == [
        (None, "inquiry", None),
        ("inquiry", "mql", 24 * 3600.0),
        ("mql", "nurture", 3600.0),
        ("nurture", "mql", 24 * 3600.0),
        ("mql", "sal", 3600.0),
        ("sal", "sql", 24 * 3600.0),
        ("sql", "opportunity", 24 * 3600.0),
        ("opportunity", "won", 24 * 3600.0),
    ]
    # The opportunity enters the pipeline and leaves it when won: pipeline is open ones only.
    money = [m for f in fx for m in f.cohort_money]
    assert money == [("USD", 1000.0, 0.0, 0), ("USD", -1000.0, 0.0, 0), ("USD", 0.0, 1200.0, 1)]
    assert sum(f.won for f in fx) == 1200.0
    assert state.money == {"USD": [0.0, 1200.0, 1.0]}
    assert state.cohort_day == date(2025, 3, 3)
    assert (state.channel, state.campaign) == ("web_form", "spring")
    assert not state.open


def test_skipped_stages_are_inferred_and_events_before_capture_wait_for_the_cohort() -> None:
    # Routing's opportunity reached the log before intake's capture.
    state, fx = run(
        [
            fact("opportunity.opened", 5, amount="10", currency="USD", opportunity_id="o"),
            fact("lead.captured", 0, capture_method="badge_scan", source={"event_id": "expo"}),
        ]
    )
    assert list(fx[0].new_milestones) == []
    assert fx[1].new_milestones == ["inquiry", "mql", "sal", "sql", "opportunity"]
    assert fx[1].transition is not None and fx[1].transition.from_stage is None
    assert state.stage == "opportunity"  # the later stage stands
    assert state.stage == "opportunity"
    assert (state.channel, state.event_key) == ("badge_scan", "expo")


def test_same_stage_twice_is_one_stay_and_disqualified_counts_once() -> None:
    _state, fx = run(
        [
            fact("lead.captured", 0, capture_method="api"),
            fact("lead.qualified", 1),
            fact("lead.accepted", 2, rep_id="r"),
            fact("lead.rejected", 3, reason_code="bad_fit"),
            fact("nurture.enrolled", 3.5, track_id="t", reason="rejected"),
            fact("lead.disqualified", 4, reason="student"),
            fact("lead.disqualified", 5, reason="student"),
        ]
    )
    stays = [f.transition.to_stage for f in fx if f.transition]
    assert stays == ["inquiry", "mql", "sal", "nurture", "disqualified"]
    assert [o for f in fx for o in f.outcomes] == ["disqualified"]


def test_state_survives_json_round_trip() -> None:
    state, _ = run(
        [
            fact("lead.captured", 0, capture_method="api", source={"campaign": "c"}),
            fact("lead.assigned", 1, assignee_kind="rep", rep_id="r9", team_id="emea"),
            fact("activity.recorded", 2, activity_id="a", activity_type="webinar", campaign="w"),
        ]
    )
    again = LeadJourney.from_json(state.to_json())
    assert again == state
    assert again.rep_id == "r9" and len(again.touches) == 2


def test_state_json_is_the_same_text_when_orjson_writes_the_datetimes() -> None:
    state, _ = run(
        [
            fact("lead.captured", 0, capture_method="api", source={"campaign": "c"}),
            fact("activity.recorded", 2, activity_id="a", activity_type="webinar", campaign="w"),
            fact("lead.qualified", 3, fit=80),
        ]
    )
    state.stage_at = state.stage_at.replace(microsecond=281324) if state.stage_at else None
    assert state.stage_at is not None and state.mql_at is not None and state.touches
    fast = orjson.dumps(state.to_json(datetimes_as_is=True))
    assert fast == orjson.dumps(state.to_json())
    assert LeadJourney.from_json(orjson.loads(fast)) == state


def test_waterfall_conversion_between_neighbours_and_from_inquiry() -> None:
    rows = report_math.waterfall(
        {"inquiry": 200, "mql": 50, "sal": 40, "sql": 20, "opportunity": 10, "won": 4}
    )
    by = {r.stage: r for r in rows}
    assert by["inquiry"].conversion_to_next == 0.25
    assert by["mql"].conversion_to_next == 0.8
    assert by["sal"].conversion_to_next == 0.5
    assert by["opportunity"].conversion_to_next == 0.4
    assert by["won"].conversion_to_next is None
    assert by["sql"].conversion_from_inquiry == 0.1
    assert by["won"].conversion_from_inquiry == 0.02


def test_waterfall_with_no_inquiries_has_no_rates_not_zero() -> None:
    rows = report_math.waterfall({})
    assert all(r.conversion_to_next is None for r in rows)


def test_cohort_start_week_is_monday_and_month_is_first() -> None:
    assert report_math.cohort_start(date(2025, 3, 9), "week") == date(2025, 3, 3)  # Sunday
    assert report_math.cohort_start(date(2025, 3, 3), "week") == date(2025, 3, 3)
    assert report_math.cohort_start(date(2025, 3, 31), "month") == date(2025, 3, 1)
    with pytest.raises(ValueError):
        report_math.cohort_start(date(2025, 3, 1), "fortnight")


def test_percentile_matches_linear_interpolation() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    # median: pos 1.5 -> 20 + 0.5*10 = 25 ; p90: pos 2.7 -> 30 + 0.7*10 = 37
    assert report_math.percentile(values, 0.5) == 25.0
    assert report_math.percentile(values, 0.9) == pytest.approx(37.0)
    assert report_math.percentile([5.0], 0.9) == 5.0
    assert report_math.percentile([], 0.5) is None


def test_source_roi_and_cost_per_lead() -> None:
    m = SourceMetrics(
        inquiries=50,
        mqls=10,
        sqls=5,
        opportunities=4,
        won=1,
        pipeline=8000,
        won_revenue=3000,
        cost=1000,
    )
    assert m.mql_rate == 0.2
    assert m.sql_rate == 0.1
    assert m.win_rate == 0.25
    assert m.cost_per_lead == 20.0
    assert m.roi == 2.0  # (3000 - 1000) / 1000
    assert SourceMetrics(1, 0, 0, 0, 0, 0, 0, None).roi is None


def test_prorated_cost_counts_only_the_days_in_range() -> None:
    march = CostRow("spring", "web", date(2025, 3, 1), date(2025, 3, 31), 3100.0)
    assert report_math.prorated_cost([march], date(2025, 3, 1), date(2025, 3, 10)) == 1000.0
    assert report_math.prorated_cost([march], None, None) == 3100.0
    assert report_math.prorated_cost([march], date(2025, 4, 1), date(2025, 4, 30)) == 0.0


def test_attribution_weights_for_each_model() -> None:
    w = attribution.attribution_weights
    assert w(4, "first_touch") == [1, 0, 0, 0]
    assert w(4, "last_touch") == [0, 0, 0, 1]
    assert w(4, "linear") == [0.25] * 4
    assert w(4, "u_shaped") == pytest.approx([0.4, 0.1, 0.1, 0.4])
    assert w(2, "u_shaped") == [0.5, 0.5]
    assert w(1, "u_shaped") == [1.0]
    # W: first (0), MQL touch (1), opportunity touch (3) get 30 %; touch 2 and 4 share 10 %.
    assert w(5, "w_shaped", (1, 3)) == pytest.approx([0.3, 0.3, 0.05, 0.3, 0.05])
    # Three touches that are all key: the 10 % is split among them.
    assert w(3, "w_shaped", (1, 2)) == pytest.approx([1 / 3] * 3)
    # Coinciding keys add up: one touch gets everything.
    assert w(1, "w_shaped", (0, 0)) == pytest.approx([1.0])
    for model in attribution.ATTRIBUTION_MODELS:
        assert sum(w(6, model, (2, 4))) == pytest.approx(1.0)


def test_deal_won_attributes_revenue_over_touches_before_the_win() -> None:
    _state, fx = run(
        [
            fact(
                "lead.captured",
                0,
                capture_method="web_form",
                source={"channel": "ads", "campaign": "A"},
            ),
            fact(
                "activity.recorded",
                1,
                activity_id="1",
                activity_type="webinar",
                campaign="B",
                properties={"channel": "webinar"},
            ),
            fact("activity.recorded", 2, activity_id="2", activity_type="page_view"),  # no campaign
            fact("lead.qualified", 3),
            fact(
                "inquiry.received",
                4,
                inquiry_id="00000000-0000-0000-0000-000000000001",
                capture_method="badge_scan",
                source={"channel": "event", "campaign": "C"},
            ),
            fact("opportunity.opened", 5, amount="900", currency="USD", opportunity_id="o"),
            fact("deal.won", 6, amount="1000"),
        ]
    )
    won = fx[-1].attributed

    def by_campaign(model: str) -> dict[str, float]:
        return {camp: round(rev, 6) for _ch, camp, rev, _cr in won[model]}

    assert by_campaign("first_touch") == {"A": 1000.0}
    assert by_campaign("last_touch") == {"C": 1000.0}
    assert by_campaign("linear") == {"A": 333.333333, "B": 333.333333, "C": 333.333333}
    # U with 3 touches: 400 / 200 / 400.
    assert by_campaign("u_shaped") == {"A": 400.0, "B": 200.0, "C": 400.0}
    # W: first=A, MQL touch = last before MQL = B, opportunity touch = C; no others.
    assert by_campaign("w_shaped") == {"A": 333.333333, "B": 333.333333, "C": 333.333333}


def test_attribute_all_ignores_touches_after_the_win() -> None:
    touches = [Touch(T0, "a", "x", "inquiry"), Touch(T0 + timedelta(days=9), "b", "y", "inquiry")]
    out = attribution.attribute_all(touches, T0 + timedelta(days=1), None, None)
    assert [(t.campaign, w) for t, w in out["last_touch"]] == [("x", 1.0)]


def test_lead_plan_works_back_from_revenue_through_measured_rates() -> None:
    counts = {"inquiry": 1000, "mql": 200, "sal": 150, "sql": 60, "opportunity": 30, "won": 10}
    plan = planning.lead_plan(100_000, counts, won_revenue=50_000)
    # avg deal 5000 -> 20 wins; opp->won 1/3 -> 60 opps; sql->opp 0.5 -> 120 SQL;
    # sal->sql 0.4 -> 300 SAL; mql->sal 0.75 -> 400 MQL; inq->mql 0.2 -> 2000 inquiries.
    assert plan.avg_deal == 5000
    assert plan.needed == {
        "inquiry": 2000,
        "mql": 400,
        "sal": 300,
        "sql": 120,
        "opportunity": 60,
        "won": 20,
    }
    assert plan.feasible


def test_lead_plan_rounds_up_and_is_infeasible_without_measured_rates() -> None:
    plan = planning.lead_plan(
        7000,
        {"inquiry": 9, "mql": 3, "sal": 3, "sql": 3, "opportunity": 3, "won": 2},
        won_revenue=6000,
    )
    # avg 3000 -> ceil(2.33)=3 wins; opp->won 2/3 -> ceil(4.5)=5; 1.0 rates keep 5; inq 15.
    assert plan.needed == {"inquiry": 15, "mql": 5, "sal": 5, "sql": 5, "opportunity": 5, "won": 3}
    assert not planning.lead_plan(1000, {"won": 0}, 0).feasible
    assert not planning.lead_plan(1000, {"inquiry": 5, "won": 1, "opportunity": 1}, 500).feasible


def test_plan_mix_splits_goal_by_won_revenue_share() -> None:
    full = {"inquiry": 100, "mql": 50, "sal": 50, "sql": 50, "opportunity": 50, "won": 25}
    lines = planning.plan_mix(30_000, {"web": (full, 30_000.0), "event": (full, 10_000.0)})
    by = {line.segment: line for line in lines}
    # web gets 3/4 -> 22500 at avg 1200 -> ceil(18.75)=19 wins -> 38 opps ... -> 76 inquiries
    assert by["web"].revenue == 22_500
    assert by["web"].needed["won"] == 19
    assert by["web"].needed["inquiry"] == 76
    # event gets 1/4 -> 7500 at avg 400 -> ceil(18.75)=19 wins as well
    assert by["event"].revenue == 7_500
    assert by["event"].needed["won"] == 19


def test_an_event_that_arrives_after_a_later_stage_counts_but_does_not_move_the_lead() -> None:
    state, fx = run(
        [
            fact("lead.captured", 0, capture_method="api"),
            fact("lead.accepted", 10, rep_id="r"),  # routing's topic was consumed first
            fact("lead.qualified", 5),  # scoring's MQL, earlier in the world
        ]
    )
    assert state.stage == "sal" and state.stage_at == T0 + timedelta(hours=10)
    assert fx[2].transition is None
    assert state.mql_at == T0 + timedelta(hours=5)


def test_split_range_reads_whole_months_and_only_the_edge_days() -> None:
    d = date
    whole = report_math.split_range(d(2024, 3, 1), d(2024, 9, 30), "month")
    assert (whole.full_from, whole.full_to, whole.edges) == (d(2024, 3, 1), d(2024, 9, 1), ())
    odd = report_math.split_range(d(2024, 2, 11), d(2024, 10, 19), "month")
    assert (odd.full_from, odd.full_to) == (d(2024, 3, 1), d(2024, 9, 1))
    assert odd.edges == ((d(2024, 2, 11), d(2024, 2, 29)), (d(2024, 10, 1), d(2024, 10, 19)))
    inside = report_math.split_range(d(2024, 3, 5), d(2024, 3, 20), "month")
    assert not inside.has_full and inside.edges == ((d(2024, 3, 5), d(2024, 3, 20)),)
    open_start = report_math.split_range(None, d(2024, 4, 10), "week")
    assert (open_start.full_from, open_start.full_to) == (None, d(2024, 4, 1))
    assert open_start.edges == ((d(2024, 4, 8), d(2024, 4, 10)),)
    everything = report_math.split_range(None, None, "month")
    assert everything.has_full and everything.edges == ()


def test_inquiry_received_moves_only_a_new_or_closed_lead_per_the_lifecycle_table() -> None:
    assert domain.stage_entered("inquiry.received", None) == "inquiry"
    assert domain.stage_entered("inquiry.received", "lost") == "inquiry"
    assert domain.stage_entered("inquiry.received", "sql") is None
    assert domain.stage_entered("inquiry.received", "won") is None
    assert domain.stage_entered("lead.accepted", "mql") == "sal"
    assert report_math.stage_of_event("inquiry.received") == "inquiry"
    assert domain.stage_entered("lead.scored", "mql") is None


def test_capture_logged_after_nurture_enrolment_still_counts_the_inquiry() -> None:
    # scoring's nurture.enrolled can reach the log before intake's lead.captured
    state = LeadJourney()
    domain.fold(state, fact("nurture.enrolled", 1, track_id="t"))
    effects = domain.fold(state, fact("lead.captured", 0, source={"channel": "web_form"}))
    assert effects.new_milestones == ["inquiry"]
    assert state.stage == "nurture"


def test_money_keeps_its_currency_and_pipeline_is_open_opportunities_only() -> None:
    state, fx = run(
        [
            fact("lead.captured", 0, capture_method="api"),
            fact("opportunity.opened", 1, amount="1000", currency="EUR", opportunity_id="o"),
        ]
    )
    assert state.money == {"EUR": [1000.0, 0.0, 0.0]}
    _, fx = run([fact("deal.lost", 2, reason_code="price")], state)
    assert list(fx[0].cohort_money) == [("EUR", -1000.0, 0.0, 0)]
    assert state.money == {"EUR": [0.0, 0.0, 0.0]}
    # A second cycle won in USD is kept apart from the EUR figures.
    _, fx = run([fact("deal.won", 3, amount="500", currency="USD")], state)
    assert (fx[0].won, fx[0].currency) == (500.0, "USD")
    assert state.money == {"EUR": [0.0, 0.0, 0.0], "USD": [0.0, 500.0, 1.0]}


def test_a_queue_is_not_a_rep_until_a_rep_takes_the_lead() -> None:
    state, _ = run(
        [
            fact("lead.captured", 0, capture_method="api"),
            fact("lead.qualified", 1),
            fact("lead.assigned", 1, assignee_kind="queue", queue_id="unassigned", team_id="na"),
        ]
    )
    assert (state.rep_id, state.queue_id) == (segments.UNKNOWN, "unassigned")
    run([fact("lead.accepted", 2, rep_id="r7")], state)
    assert (state.rep_id, state.queue_id) == ("r7", segments.UNKNOWN)


def test_each_sla_clock_gets_one_verdict_counted_on_its_start_day() -> None:
    owner = {"policy_id": "p", "rep_id": "r1", "team_id": "t1"}
    state, fx = run(
        [
            fact("sla.started", 1, sla_id="a", **owner),
            fact("sla.breached", 30, sla_id="a", **owner),
            fact("sla.met", 31, sla_id="a", on_time=False, **owner),
            fact("sla.started", 40, sla_id="b", **owner),
            fact("sla.met", 50, sla_id="c", on_time=False, policy_id="p"),  # never started
            fact("sla.met", 41, sla_id="b", on_time=True, **owner),
        ]
    )
    assert [f.sla_verdict for f in fx] == [None, "late", None, None, "late", "on_time"]
    # the breach and the late meet count on the day clock "a" started (T0 + 1 h)
    assert {f.sla_day for f in fx[:3]} == {fx[0].sla_day}
    assert fx[1].sla_day != (T0 + timedelta(hours=30)).date()
    assert fx[2].sla_owner == ("r1", "t1")
    assert state.slas == {}


def test_a_reinstated_lead_is_no_longer_a_disqualified_lead_of_its_cohort() -> None:
    state, fx = run(
        [
            fact("lead.captured", 0, source={"channel": "web_form"}),
            fact("lead.qualified", 1),
            fact("lead.disqualified", 2, rule_id="do_not_contact"),
            fact("lead.reinstated", 3, reason="do_not_contact_lifted"),
            fact("lead.qualified", 3),
            fact("lead.disqualified", 4, rule_id="do_not_contact"),  # asked again
        ]
    )
    assert [(f.outcomes, f.retracted) for f in fx if f.outcomes or f.retracted] == [
        (("disqualified",), ()),
        ((), ("disqualified",)),
        (("disqualified",), ()),
    ]
    stages = [(f.transition.from_stage, f.transition.to_stage) for f in fx if f.transition]
    assert stages[2:] == [
        ("mql", "disqualified"),
        ("disqualified", "inquiry"),
        ("inquiry", "mql"),
        ("mql", "disqualified"),
    ]
    assert [m for f in fx for m in f.new_milestones] == ["inquiry", "mql"]  # MQL counted once
    assert state.disqualified is True and state.stage == "disqualified"


def test_imported_history_counts_as_won_in_its_inquiry_cohort() -> None:
    """``history.deal_won`` (historical) moves an inquiry straight to won: every milestone up
    to won counts once in the capture's cohort, with the imported amount as won revenue."""
    state, fx = run(
        [
            fact("lead.captured", 0, capture_method="import", historical=True),
            fact("history.deal_won", 0, amount="900", historical=True),
        ]
    )
    assert state.stage == "won" and state.cohort_day == T0.date()
    assert list(fx[0].new_milestones) == ["inquiry"]
    assert list(fx[1].new_milestones) == ["mql", "sal", "sql", "opportunity", "won"]
    assert fx[1].won == 900.0
    assert [(m[2], m[3]) for m in fx[1].cohort_money] == [(900.0, 1)]
    lost_state, lost_fx = run(
        [fact("lead.captured", 0, historical=True), fact("history.deal_lost", 0, historical=True)]
    )
    assert lost_state.stage == "lost" and lost_state.lost
    assert list(lost_fx[1].outcomes) == ["lost"] and not lost_fx[1].new_milestones
