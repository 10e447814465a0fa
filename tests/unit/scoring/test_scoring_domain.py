"""The scoring rules without I/O: validation, fit, engagement with caps and decay, grades,
MQL decision, disqualification, profile folding and nurture track choice."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.events.catalogue.activities import CATALOGUE
from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    AccountMatch,
    ConsentRecord,
    Contact,
    HygieneFlags,
    LeadCaptured,
    LeadProfileUpdated,
    QualificationAnswers,
)
from leadflow.scoring.builtin import (
    check_builtin,
    default_model,
    default_model_data,
    default_tracks,
    load_model,
)
from leadflow.scoring.domain import (
    Activity,
    LeadProfile,
    ModelInvalid,
    choose_track,
    decay_factor,
    grade_of,
    level_of,
    materially_changed,
    normalise_activity_type,
    parse_company_size,
    profile_attributes,
    profile_from_captured,
    profile_updated,
    region_of,
    score,
    seniority_of,
    snapshot,
    touch_due_at,
    validate_model,
    validate_track,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def model_with(**changes: Any) -> dict[str, Any]:
    data = default_model_data()
    data.update(changes)
    return data


def fields_of(exc: ModelInvalid) -> list[str]:
    return [e["field"] for e in exc.errors]


VP = LeadProfile(
    title="VP Marketing",
    department="Marketing",
    company="Acme",
    company_size=800,
    industry="Software",
    country="DE",
    email_domain="acme.com",
    answers={"compelling_event": "renewal in May", "authority": "yes", "budget": "50k"},
)


# -- validation ----------------------------------------------------------------------------


def test_default_model_is_valid() -> None:
    model = default_model()
    assert model.fit_rules and model.engagement_rules and model.disqualify_rules


def test_unknown_attribute_is_refused_naming_the_rule() -> None:
    data = model_with()
    data["fit_rules"][3] = {**data["fit_rules"][3], "attribute": "shoe_size"}
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert fields_of(err.value) == ["fit_rules[3].attribute"]
    assert "shoe_size" in err.value.errors[0]["message"]


def test_unknown_attribute_in_disqualify_rule_is_refused() -> None:
    data = model_with()
    data["disqualify_rules"].append({"id": "x", "attribute": "nope", "reason": "r"})
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    last = len(data["disqualify_rules"]) - 1
    assert fields_of(err.value) == [f"disqualify_rules[{last}].attribute"]


def test_unknown_key_is_refused_with_its_path() -> None:
    data = model_with()
    data["engagement_rules"][1] = {**data["engagement_rules"][1], "pointz": 3}
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert "engagement_rules[1].pointz" in fields_of(err.value)


def test_overlapping_grade_bands_are_refused() -> None:
    data = model_with()
    data["fit_grades"][2] = {"grade": "A-", "min": 70, "max": 85}  # A is [80, 90)
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert any(f.startswith("fit_grades[1]") for f in fields_of(err.value))
    assert "overlaps" in err.value.errors[0]["message"]


def test_gap_between_levels_is_refused() -> None:
    data = model_with()
    data["engagement_levels"][1] = {"level": 2, "min": 35, "max": 60}
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert fields_of(err.value) == ["engagement_levels[1].min"]


@pytest.mark.parametrize("half_life", [0, -3])
def test_non_positive_half_life_is_refused(half_life: float) -> None:
    with pytest.raises(ModelInvalid) as err:
        validate_model(model_with(decay={"half_life_days": half_life}))
    assert fields_of(err.value) == ["decay.half_life_days"]


def test_operator_value_shapes_are_checked() -> None:
    data = model_with(
        fit_rules=[
            {"id": "a", "attribute": "title", "op": "gte", "value": 3, "points": 1},
            {"id": "b", "attribute": "company_size", "op": "between", "value": [9, 1], "points": 1},
            {"id": "c", "attribute": "industry", "op": "in", "value": "software", "points": 1},
            {"id": "a", "attribute": "title", "op": "present", "points": 1},
        ]
    )
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert set(fields_of(err.value)) == {
        "fit_rules[0].op",
        "fit_rules[1].value",
        "fit_rules[2].value",
        "fit_rules[3].id",
    }


def test_bad_mql_cell_and_empty_mql_rule_are_refused() -> None:
    with pytest.raises(ModelInvalid) as err:
        validate_model(model_with(mql={"cells": ["A1", "E9"]}))
    assert fields_of(err.value) == ["mql.cells[1]"]
    with pytest.raises(ModelInvalid) as err:
        validate_model(model_with(mql={}))
    assert fields_of(err.value) == ["mql"]


# -- profile -------------------------------------------------------------------------------


def captured(**overrides: Any) -> LeadCaptured:
    fields: dict[str, Any] = {
        "inquiry_id": uuid.uuid4(),
        "capture_method": "web_form",
        "contact": Contact(
            email="ann@acme.com",
            first_name="Ann",
            title="Director of IT",
            department="IT",
            company="Acme",
            country="GB",
        ),
        "source": SourceInfo(channel="web_form", campaign="spring", utm_source="google"),
        "answers": QualificationAnswers(company_size="1000+", timeframe="this quarter"),
        "account": AccountMatch(account_id="acc-1", domain="acme.com", name="Acme Ltd"),
        "flags": HygieneFlags(free_mail=False),
        "consent": ConsentRecord(marketing_opt_in=True),
        "email_domain": "acme.com",
    }
    fields.update(overrides)
    return LeadCaptured(**fields)


def test_profile_from_captured_keeps_non_personal_fields_only() -> None:
    profile = profile_from_captured(captured())
    dumped = profile.model_dump()
    assert "email" not in dumped and "first_name" not in dumped
    assert profile.company_size == 1000
    assert profile.account_id == "acc-1"
    assert profile.answers["timeframe"] == "this quarter"
    attrs = profile_attributes(profile)
    assert attrs["seniority"] == "director"
    assert attrs["region"] == "EMEA"


def test_profile_update_overrides_only_given_fields() -> None:
    profile = profile_from_captured(captured())
    update = LeadProfileUpdated(
        changed_fields=["title"],
        contact=Contact(title="Chief Marketing Officer"),
        answers=QualificationAnswers(budget="100k"),
    )
    after = profile_updated(profile, update)
    assert after.title == "Chief Marketing Officer"
    assert after.department == "IT"
    assert after.answers == {**profile.answers, "budget": "100k"}
    assert profile_attributes(after)["seniority"] == "c_level"


def test_placeholder_answers_count_as_absent() -> None:
    profile = profile_from_captured(
        captured(contact=Contact(title="Select", department=" "), answers=QualificationAnswers())
    )
    assert profile.title is None and profile.department is None


@pytest.mark.parametrize(
    ("title", "level"),
    [
        ("CEO", "c_level"),
        ("Vice President Sales", "vp"),
        ("Head of Growth", "director"),
        ("Marketing Manager", "manager"),
        ("Student", "student"),
        ("Working Professional", "professional"),
        ("Unemployed", "individual"),
        (None, None),
    ],
)
def test_seniority_from_title(title: str | None, level: str | None) -> None:
    assert seniority_of(title) == level


def test_company_size_and_region_parsing() -> None:
    assert parse_company_size("51-200") == 51
    assert parse_company_size("10k") == 10_000
    assert parse_company_size("unknown") is None
    assert region_of("India") == "APAC"
    assert region_of("US") == "AMER"
    assert region_of("Atlantis") is None


def test_snapshot_carries_routing_profile_and_grade() -> None:
    snap = snapshot(profile_from_captured(captured()), grade="A-", matrix_cell="A2")
    assert snap.company == "Acme" and snap.seniority == "director" and snap.country == "GB"
    assert snap.account_id == "acc-1" and snap.email_domain == "acme.com"
    assert snap.grade == "A-" and snap.matrix_cell == "A2" and snap.channel == "web_form"


# -- scoring -------------------------------------------------------------------------------


def test_fit_adds_rule_points_with_reasons() -> None:
    result = score(VP, [], default_model(), NOW)
    ids = {c.rule_id for c in result.contributions if c.kind == "fit"}
    assert {"seniority_vp", "company_size_large", "compelling_event", "decision_authority"} <= ids
    assert result.fit == min(100.0, sum(c.points for c in result.contributions))
    assert result.grade.startswith("A")


def test_free_mail_by_domain_list_is_a_negative() -> None:
    model = default_model()
    free = VP.model_copy(update={"email_domain": "gmail.com"})
    assert score(free, [], model, NOW).fit == score(VP, [], model, NOW).fit - 10


def test_competitor_domain_disqualifies_and_is_negative() -> None:
    model = validate_model(model_with(competitor_domains=["rival.io"]))
    rival = VP.model_copy(update={"email_domain": "eu.rival.io"})
    result = score(rival, [Activity("demo_request", NOW)] * 3, model, NOW)
    assert result.disqualified_by == "competitor"
    assert not result.mql_ready
    assert any(c.rule_id == "competitor_domain" and c.points == -50 for c in result.contributions)


def test_student_and_do_not_contact_are_disqualified_but_an_email_opt_out_is_not() -> None:
    model = default_model()
    assert score(LeadProfile(title="Student"), [], model, NOW).disqualified_by == "student"
    no_contact = VP.model_copy(update={"do_not_contact": True})
    assert score(no_contact, [], model, NOW).disqualified_by == "do_not_contact"
    # Marketing e-mail consent governs nurture e-mail, not sales eligibility.
    opted_out = VP.model_copy(update={"marketing_opt_in": False})
    assert score(opted_out, [], model, NOW).disqualified_by is None
    assert score(opted_out, [], model, NOW).fit == score(VP, [], model, NOW).fit


def test_engagement_rules_match_type_url_and_properties() -> None:
    model = default_model()
    acts = [
        Activity("page_view", NOW, url="https://x.io/pricing"),
        Activity("inquiry", NOW, properties={"rating": "hot"}),
    ]
    result = score(LeadProfile(), acts, model, NOW)
    credits = {c.rule_id: c.capped for c in result.engagement_rules}
    assert credits == {"pricing_page": 10, "page_view": 1, "inquiry": 10, "hot_rating": 20}
    assert result.engagement == 41


def test_time_on_site_scales_by_seconds() -> None:
    result = score(
        LeadProfile(), [Activity("site_visit", NOW, properties={"seconds": "600"})],
        default_model(), NOW,
    )  # fmt: skip
    assert result.engagement == 10  # 1 point a minute, daily cap 15


def test_daily_cap_and_rule_cap_hold() -> None:
    model = default_model()  # demo_request: 30 points, daily cap 30, max 60
    same_day = [Activity("demo_request", NOW - timedelta(minutes=i)) for i in range(5)]
    assert score(LeadProfile(), same_day, model, NOW).engagement == 30
    days = [Activity("demo_request", NOW - timedelta(days=i, minutes=1)) for i in range(5)]
    credit = score(LeadProfile(), days, model, NOW).engagement_rules[0]
    assert credit.capped == 60 and credit.raw == 150


def test_caps_credit_the_freshest_activity() -> None:
    model = default_model()
    old = Activity("demo_request", NOW - timedelta(days=60))
    fresh = [Activity("demo_request", NOW - timedelta(days=d)) for d in (0, 1)]
    with_old = score(LeadProfile(), [old, *fresh], model, NOW).engagement
    assert with_old == score(LeadProfile(), fresh, model, NOW).engagement > 59


def test_decay_halves_engagement_per_half_life() -> None:
    model = default_model()  # half-life 30 days
    act = [Activity("demo_request", NOW)]
    assert score(LeadProfile(), act, model, NOW).engagement == 30
    assert score(LeadProfile(), act, model, NOW + timedelta(days=30)).engagement == 15
    assert score(LeadProfile(), act, model, NOW + timedelta(days=60)).engagement == 7.5


def test_engagement_since_ignores_activity_before_recycle() -> None:
    act = [Activity("demo_request", NOW - timedelta(days=1))]
    assert score(LeadProfile(), act, default_model(), NOW, engagement_since=NOW).engagement == 0


def test_negative_activity_never_makes_engagement_negative() -> None:
    acts = [Activity("unsubscribed", NOW), Activity("email_open", NOW)]
    assert score(LeadProfile(), acts, default_model(), NOW).engagement == 0


def test_grades_levels_and_matrix_cell() -> None:
    model = default_model()
    assert [grade_of(v, model) for v in (100, 90, 89.9, 50, 4.9, 0)] == [
        "A+", "A+", "A", "B-", "D-", "D-",
    ]  # fmt: skip
    assert [level_of(v, model) for v in (80, 60, 59, 30, 10, 0)] == [1, 1, 2, 2, 3, 4]
    acts = [Activity("demo_request", NOW), Activity("webinar_attended", NOW)]
    result = score(VP, acts, model, NOW)
    assert result.matrix_cell == f"{result.grade[0]}{result.engagement_level}" == "A2"
    assert result.mql_ready and "A2" in result.mql_reason


def test_mql_by_thresholds() -> None:
    model = validate_model(model_with(mql={"min_fit": 30, "min_engagement": 20}))
    low = LeadProfile(title="Manager", department="Sales", company_size=100)
    assert not score(low, [], model, NOW).mql_ready
    assert score(low, [Activity("demo_request", NOW)], model, NOW).mql_ready


def test_materially_changed_ignores_small_decay_drift() -> None:
    model = default_model()
    acts = [Activity("demo_request", NOW), Activity("webinar_attended", NOW)]
    first = score(VP, acts, model, NOW)
    stored = first.model_dump()
    assert not materially_changed(stored, score(VP, acts, model, NOW + timedelta(minutes=30)))
    assert materially_changed(stored, score(VP, acts, model, NOW + timedelta(days=3)))
    assert materially_changed(None, first)


# -- property tests ------------------------------------------------------------------------

activity_types = st.sampled_from(
    ["demo_request", "page_view", "webinar_attended", "content_download", "email_open",
     "email_click", "inquiry", "site_visit", "unsubscribed", "email_bounced"]
)  # fmt: skip
ages = st.floats(min_value=0, max_value=400, allow_nan=False)
activities = st.lists(
    st.builds(
        lambda t, age, secs: Activity(
            t, NOW - timedelta(days=age), url="/pricing" if age < 5 else None,
            properties={"seconds": str(secs)},
        ),
        activity_types, ages, st.integers(min_value=0, max_value=5000),
    ),
    max_size=40,
)  # fmt: skip
positive_types = st.sampled_from(
    ["demo_request", "page_view", "webinar_attended", "content_download", "email_click"]
)


@settings(max_examples=150)
@given(activities, positive_types, ages)
def test_score_is_monotone_in_added_positive_activity(
    acts: list[Activity], extra_type: str, extra_age: float
) -> None:
    model = default_model()
    before = score(VP, acts, model, NOW)
    extra = Activity(extra_type, NOW - timedelta(days=extra_age))
    after = score(VP, [*acts, extra], model, NOW)
    assert after.engagement >= before.engagement - 0.011  # rounding to cents
    assert after.fit == before.fit


@settings(max_examples=150)
@given(activities, st.floats(min_value=0, max_value=3650, allow_nan=False))
def test_decay_never_makes_a_score_negative_and_only_lowers_it(
    acts: list[Activity], later_days: float
) -> None:
    model = default_model()
    now_result = score(VP, acts, model, NOW)
    later = score(VP, acts, model, NOW + timedelta(days=later_days))
    assert later.engagement >= 0
    assert 0 < decay_factor(timedelta(days=later_days), 30) <= 1
    # positive-only rules: later never exceeds now per rule (a rule whose activities are
    # all forgotten credits nothing later)
    later_rules = {r.rule_id: r.decayed for r in later.engagement_rules}
    for rule_now in now_result.engagement_rules:
        if rule_now.capped >= 0:
            assert later_rules.get(rule_now.rule_id, 0.0) <= rule_now.decayed + 1e-9


@settings(max_examples=150)
@given(activities)
def test_caps_hold_per_rule_and_per_day(acts: list[Activity]) -> None:
    model = default_model()
    result = score(LeadProfile(), acts, model, NOW)
    rules = {r.id: r for r in model.engagement_rules}
    for credit in result.engagement_rules:
        rule = rules[credit.rule_id]
        if rule.max_points is not None:
            assert credit.capped <= rule.max_points + 1e-9
            assert credit.decayed <= rule.max_points + 1e-9
        if rule.daily_cap is not None:
            by_day: dict[Any, list[Activity]] = {}
            for a in acts:
                if a.activity_type in rule.activity_types:
                    by_day.setdefault(a.occurred_at.date(), []).append(a)
            one_day = score(
                LeadProfile(), max(by_day.values(), key=len, default=[]), model, NOW
            ).engagement_rules
            for c in one_day:
                if c.rule_id == rule.id:
                    assert c.capped <= rule.daily_cap + 1e-9


# -- nurture -------------------------------------------------------------------------------


def test_track_choice_by_reason_and_segment() -> None:
    tracks = default_tracks()
    assert choose_track(VP, tracks, "recycled").id == "recycled"  # type: ignore[union-attr]
    assert choose_track(VP, tracks).id == "enterprise"  # type: ignore[union-attr]
    assert choose_track(LeadProfile(), tracks).id == "general"  # type: ignore[union-attr]
    inactive = [t.model_copy(update={"active": False}) for t in tracks]
    assert choose_track(LeadProfile(), inactive) is None


def test_track_cadence() -> None:
    track = default_tracks()[2]
    assert touch_due_at(track, 0, NOW) == NOW + timedelta(hours=24)
    assert touch_due_at(track, 1, NOW) == NOW + timedelta(hours=96)
    assert touch_due_at(track, len(track.steps), NOW) is None


def test_track_validation_names_the_field() -> None:
    with pytest.raises(ModelInvalid) as err:
        validate_track({"id": "t", "when": [{"attribute": "mood", "op": "present"}],
                        "steps": [{"content_id": "c", "wait_hours": 1}]})  # fmt: skip
    assert fields_of(err.value) == ["when[0].attribute"]
    with pytest.raises(ModelInvalid) as err:
        validate_track({"id": "t", "steps": []})
    assert fields_of(err.value) == ["steps"]


def test_activity_types_are_normalised_to_the_catalogue_name() -> None:
    assert normalise_activity_type("Email Opened") == "email_open"  # an alias
    assert normalise_activity_type(" page-view ") == "page_view"
    assert normalise_activity_type("Webinar Attendance") == "webinar_attended"
    assert normalise_activity_type("Something New") == "something_new"  # unknown: kept


def test_a_rule_on_a_type_nobody_can_send_is_refused_naming_it() -> None:
    data = default_model_data()
    data["engagement_rules"][1]["activity_types"] = ["page_view", "teleport"]
    with pytest.raises(ModelInvalid) as err:
        validate_model(data)
    assert fields_of(err.value) == ["engagement_rules[1].activity_types[1]"]
    assert "teleport" in str(err.value) and "demo_request" in str(err.value)
    # a stored model is read back even if a type it names was since retired
    assert validate_model(data, check_activity_types=False).engagement_rules[1].id


def test_every_type_the_builtin_model_scores_is_in_the_catalogue() -> None:
    for rule in default_model().engagement_rules:
        for kind in rule.activity_types:
            assert CATALOGUE.get(kind) is not None, (rule.id, kind)


def test_rule_properties_match_numbers_and_flags_by_value() -> None:
    model = validate_model(
        model_with(
            engagement_rules=[
                {"id": "long_video", "activity_types": ["video_view"],
                 "properties": {"completed": True, "percent": 100}, "points": 7},
                {"id": "session", "activity_types": ["time_on_site"], "scale_by": "seconds",
                 "scale_unit": 60, "points": 1},
            ]
        )
    )  # fmt: skip
    watched = Activity("video_view", NOW, properties={"completed": True, "percent": 100.0})
    text = Activity("video_view", NOW, properties={"completed": "TRUE", "percent": "100"})
    half = Activity("video_view", NOW, properties={"completed": False, "percent": 100})
    session = Activity("time_on_site", NOW, properties={"seconds": 300})
    assert score(LeadProfile(), [watched], model, NOW).engagement == 7
    assert score(LeadProfile(), [text], model, NOW).engagement == 7
    assert score(LeadProfile(), [half], model, NOW).engagement == 0
    assert score(LeadProfile(), [session], model, NOW).engagement == 5


def test_known_account_fit_needs_a_registered_account_not_a_domain_match() -> None:
    model = default_model()
    implicit = AccountMatch(account_id="a", domain="acme.com", registered=False)
    registered = AccountMatch(account_id="acc-1", domain="acme.com", registered=True)
    grouped = profile_from_captured(captured(account=implicit))
    known = profile_from_captured(captured(account=registered))
    assert profile_attributes(grouped)["has_account"] is False
    assert profile_attributes(grouped)["account_matched"] is True
    assert profile_attributes(known)["has_account"] is True
    fit_rules = lambda p: {c.rule_id for c in score(p, [], model, NOW).contributions}  # noqa: E731
    assert "known_account" not in fit_rules(grouped)
    assert "known_account" in fit_rules(known)
    assert score(known, [], model, NOW).fit == score(grouped, [], model, NOW).fit + 10
    # A later profile update that only groups the lead by domain takes the points away.
    update = LeadProfileUpdated(changed_fields=["account"], contact=Contact(), account=implicit)
    assert profile_attributes(profile_updated(known, update))["has_account"] is False


def test_builtin_files_ship_in_the_package_and_validate() -> None:
    check_builtin()
    assert default_model().version == 0
    assert [t.id for t in default_tracks()] == ["recycled", "enterprise", "general"]


def test_broken_model_file_fails_loudly_naming_the_field(tmp_path: Path) -> None:
    data = default_model_data()
    data["fit_rules"][0]["attribute"] = "shoe_size"
    del data["mql"]
    broken = tmp_path / "model.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(ModelInvalid) as err:
        load_model(broken)
    assert "mql" in fields_of(err.value)
