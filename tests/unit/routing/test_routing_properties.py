"""Property tests: weighted round-robin is fair, caps hold, and every lead gets one owner."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.routing.domain import (
    Conditions,
    LiveState,
    Queue,
    Rep,
    Roster,
    RoutingState,
    Rule,
    RuleSet,
    Target,
    Team,
    choose_assignee,
    smooth_wrr,
)

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

weights = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8)


@given(weights, st.integers(min_value=1, max_value=5))
def test_wrr_gives_each_rep_exactly_its_weight_per_cycle(ws: list[int], cycles: int) -> None:
    reps = [Rep(id=f"r{i}", weight=w) for i, w in enumerate(ws)]
    credits: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for _ in range(sum(ws) * cycles):
        chosen, credits = smooth_wrr(reps, credits)
        counts[chosen.id] += 1
    assert counts == Counter({r.id: r.weight * cycles for r in reps})
    # the pointer state returns to zero after whole cycles: nothing drifts across restarts
    assert all(v == 0 for v in credits.values())


@given(weights, st.integers(min_value=1, max_value=200))
def test_wrr_never_strays_more_than_one_cycle_from_the_weights(ws: list[int], n: int) -> None:
    reps = [Rep(id=f"r{i}", weight=w) for i, w in enumerate(ws)]
    credits: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for _ in range(n):
        chosen, credits = smooth_wrr(reps, credits)
        counts[chosen.id] += 1
    total = sum(ws)
    for r in reps:
        assert abs(counts[r.id] - n * r.weight / total) <= len(reps)


@given(weights, st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=60))
def test_wrr_resumed_from_stored_pointer_equals_uninterrupted_run(
    ws: list[int], cut_points: list[int]
) -> None:
    """A restart (or another replica) reading the stored credits continues the same sequence."""
    reps = [Rep(id=f"r{i}", weight=w) for i, w in enumerate(ws)]
    n = len(cut_points)
    straight: list[str] = []
    credits: dict[str, int] = {}
    for _ in range(n):
        chosen, credits = smooth_wrr(reps, credits)
        straight.append(chosen.id)
    resumed: list[str] = []
    stored: dict[str, int] = {}
    for _ in range(n):
        chosen, new = smooth_wrr(reps, dict(stored))  # a fresh process reading the DB row
        stored = {k: int(v) for k, v in new.items()}
        resumed.append(chosen.id)
    assert resumed == straight


rep_strategy = st.builds(
    Rep,
    id=st.sampled_from([f"r{i}" for i in range(6)]),
    active=st.booleans(),
    weight=st.integers(min_value=1, max_value=5),
    max_open=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    max_new_per_day=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    territories=st.sampled_from([[], ["US"], ["DE"], ["US", "DE"]]),
)

lead_strategy = st.builds(
    LeadSnapshot,
    country=st.sampled_from(["US", "DE", "FR", None]),
    grade=st.sampled_from(["A", "B+", "C", "D-", None]),
    company_size=st.one_of(st.none(), st.integers(min_value=1, max_value=5000)),
    account_id=st.sampled_from([None, "acc-1", "acc-2"]),
)


def _rule_set(strategy: str, with_country_rule: bool) -> RuleSet:
    rules = []
    if with_country_rule:
        rules.append(
            Rule(id="us", when=Conditions(country=["US"]), target=Target(kind="rep", rep_id="r0"))
        )
    rules.append(
        Rule(
            id="pool",
            when=Conditions(grade=["A", "B"]),
            target=Target(kind="team", team_id="t", strategy=strategy),  # type: ignore[arg-type]
        )
    )
    return RuleSet(rules=rules, default_queue_id="unassigned")


@settings(max_examples=150)
@given(
    st.lists(rep_strategy, min_size=0, max_size=6, unique_by=lambda r: r.id),
    st.lists(lead_strategy, min_size=1, max_size=40),
    st.sampled_from(["round_robin", "least_loaded"]),
    st.booleans(),
    st.sampled_from([{}, {"acc-1": "r1"}, {"acc-2": "ghost"}]),
)
def test_every_lead_gets_exactly_one_owner_and_no_rep_exceeds_a_cap(
    reps: list[Rep],
    leads: list[LeadSnapshot],
    strategy: str,
    with_country_rule: bool,
    owners: dict[str, str],
) -> None:
    roster = Roster.of(
        reps, [Team(id="t", members=[r.id for r in reps])], [Queue(id="unassigned")], owners
    )
    rules = _rule_set(strategy, with_country_rule)
    open_counts: Counter[str] = Counter()
    new_counts: Counter[tuple[str, object]] = Counter()
    pointers: dict[str, dict[str, int]] = {}
    for lead in leads:
        state = RoutingState(dict(open_counts), dict(new_counts), pointers)  # type: ignore[arg-type]
        d = choose_assignee(lead, rules, roster, state, NOW)
        # exactly one owner: a rep xor a queue
        assert (d.rep_id is None) != (d.queue_id is None)
        assert d.assignee_kind == ("rep" if d.rep_id else "queue")
        if d.rep_id is None:
            continue
        rep = roster.reps[d.rep_id]
        assert rep.active
        assert rep.max_open is None or open_counts[rep.id] < rep.max_open
        day = rep.local_day(NOW)
        assert rep.max_new_per_day is None or new_counts[(rep.id, day)] < rep.max_new_per_day
        open_counts[rep.id] += 1
        new_counts[(rep.id, day)] += 1
        if d.pool is not None and d.pointer is not None:
            pointers[d.pool] = dict(d.pointer)


@settings(max_examples=100)
@given(
    st.lists(rep_strategy, min_size=0, max_size=6, unique_by=lambda r: r.id),
    st.lists(lead_strategy, min_size=1, max_size=40),
    st.sampled_from(["round_robin", "least_loaded"]),
    st.booleans(),
)
def test_a_batch_decided_on_live_state_equals_sequential_decisions(
    reps: list[Rep], leads: list[LeadSnapshot], strategy: str, with_country_rule: bool
) -> None:
    """The batched path (read once, record each decision in memory) chooses exactly what
    one-at-a-time decisions on freshly counted state choose, and writes back the same."""
    roster = Roster.of(reps, [Team(id="t", members=[r.id for r in reps])], [Queue(id="unassigned")])
    rules = _rule_set(strategy, with_country_rule)
    live = LiveState(open_counts={r.id: 0 for r in reps[:1]})
    view = live.view()
    open_counts: Counter[str] = Counter({r.id: 0 for r in reps[:1]})
    new_counts: Counter[tuple[str, object]] = Counter()
    pointers: dict[str, dict[str, int]] = {}
    for lead in leads:
        fresh = RoutingState(dict(open_counts), dict(new_counts), dict(pointers))  # type: ignore[arg-type]
        expected = choose_assignee(lead, rules, roster, fresh, NOW)
        got = choose_assignee(lead, rules, roster, view, NOW)
        assert got == expected
        live.record(got, roster, NOW)
        if expected.rep_id is not None:
            open_counts[expected.rep_id] += 1
            new_counts[(expected.rep_id, roster.reps[expected.rep_id].local_day(NOW))] += 1
        if expected.pool is not None and expected.pointer is not None:
            pointers[expected.pool] = dict(expected.pointer)
    assert live.new_delta == {k: v for k, v in new_counts.items() if v}
    assert {p: live.pointers[p] for p in live.dirty_pools} == pointers


def test_live_state_releases_the_previous_owner_of_a_reassigned_lead() -> None:
    roster = Roster.of([Rep(id="a"), Rep(id="b")])
    live = LiveState(open_counts={"a": 3})
    rules = RuleSet(
        rules=[Rule(id="to-b", target=Target(kind="rep", rep_id="b"))],
        default_queue_id="unassigned",
    )
    decision = choose_assignee(LeadSnapshot(country="US"), rules, roster, live.view(), NOW)
    live.record(decision, roster, NOW, released="a")
    assert live.open_counts == {"a": 2, "b": 1}
    assert live.new_delta == {("b", NOW.date()): 1}
