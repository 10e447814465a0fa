"""The lead lifecycle: the agreed stages and moves (ARCHITECTURE §2), checked in one place."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leadflow.events.catalogue  # noqa: F401 - registers the catalogue
from leadflow.events.lifecycle import (
    MOVES,
    OPEN_STAGES,
    REENGAGEABLE_STAGES,
    TERMINAL_STAGES,
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
NON_MOVING_TYPES = sorted(set(CATALOGUE_TYPES) - set(MOVES))
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
    ]
    assert Stage.ON_HOLD in OPEN_STAGES
    assert OPEN_STAGES.isdisjoint(TERMINAL_STAGES)
    assert set(Stage) == OPEN_STAGES | TERMINAL_STAGES


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
    }
    for event_type in ("lead.scored", "lead.assigned", "lead.contacted", "sla.breached"):
        assert target_stage(event_type) is None


def test_every_stage_moving_event_is_a_registered_catalogue_type() -> None:
    assert set(MOVES) <= set(CATALOGUE_TYPES), set(MOVES) - set(CATALOGUE_TYPES)


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
    for stage in OPEN_STAGES | {Stage.WON}:
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
    original = TransitionRefused(Stage.WON, Stage.NURTURE, "lead.recycled", "won is terminal")
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
    assert Stage.WON not in table
    assert table[Stage.OPPORTUNITY][Stage.WON] == ["deal.won", "history.deal_won"]
    assert table[Stage.INQUIRY][Stage.WON] == ["history.deal_won"]  # imported history only
    assert set(table[Stage.LOST]) == {Stage.INQUIRY, Stage.NURTURE}


# -- properties over random event sequences -------------------------------------------------

event_types = st.sampled_from([*CATALOGUE_TYPES, "not.a.catalogue.event"])
lifecycles = st.one_of(
    st.just(LeadLifecycle()),
    st.sampled_from([s for s in Stage if s is not Stage.ON_HOLD]).map(LeadLifecycle),
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
                stage_after(state.stage, event_type, held_from=state.held_from)
            continue
        assert stage_after(state.stage, event_type, held_from=state.held_from) == expected.stage
        target = target_stage(event_type)
        if target is not None:
            check_transition(state.stage, target, event_type, held_from=state.held_from)
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
    if terminal in REENGAGEABLE_STAGES:
        assert after in {Stage.INQUIRY, Stage.NURTURE}
    else:  # won: a customer's new inquiry is accepted and leaves it won
        assert event_type in HAND_RAISES and after is terminal


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
    # a lead once won stays won
    if Stage.WON in stages:
        assert all(s is Stage.WON for s in stages[stages.index(Stage.WON) :])


def test_a_reinstated_lead_goes_back_to_inquiry_only_from_disqualified() -> None:
    assert stage_after(Stage.DISQUALIFIED, "lead.reinstated") is Stage.INQUIRY
    assert stage_after(Stage.INQUIRY, "lead.qualified") is Stage.MQL
    for stage in (Stage.MQL, Stage.SAL, Stage.WON, Stage.LOST, Stage.NURTURE):
        with pytest.raises(TransitionRefused):
            stage_after(stage, "lead.reinstated")
