"""Sales' hand-off actions decided without a database: ``decide_handoff`` on plain lead rows
and a plain roster — who may act, which refusal names which field, what a claim, a win in
another currency or a double click records."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import (
    CustomerBecame,
    DealWon,
    LeadAccepted,
    LeadRejected,
    OpportunityOpened,
)
from leadflow.events.lifecycle import Stage, TransitionRefused
from leadflow.routing.commands import (
    Accept,
    CommandRefused,
    HandOffContext,
    OpenOpportunity,
    RecordContact,
    RecordWin,
    Reject,
    decide_handoff,
)
from leadflow.routing.domain import LeadRow, Queue, Rep, Roster, Team

NOW = datetime(2026, 11, 18, 23, 30, tzinfo=UTC)  # already the 19th in Tokyo
LEAD_ID = uuid.UUID("0190f5b6-0000-7000-8000-000000000001")
ROSTER = Roster.of(
    [
        Rep(id="ana", team_id="emea"),
        Rep(id="ken", team_id="apac", timezone="Asia/Tokyo"),
        Rep(id="bob", team_id="emea"),
    ],
    [Team(id="emea"), Team(id="apac")],
    [Queue(id="emea-q", team_id="emea"), Queue(id="apac-q", team_id="apac")],
)
CODES = {"reject": ["bad_fit", "duplicate"], "lost": ["price"], "recycle": ["not_now"]}


def _lead(stage: Stage | None = Stage.MQL, rep: str | None = "ana", **kw: object) -> LeadRow:
    row = LeadRow(
        lead_id=LEAD_ID,
        stage=stage,
        held_from=None,
        cycle=1,
        snapshot=LeadSnapshot(account_id="acme"),
        assignee_kind="rep" if rep else "queue",
        rep_id=rep,
        team_id="emea",
        queue_id=None if rep else "emea-q",
        excluded_reps=[],
        assigned_at=NOW,
        opportunity_id=None,
        amount=None,
        currency=None,
    )
    return replace(row, **kw)  # type: ignore[arg-type]


def _ctx(caller: str | None = None) -> HandOffContext:
    return HandOffContext(caller_rep_id=caller, roster=ROSTER, reason_codes=CODES, now=NOW)


def test_owner_accepting_an_mql_records_lead_accepted_and_moves_it_to_sal() -> None:
    decision = decide_handoff(Accept(LEAD_ID), _lead(), _ctx())
    assert decision.events == (LeadAccepted(rep_id="ana"),)
    assert decision.stage == "sal"
    assert decision.changes["stage"] is Stage.SAL
    assert decision.rep_id == "ana"
    assert decision.counts_new is None  # the owner already counted this lead


def test_accepting_twice_is_a_repeat_that_records_nothing() -> None:
    decision = decide_handoff(Accept(LEAD_ID), _lead(Stage.SAL), _ctx())
    assert decision.repeated
    assert decision.events == ()
    assert decision.stage == "sal"


def test_a_rep_claims_a_lead_from_their_teams_queue_and_it_counts_on_their_local_day() -> None:
    lead = _lead(rep=None, queue_id="apac-q", team_id="apac")
    decision = decide_handoff(Accept(LEAD_ID, "ken"), lead, _ctx(caller="ken"))
    assert decision.changes["rep_id"] == "ken"
    assert decision.changes["team_id"] == "apac"
    assert decision.changes["queue_id"] is None
    assert decision.changes["assigned_at"] == NOW
    assert decision.counts_new == ("ken", date(2026, 11, 19))


def test_a_rep_cannot_claim_from_another_teams_queue() -> None:
    lead = _lead(rep=None, queue_id="apac-q", team_id="apac")
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(Accept(LEAD_ID, "ana"), lead, _ctx(caller="ana"))
    assert refused.value.status == 403
    assert "belongs to another team" in refused.value.detail


def test_a_rep_rejecting_a_queued_lead_is_told_to_accept_it_first() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(
            Reject(LEAD_ID, "ana", reason_code="bad_fit"), _lead(rep=None), _ctx(caller="ana")
        )
    assert refused.value.status == 403
    assert "accept it first" in refused.value.detail


def test_accepting_a_queued_lead_without_naming_the_rep_refuses_rep_id() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(Accept(LEAD_ID), _lead(rep=None), _ctx())
    assert refused.value.status == 422
    assert refused.value.errors == [{"field": "rep_id", "message": "required for a queued lead"}]


def test_an_unknown_rep_is_refused_naming_rep_id() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(Accept(LEAD_ID, "zed"), _lead(rep=None), _ctx())
    assert (refused.value.status, refused.value.errors[0]["field"]) == (422, "rep_id")


def test_acting_on_another_reps_lead_is_a_conflict_naming_the_owner() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(Accept(LEAD_ID, "bob"), _lead(), _ctx())
    assert refused.value.status == 409
    assert refused.value.extra == {"owner_rep_id": "ana"}


def test_a_reason_code_off_the_list_is_refused_with_the_allowed_codes() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(Reject(LEAD_ID, reason_code="meh"), _lead(), _ctx())
    assert refused.value.status == 422
    assert refused.value.errors == [
        {"field": "reason_code", "message": "must be one of ['bad_fit', 'duplicate']"}
    ]


def test_rejecting_with_a_listed_code_records_the_code() -> None:
    decision = decide_handoff(Reject(LEAD_ID, reason_code="duplicate"), _lead(), _ctx())
    assert decision.events == (LeadRejected(rep_id="ana", reason_code="duplicate"),)


def test_contact_on_a_lead_not_with_sales_is_a_refused_transition() -> None:
    with pytest.raises(TransitionRefused):
        decide_handoff(RecordContact(LEAD_ID), _lead(Stage.NURTURE), _ctx())


def test_opening_an_opportunity_keeps_its_id_amount_and_currency_on_the_lead() -> None:
    cmd = OpenOpportunity(LEAD_ID, opportunity_id="opp-1", amount=Decimal("5000"), currency="EUR")
    decision = decide_handoff(cmd, _lead(Stage.SQL), _ctx())
    [event] = decision.events
    assert isinstance(event, OpportunityOpened)
    assert decision.changes["opportunity_id"] == "opp-1"
    assert (decision.changes["amount"], decision.changes["currency"]) == (Decimal("5000"), "EUR")
    assert decision.stage == "opportunity"


def _opportunity() -> LeadRow:
    return _lead(Stage.OPPORTUNITY, opportunity_id="opp-1", amount=Decimal(100), currency="EUR")


def test_a_win_in_another_currency_without_a_rate_is_a_currency_conflict() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(
            RecordWin(LEAD_ID, amount=Decimal(120), currency="USD"), _opportunity(), _ctx()
        )
    assert (refused.value.status, refused.value.title) == (409, "Currency mismatch")
    assert refused.value.extra == {"opportunity_currency": "EUR"}


def test_a_win_with_an_exchange_rate_is_converted_and_makes_a_customer() -> None:
    cmd = RecordWin(LEAD_ID, amount=Decimal(120), currency="USD", exchange_rate=Decimal("0.9"))
    decision = decide_handoff(cmd, _opportunity(), _ctx())
    won, became = decision.events
    assert isinstance(won, DealWon) and isinstance(became, CustomerBecame)
    assert (won.amount, won.currency, won.original_currency) == (Decimal("108.00"), "EUR", "USD")
    assert became.account_id == "acme"
    assert decision.stage == "customer"
    assert decision.changes["amount"] == Decimal("108.00")


def test_an_exchange_rate_for_the_opportunitys_own_currency_is_refused() -> None:
    cmd = RecordWin(LEAD_ID, amount=Decimal(120), currency="EUR", exchange_rate=Decimal(1))
    with pytest.raises(CommandRefused) as refused:
        decide_handoff(cmd, _opportunity(), _ctx())
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "exchange_rate"
