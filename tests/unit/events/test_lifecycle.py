"""The lead lifecycle: the agreed stages and moves (ARCHITECTURE §2), checked in one place."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leadflow.events.catalogue  # noqa: F401 - registers the catalogue
from leadflow.events.lifecycle import (
    CUSTOMER_STAGES,
    EXPANSION_MOVES,
    MOVES,
    OPEN_STAGES,
    REENGAGEABLE_STAGES,
    TERMINAL_STAGES,
    Cycle,
    LeadLifecycle,
    Stage,
    TransitionRefused,
    check_transition,
    replay,
    stage_after,
    target_stage,
    transition_table,
)
from leadflow.events.registry import registry

CATALOGUE_TYPES = sorted(cls.event_type for cls in registry.all())
NON_MOVING_TYPES = sorted(set(CATALOGUE_TYPES) - set(MOVES) - set(EXPANSION_MOVES))
HAND_RAISES = {"lead.captured", "inquiry.received"}
FUNNEL = [
    "lead.captured",
    "lead.scored",
    "nurture.enrolled",
    "activity.recorded",
    "lead.qualified",
    "lead.assigned",
    "sla.started",
    "lead.accepted",
    "lead.contacted",
    "lead.sales_qualified",
    "opportunity.opened",
    "deal.won",
]


def test_stages_are_the_agreed_labels() -> None:
    assert [s.value for s in Stage] == [
        "inquiry",
        "nurture",
        "mql",
        "sal",
        "sql",
        "opportunity",
        "won",
        "lost",
        "disqualified",
        "on_hold",
        "customer",
        "churned",
    ]
    assert Stage.ON_HOLD in OPEN_STAGES
    assert OPEN_STAGES.isdisjoint(TERMINAL_STAGES)
    assert {Stage.WON, Stage.CUSTOMER} == CUSTOMER_STAGES
    assert set(Stage) == OPEN_STAGES | TERMINAL_STAGES | CUSTOMER_STAGES
    assert {Stage.LOST, Stage.DISQUALIFIED, Stage.CHURNED} == TERMINAL_STAGES


def test_target_stage_maps_catalogue_events_to_the_stage_they_reach() -> None:
    assert {t: target_stage(t) for t in MOVES} == {
        "lead.captured": Stage.INQUIRY,
        "inquiry.received": Stage.INQUIRY,
        "lead.qualified": Stage.MQL,
        "nurture.enrolled": Stage.NURTURE,
        "lead.accepted": Stage.SAL,
        "lead.rejected": Stage.NURTURE,
        "lead.recycled": Stage.NURTURE,
        "lead.sales_qualified": Stage.SQL,
        "opportunity.opened": Stage.OPPORTUNITY,
        "deal.won": Stage.WON,
        "deal.lost": Stage.LOST,
        "lead.disqualified": Stage.DISQUALIFIED,
        "lead.reinstated": Stage.INQUIRY,
        "lead.put_on_hold": Stage.ON_HOLD,
        "history.deal_won": Stage.WON,
        "history.deal_lost": Stage.LOST,
        "customer.became": Stage.CUSTOMER,
        "expansion.opened": Stage.INQUIRY,
        "customer.churned": Stage.CHURNED,
    }
    assert {t: target_stage(t, Cycle.EXPANSION) for t in EXPANSION_MOVES} == {
        "deal.lost": Stage.CUSTOMER,
        "history.deal_lost": Stage.CUSTOMER,
        "lead.disqualified": Stage.CUSTOMER,
        "expansion.opened": Stage.INQUIRY,
        "customer.churned": Stage.CHURNED,
    }
    for event_type in ("lead.scored", "lead.assigned", "lead.contacted", "sla.breached"):
        assert target_stage(event_type) is None


def test_every_stage_moving_event_is_a_registered_catalogue_type() -> None:
    assert set(MOVES) <= set(CATALOGUE_TYPES), set(MOVES) - set(CATALOGUE_TYPES)
    assert set(EXPANSION_MOVES) <= set(MOVES)


def test_the_whole_funnel_walks_from_inquiry_to_won() -> None:
    stages = []
    state = LeadLifecycle()
    for event_type in FUNNEL:
        state = state.apply(event_type)
        stages.append(state.stage)
    assert stages[0] is Stage.INQUIRY
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == [
        Stage.INQUIRY,
        Stage.NURTURE,
        Stage.MQL,
        Stage.SAL,
        Stage.SQL,
        Stage.OPPORTUNITY,
        Stage.WON,
    ]
    assert replay(FUNNEL) is Stage.WON


def test_inquiry_can_qualify_directly_and_mql_can_cool_back_to_nurture() -> None:
    assert replay(["lead.captured", "lead.qualified"]) is Stage.MQL
    assert replay(["lead.captured", "lead.qualified", "nurture.enrolled"]) is Stage.NURTURE
    assert replay(["lead.captured", "lead.qualified", "nurture.enrolled", "lead.qualified"]) is (
        Stage.MQL
    )


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        (Stage.MQL, "lead.rejected", Stage.NURTURE),
        (Stage.SAL, "lead.rejected", Stage.NURTURE),
        (Stage.SAL, "lead.recycled", Stage.NURTURE),
        (Stage.SQL, "lead.recycled", Stage.NURTURE),
        (Stage.OPPORTUNITY, "lead.recycled", Stage.NURTURE),
        (Stage.OPPORTUNITY, "deal.lost", Stage.LOST),
        (Stage.NURTURE, "lead.disqualified", Stage.DISQUALIFIED),
        (Stage.SQL, "lead.put_on_hold", Stage.ON_HOLD),
        (Stage.LOST, "inquiry.received", Stage.INQUIRY),
        (Stage.LOST, "lead.recycled", Stage.NURTURE),
        (Stage.DISQUALIFIED, "inquiry.received", Stage.INQUIRY),
        (Stage.DISQUALIFIED, "nurture.enrolled", Stage.NURTURE),
    ],
)
def test_allowed_moves(current: Stage, event_type: str, expected: Stage) -> None:
    assert stage_after(current, event_type) is expected
    check_transition(current, expected, event_type)


@pytest.mark.parametrize(
    ("current", "event_type"),
    [
        (None, "lead.qualified"),
        (Stage.INQUIRY, "lead.accepted"),
        (Stage.NURTURE, "lead.accepted"),
        (Stage.MQL, "lead.sales_qualified"),
        (Stage.SAL, "opportunity.opened"),
        (Stage.SQL, "deal.won"),
        (Stage.SQL, "deal.lost"),
        (Stage.INQUIRY, "lead.rejected"),
        (Stage.INQUIRY, "lead.recycled"),
        (Stage.WON, "lead.recycled"),
        (Stage.WON, "deal.lost"),
        (Stage.WON, "deal.won"),
        (Stage.CUSTOMER, "lead.qualified"),
        (Stage.CUSTOMER, "deal.won"),
        (Stage.CUSTOMER, "customer.became"),
        (Stage.OPPORTUNITY, "customer.became"),
        (Stage.MQL, "expansion.opened"),
        (Stage.LOST, "expansion.opened"),
        (Stage.OPPORTUNITY, "customer.churned"),
        (Stage.CHURNED, "lead.qualified"),
        (Stage.CHURNED, "lead.recycled"),
        (Stage.CHURNED, "customer.became"),
        (Stage.LOST, "lead.qualified"),
        (Stage.LOST, "deal.won"),
        (Stage.DISQUALIFIED, "lead.disqualified"),
        (Stage.DISQUALIFIED, "lead.accepted"),
    ],
)
def test_refused_moves_raise_naming_from_to_and_event(
    current: Stage | None, event_type: str
) -> None:
    target = target_stage(event_type)
    assert target is not None
    with pytest.raises(TransitionRefused) as refused:
        stage_after(current, event_type)
    assert refused.value.current is current
    assert refused.value.target is target
    assert refused.value.event_type == event_type
    message = str(refused.value)
    assert event_type in message
    assert target.value in message
    assert (current.value if current else "new lead") in message
    with pytest.raises(TransitionRefused):
        check_transition(current, target, event_type)


def test_hand_raises_on_known_leads_never_move_or_fail() -> None:
    for stage in OPEN_STAGES | CUSTOMER_STAGES:
        for event_type in HAND_RAISES:
            assert stage_after(stage, event_type) is stage
            check_transition(stage, Stage.INQUIRY, event_type)
    assert stage_after(None, "inquiry.received") is Stage.INQUIRY


def test_same_stage_repeats_in_open_stages_are_harmless() -> None:
    assert stage_after(Stage.NURTURE, "nurture.enrolled") is Stage.NURTURE
    assert stage_after(Stage.SAL, "lead.accepted") is Stage.SAL
    assert stage_after(Stage.MQL, "lead.qualified") is Stage.MQL
    held = LeadLifecycle(Stage.ON_HOLD, held_from=Stage.SQL)
    assert held.apply("lead.put_on_hold") == held  # keeps where it came from


def test_on_hold_returns_to_where_it_came_from_or_to_nurture() -> None:
    held = LeadLifecycle().replay(
        ["lead.captured", "lead.qualified", "lead.accepted", "lead.put_on_hold"]
    )
    assert held == LeadLifecycle(Stage.ON_HOLD, held_from=Stage.SAL)
    assert held.apply("lead.accepted") == LeadLifecycle(Stage.SAL)
    assert held.apply("lead.sales_qualified") == LeadLifecycle(Stage.SQL)
    assert held.apply("lead.recycled") == LeadLifecycle(Stage.NURTURE)
    assert held.apply("nurture.enrolled") == LeadLifecycle(Stage.NURTURE)
    assert held.apply("lead.disqualified") == LeadLifecycle(Stage.DISQUALIFIED)
    with pytest.raises(TransitionRefused, match="held from sal"):
        held.apply("opportunity.opened")
    with pytest.raises(TransitionRefused, match="held from sal"):
        held.apply("deal.won")
    assert stage_after(Stage.ON_HOLD, "lead.accepted", held_from=Stage.SAL) is Stage.SAL


def test_a_parked_opportunity_can_be_closed_directly() -> None:
    held = LeadLifecycle(Stage.ON_HOLD, held_from=Stage.OPPORTUNITY)
    assert held.apply("deal.won").stage is Stage.WON
    assert held.apply("deal.lost").stage is Stage.LOST


def test_on_hold_with_unknown_origin_only_goes_to_nurture_or_disqualified() -> None:
    assert stage_after(Stage.ON_HOLD, "lead.recycled") is Stage.NURTURE
    assert stage_after(Stage.ON_HOLD, "lead.disqualified") is Stage.DISQUALIFIED
    with pytest.raises(TransitionRefused, match="unknown"):
        stage_after(Stage.ON_HOLD, "lead.accepted")


def test_held_from_is_only_kept_for_held_leads_and_must_be_active() -> None:
    assert LeadLifecycle(Stage.SAL, held_from=Stage.MQL).held_from is None
    with pytest.raises(ValueError):
        LeadLifecycle(Stage.ON_HOLD, held_from=Stage.WON)


def test_check_transition_refuses_a_target_the_event_does_not_reach() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_transition(Stage.SAL, Stage.SQL, "lead.scored")
    assert refused.value.event_type == "lead.scored"
    assert "sal" in str(refused.value) and "sql" in str(refused.value)
    with pytest.raises(TransitionRefused, match=r"lead\.accepted moves a lead to sal"):
        check_transition(Stage.MQL, Stage.SQL, "lead.accepted")


def test_events_that_do_not_move_leads_never_change_any_stage() -> None:
    assert NON_MOVING_TYPES, "the catalogue has events such as lead.scored"
    for stage in [None, *Stage]:
        for event_type in NON_MOVING_TYPES:
            assert stage_after(stage, event_type) is stage


def test_transition_refused_survives_pickling_with_its_fields() -> None:
    original = TransitionRefused(
        Stage.CHURNED, Stage.NURTURE, "lead.recycled", "churned is terminal"
    )
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.current, copy.target, copy.event_type, str(copy)) == (
        original.current,
        original.target,
        original.event_type,
        str(original),
    )


def test_transition_table_is_derived_from_the_moves() -> None:
    table = transition_table()
    assert table[None] == {Stage.INQUIRY: ["inquiry.received", "lead.captured"]}
    assert table[Stage.WON] == {
        Stage.INQUIRY: ["expansion.opened"],
        Stage.CUSTOMER: ["customer.became"],
        Stage.CHURNED: ["customer.churned"],
    }
    assert table[Stage.OPPORTUNITY][Stage.WON] == ["deal.won", "history.deal_won"]
    assert table[Stage.INQUIRY][Stage.WON] == ["history.deal_won"]  # imported history only
    assert set(table[Stage.LOST]) == {Stage.INQUIRY, Stage.NURTURE}
    assert table[Stage.CHURNED] == {Stage.INQUIRY: ["inquiry.received", "lead.captured"]}
    expansion = transition_table(Cycle.EXPANSION)
    assert expansion[Stage.OPPORTUNITY][Stage.CUSTOMER] == [
        "deal.lost",
        "history.deal_lost",
        "lead.disqualified",
    ]
    assert expansion[Stage.SAL][Stage.CHURNED] == ["customer.churned"]


# -- properties over random event sequences -------------------------------------------------

event_types = st.sampled_from([*CATALOGUE_TYPES, "not.a.catalogue.event"])
lifecycles = st.one_of(
    st.just(LeadLifecycle()),
    st.sampled_from([s for s in Stage if s is not Stage.ON_HOLD]).map(LeadLifecycle),
    st.sampled_from([s for s in Stage if s is not Stage.ON_HOLD]).map(
        lambda s: LeadLifecycle(s, cycle=Cycle.EXPANSION)
    ),
    st.builds(
        LeadLifecycle,
        st.just(Stage.ON_HOLD),
        st.one_of(st.none(), st.sampled_from(sorted(OPEN_STAGES - {Stage.ON_HOLD}))),
    ),
)


def _lenient_walk(
    start: LeadLifecycle, events: list[str]
) -> tuple[LeadLifecycle, list[str], list[TransitionRefused]]:
    """Apply each event, skipping refused ones: what a tolerant reader would do."""
    state, accepted, refusals = start, [], []
    for event_type in events:
        try:
            state = state.apply(event_type)
        except TransitionRefused as refused:
            refusals.append(refused)
            continue
        accepted.append(event_type)
        assert state.stage is None or isinstance(state.stage, Stage)
        if state.stage is not Stage.ON_HOLD:
            assert state.held_from is None
    return state, accepted, refusals


@settings(max_examples=300)
@given(start=lifecycles, events=st.lists(event_types, max_size=40))
def test_random_sequences_keep_a_valid_stage_and_replay_equals_stepwise(
    start: LeadLifecycle, events: list[str]
) -> None:
    final, accepted, refusals = _lenient_walk(start, events)
    assert LeadLifecycle.replay(accepted, start=start) == final
    if start == LeadLifecycle():
        assert replay(accepted) == final.stage
        if final.stage is not None:
            # nothing but a hand-raise can start a lead
            assert accepted and next(e for e in accepted if e in MOVES) in HAND_RAISES
    for refused in refusals:
        assert refused.target is not None
        assert refused.event_type in str(refused)
        assert refused.target.value in str(refused)
        assert (refused.current.value if refused.current else "new lead") in str(refused)


@settings(max_examples=300)
@given(start=lifecycles, events=st.lists(event_types, max_size=30))
def test_stage_after_with_held_from_agrees_with_the_lifecycle(
    start: LeadLifecycle, events: list[str]
) -> None:
    state = start
    for event_type in events:
        try:
            expected = state.apply(event_type)
        except TransitionRefused:
            with pytest.raises(TransitionRefused):
                stage_after(state.stage, event_type, held_from=state.held_from, cycle=state.cycle)
            continue
        kwargs = {"held_from": state.held_from, "cycle": state.cycle}
        assert stage_after(state.stage, event_type, **kwargs) == expected.stage
        target = target_stage(event_type, state.cycle)
        if target is not None:
            check_transition(state.stage, target, event_type, **kwargs)
        state = expected


@given(
    terminal=st.sampled_from(sorted(TERMINAL_STAGES)),
    event_type=st.sampled_from(sorted(MOVES)),
)
def test_terminal_stages_refuse_everything_but_re_engagement(
    terminal: Stage, event_type: str
) -> None:
    try:
        after = stage_after(terminal, event_type)
    except TransitionRefused as refused:
        assert refused.current is terminal
        assert terminal.value in str(refused)
        return
    assert terminal in REENGAGEABLE_STAGES
    assert after in {Stage.INQUIRY, Stage.NURTURE}
    if terminal is Stage.CHURNED:  # only a new hand-raise wins a churned customer back
        assert event_type in HAND_RAISES


@st.composite
def valid_histories(draw: st.DrawFn) -> list[str]:
    """Random walks through the lifecycle: at each step an allowed or a non-moving event."""
    state, history = LeadLifecycle(), []
    for _ in range(draw(st.integers(0, 40))):
        choices = state.allowed_events() + NON_MOVING_TYPES
        event_type = draw(st.sampled_from(choices))
        state = state.apply(event_type)
        history.append(event_type)
    return history


@settings(max_examples=300)
@given(history=valid_histories())
def test_replay_of_valid_histories_equals_stepwise_application(history: list[str]) -> None:
    stages: list[Stage | None] = []
    state = LeadLifecycle()
    for event_type in history:
        state = state.apply(event_type)
        stages.append(state.stage)
    assert replay(history) == (stages[-1] if stages else None)
    # replay composes: replaying a prefix then the rest gives the same lifecycle
    cut = len(history) // 2
    assert LeadLifecycle.replay(history[cut:], start=LeadLifecycle.replay(history[:cut])) == state
    # a lead once won stays a customer (won, customer, an expansion cycle) until it churns
    if Stage.WON in stages:
        after_won = stages[stages.index(Stage.WON) :]
        until = after_won.index(Stage.CHURNED) if Stage.CHURNED in after_won else None
        assert Stage.LOST not in after_won[:until]
        assert Stage.DISQUALIFIED not in after_won[:until]


def test_a_reinstated_lead_goes_back_to_inquiry_only_from_disqualified() -> None:
    assert stage_after(Stage.DISQUALIFIED, "lead.reinstated") is Stage.INQUIRY
    assert stage_after(Stage.INQUIRY, "lead.qualified") is Stage.MQL
    for stage in (Stage.MQL, Stage.SAL, Stage.WON, Stage.LOST, Stage.NURTURE):
        with pytest.raises(TransitionRefused):
            stage_after(stage, "lead.reinstated")


# -- after the close: customer, expansion, churn (issue 30) ---------------------------------

NEW_BUSINESS_WIN = [
    "lead.captured",
    "lead.qualified",
    "lead.assigned",
    "lead.accepted",
    "lead.sales_qualified",
    "opportunity.opened",
    "deal.won",
    "customer.became",
]
EXPANSION_WIN = [
    "inquiry.received",
    "expansion.opened",
    "lead.qualified",
    "lead.assigned",
    "lead.accepted",
    "lead.sales_qualified",
    "opportunity.opened",
    "deal.won",
    "customer.became",
]


def test_won_becomes_customer_in_the_new_business_cycle() -> None:
    won = LeadLifecycle.replay(NEW_BUSINESS_WIN[:-1])
    assert won == LeadLifecycle(Stage.WON, cycle=Cycle.NEW_BUSINESS)
    assert won.is_customer
    customer = won.apply("customer.became")
    assert customer == LeadLifecycle(Stage.CUSTOMER, cycle=Cycle.NEW_BUSINESS)
    assert customer.is_customer and not customer.is_open and not customer.is_terminal


def test_a_customers_hand_raise_keeps_it_a_customer_until_an_expansion_opens() -> None:
    customer = LeadLifecycle.replay(NEW_BUSINESS_WIN)
    assert customer.apply("inquiry.received") == customer
    assert customer.apply("activity.recorded") == customer
    opened = customer.apply("expansion.opened")
    assert opened == LeadLifecycle(Stage.INQUIRY, cycle=Cycle.EXPANSION)
    assert opened.is_customer and opened.is_open
    assert opened.apply("expansion.opened") == opened  # a repeat is a no-op
    assert opened.apply("lead.qualified").apply("expansion.opened") == LeadLifecycle(
        Stage.MQL, cycle=Cycle.EXPANSION
    )


def test_an_expansion_cycle_re_runs_the_funnel_and_ends_a_customer_again() -> None:
    stages = []
    state = LeadLifecycle.replay(NEW_BUSINESS_WIN)
    for event_type in EXPANSION_WIN:
        state = state.apply(event_type)
        stages.append((state.stage, state.cycle))
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == [
        (Stage.CUSTOMER, Cycle.NEW_BUSINESS),
        (Stage.INQUIRY, Cycle.EXPANSION),
        (Stage.MQL, Cycle.EXPANSION),
        (Stage.SAL, Cycle.EXPANSION),
        (Stage.SQL, Cycle.EXPANSION),
        (Stage.OPPORTUNITY, Cycle.EXPANSION),
        (Stage.WON, Cycle.EXPANSION),
        (Stage.CUSTOMER, Cycle.EXPANSION),
    ]
    # a second expansion opens from the customer again
    again = state.apply("expansion.opened")
    assert again == LeadLifecycle(Stage.INQUIRY, cycle=Cycle.EXPANSION)


def test_a_colleague_at_a_customer_account_opens_an_expansion_from_inquiry() -> None:
    colleague = LeadLifecycle.replay(["lead.captured", "expansion.opened", "lead.qualified"])
    assert colleague == LeadLifecycle(Stage.MQL, cycle=Cycle.EXPANSION)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (["deal.lost"], Stage.CUSTOMER),
        (["lead.disqualified"], Stage.CUSTOMER),
        (["history.deal_lost"], Stage.CUSTOMER),
        (["lead.put_on_hold", "deal.lost"], Stage.CUSTOMER),
        (["lead.recycled"], Stage.NURTURE),
        (["customer.churned"], Stage.CHURNED),
    ],
)
def test_an_expansion_that_ends_without_a_win_leaves_a_customer(
    events: list[str], expected: Stage
) -> None:
    opportunity = LeadLifecycle.replay([*NEW_BUSINESS_WIN, *EXPANSION_WIN[:7]])
    assert opportunity == LeadLifecycle(Stage.OPPORTUNITY, cycle=Cycle.EXPANSION)
    after = LeadLifecycle.replay(events, start=opportunity)
    assert after.stage is expected
    assert after.cycle is Cycle.EXPANSION
    # the same moves in new business end the lead as lost / disqualified
    new_business = LeadLifecycle(Stage.OPPORTUNITY)
    assert new_business.apply("deal.lost").stage is Stage.LOST
    assert new_business.apply("lead.disqualified").stage is Stage.DISQUALIFIED


def test_churn_ends_customer_status_and_a_hand_raise_is_a_new_business_win_back() -> None:
    for start in (LeadLifecycle(Stage.WON), LeadLifecycle(Stage.CUSTOMER)):
        churned = start.apply("customer.churned")
        assert churned.stage is Stage.CHURNED and not churned.is_customer
    churned = LeadLifecycle.replay([*NEW_BUSINESS_WIN, "customer.churned"])
    with pytest.raises(TransitionRefused, match="churned is terminal"):
        churned.apply("expansion.opened")
    with pytest.raises(TransitionRefused, match="churned is terminal"):
        churned.apply("customer.churned")
    back = LeadLifecycle.replay([*NEW_BUSINESS_WIN, "expansion.opened", "customer.churned"])
    assert back == LeadLifecycle(Stage.CHURNED, cycle=Cycle.EXPANSION)
    assert back.apply("inquiry.received") == LeadLifecycle(Stage.INQUIRY, cycle=Cycle.NEW_BUSINESS)


def test_a_prospect_cannot_churn_or_open_an_expansion_past_inquiry() -> None:
    for stage in (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.NURTURE):
        with pytest.raises(TransitionRefused):
            LeadLifecycle(stage).apply("customer.churned")
        with pytest.raises(TransitionRefused):
            LeadLifecycle(stage).apply("expansion.opened")


def test_check_transition_follows_the_cycle() -> None:
    check_transition(Stage.OPPORTUNITY, Stage.CUSTOMER, "deal.lost", cycle=Cycle.EXPANSION)
    with pytest.raises(TransitionRefused, match="moves a lead to lost"):
        check_transition(Stage.OPPORTUNITY, Stage.CUSTOMER, "deal.lost")
    assert stage_after(Stage.SQL, "customer.churned", cycle=Cycle.EXPANSION) is Stage.CHURNED
