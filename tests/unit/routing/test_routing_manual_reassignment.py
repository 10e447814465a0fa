"""A sales manager's reassignment, decided without a database: who may get the lead and why
each refusal names the field it does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.routing.domain import (
    OutOfOffice,
    ReassignRefused,
    Rep,
    Roster,
    RoutingState,
    RuleSet,
    Team,
    manual_reassignment,
)

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
ROSTER = Roster.of(
    [
        Rep(id="ana", team_id="na", email="ana@example.com"),
        Rep(id="bob", team_id="na", email="bob@example.com", max_open=2),
        Rep(id="cy", team_id="na", email="cy@example.com", active=False),
        Rep(
            id="dee",
            team_id="na",
            email="dee@example.com",
            out_of_office=[OutOfOffice(start=NOW - timedelta(days=1), end=NOW + timedelta(days=1))],
        ),
    ],
    [Team(id="na", members=[])],
)


def _decide(rep_id: str, *, current: str | None = "ana", in_sales: bool = True, open_bob: int = 0):  # type: ignore[no-untyped-def]
    return manual_reassignment(
        in_sales=in_sales,
        stage="sal" if in_sales else "recycled",
        current_rep_id=current,
        rep_id=rep_id,
        reason="ana is on a customer visit",
        roster=ROSTER,
        rules=RuleSet(version=4),
        state=RoutingState(open_counts={"bob": open_bob}),
        now=NOW,
    )


def test_an_available_rep_gets_the_lead_with_the_managers_reason() -> None:
    decision = _decide("bob", open_bob=1)
    assert (decision.assignee_kind, decision.rep_id, decision.team_id) == ("rep", "bob", "na")
    assert decision.queue_id is None and decision.rule_id is None
    assert decision.method == "manual" and decision.rules_version == 4
    assert decision.reason == "reassigned by a sales manager: ana is on a customer visit"


def test_a_queued_lead_may_be_given_to_a_rep() -> None:
    assert _decide("bob", current=None).rep_id == "bob"


@pytest.mark.parametrize(
    ("rep_id", "kwargs", "status", "field", "words"),
    [
        ("zed", {}, 422, "rep_id", "unknown rep 'zed'"),
        ("bob", {"in_sales": False}, 409, "lead_id", "not open with sales (stage recycled)"),
        ("ana", {}, 409, "rep_id", "already owned by 'ana'"),
        ("cy", {}, 409, "rep_id", "unavailable: paused"),
        ("dee", {}, 409, "rep_id", "unavailable: out of office until"),
        ("bob", {"open_bob": 2}, 409, "rep_id", "unavailable: at open-lead cap (2/2)"),
    ],
)
def test_refusals_name_the_field(
    rep_id: str, kwargs: dict[str, object], status: int, field: str, words: str
) -> None:
    with pytest.raises(ReassignRefused) as refused:
        _decide(rep_id, **kwargs)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.field) == (status, field)
    assert words in refused.value.message
