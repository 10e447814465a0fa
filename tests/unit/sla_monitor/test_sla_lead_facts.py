"""What events teach about a lead, cross-topic ordering, calendar choice, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAccepted, LeadAssigned, LeadContacted
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.sla_monitor.domain import (
    LeadFacts,
    already_ended,
    choose_calendar,
    default_calendar,
    default_policies,
    facts_after,
)
from leadflow.sla_monitor.settings import SlaSettings

T0 = datetime(2026, 3, 9, 10, tzinfo=UTC)


def test_assignment_sets_owner_and_segment_from_the_snapshot() -> None:
    facts = facts_after(
        LeadFacts(grade="B", channel="import"),
        LeadAssigned(
            assignee_kind="rep",
            rep_id="r1",
            team_id="t1",
            lead=LeadSnapshot(grade="A", region="EMEA", country="DE"),
        ),
    )
    assert facts == LeadFacts(
        grade="A", region="EMEA", country="DE", channel="import", rep_id="r1", team_id="t1"
    )


def test_qualification_sets_grade_and_acceptance_sets_rep() -> None:
    facts = facts_after(
        LeadFacts(),
        LeadQualified(fit=1, engagement=1, grade="C", matrix_cell="C3", model_version=1),
    )
    assert facts.grade == "C"
    assert facts_after(facts, LeadAccepted(rep_id="r9")).rep_id == "r9"


def test_events_without_facts_leave_them_alone() -> None:
    facts = LeadFacts(grade="A", rep_id="r1")
    assert facts_after(facts, LeadContacted(rep_id="r2")) is facts


def test_an_ending_seen_after_the_start_closes_the_new_clock() -> None:
    mql = next(p for p in default_policies() if p.measures == "mql_assignment")
    seen = {"lead.assigned": T0 + timedelta(minutes=3)}
    assert already_ended(mql, T0, seen) == ("met", "lead.assigned", T0 + timedelta(minutes=3))


def test_an_ending_seen_before_the_start_belongs_to_an_earlier_cycle() -> None:
    mql = next(p for p in default_policies() if p.measures == "mql_assignment")
    assert already_ended(mql, T0, {"lead.assigned": T0 - timedelta(days=3)}) is None


def test_the_earliest_ending_wins() -> None:
    mql = next(p for p in default_policies() if p.measures == "mql_assignment")
    seen = {"lead.assigned": T0 + timedelta(hours=2), "lead.disqualified": T0 + timedelta(hours=1)}
    assert already_ended(mql, T0, seen) == ("stopped", "lead.disqualified", T0 + timedelta(hours=1))


def test_calendar_choice_policy_then_rep_then_team_then_default() -> None:
    cals = {
        "default": default_calendar(),
        "marketing": BusinessCalendar(calendar_id="marketing"),
        "ny": BusinessCalendar(calendar_id="ny", timezone="America/New_York", rep_ids=["r-ny"]),
        "apac": BusinessCalendar(calendar_id="apac", timezone="Asia/Tokyo", team_ids=["apac"]),
    }
    assert choose_calendar(cals, "marketing", "r-ny", "apac").calendar_id == "marketing"
    assert choose_calendar(cals, None, "r-ny", "apac").calendar_id == "ny"
    assert choose_calendar(cals, None, "r-1", "apac").calendar_id == "apac"
    assert choose_calendar(cals, None, "r-1", "emea").calendar_id == "default"
    assert choose_calendar(cals, "gone", None, None).calendar_id == "default"
    assert choose_calendar({}, None, None, None) == default_calendar()


def test_settings_build_the_default_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SLA_DEFAULT_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LEADFLOW_SLA_WORKDAY_START", "08:30")
    monkeypatch.setenv("LEADFLOW_SLA_WORKDAYS", "mon,tue,wed,thu")
    settings = SlaSettings()
    assert (settings.port, settings.schema_name, settings.producer) == (8004, "sla", "sla")
    cal = settings.default_calendar()
    assert cal.timezone == "Europe/Berlin"
    assert set(cal.hours) == {"mon", "tue", "wed", "thu"}
    assert cal.hours["mon"][0].start == "08:30"


def test_settings_refuse_a_bad_default_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SLA_DEFAULT_TIMEZONE", "Nowhere/Land")
    with pytest.raises(ValidationError):
        SlaSettings().default_calendar()
