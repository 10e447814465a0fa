"""Live scoring and simulate are one function of (facts, model, now), and a band edge never
depends on the milliseconds between an event and its scoring.

The live door is what the consumer does with intake's events (``profile_from_captured``, the
capture's ``inquiry`` activity, each ``activity.recorded``); the simulate door is what
``POST /v1/scoring/simulate`` does with a sample lead written by a marketing-ops user from the
same facts. Both are pure; the built-in model is used as shipped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    Contact,
    LeadCaptured,
    QualificationAnswers,
)
from leadflow.scoring.builtin import default_model, default_model_data
from leadflow.scoring.domain import (
    next_reevaluation,
    parse_company_size,
    profile_from_captured,
)
from leadflow.scoring.facts import (
    SampleActivity,
    SampleLead,
    SampleProfile,
    inquiry_activity,
    live_score,
    recorded_activity,
    simulate_lead,
)

T0 = datetime(2026, 11, 30, 9, 15, 30, 123456, tzinfo=UTC)
MODEL = default_model()
SCORED_TYPES = sorted(
    {t for r in default_model_data()["engagement_rules"] for t in r["activity_types"]}
)


def sales_ready_capture(**contact: Any) -> LeadCaptured:
    """A VP at a target company with budget, authority, timeframe and a compelling event."""
    return LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="api",
        contact=Contact(
            email="dana.vp@acme-bank.com",
            title="VP Marketing",
            department="Marketing",
            company="Acme Bank",
            industry="Banking",
            country="US",
            **contact,
        ),
        answers=QualificationAnswers(
            budget="$80k approved",
            authority="Yes, I sign",
            timeframe="This quarter",
            compelling_event="Contract renewal in March",
            company_size="1000",
        ),
    )


def live(event: LeadCaptured, at: datetime, now: datetime, extra: list[Any] = ()) -> Any:  # type: ignore[assignment]
    profile = profile_from_captured(event)
    _key, inquiry = inquiry_activity(event.inquiry_id, at, event.capture_method, event.rating)
    acts = [inquiry, *extra]
    return live_score(profile, acts, MODEL, now, None)


def test_sales_ready_inquiry_scored_milliseconds_later_is_an_mql_as_simulate_says() -> None:
    event = sales_ready_capture()
    result = live(event, T0, T0 + timedelta(milliseconds=3))
    sample = SampleLead(
        profile=SampleProfile(
            title="VP Marketing", department="Marketing", company="Acme Bank",
            industry="Banking", country="US", company_size=1000, email_domain="acme-bank.com",
            answers={"budget": "$80k approved", "authority": "Yes, I sign",
                     "timeframe": "This quarter", "compelling_event": "Contract renewal"},
        ),
        activities=[SampleActivity(activity_type="inquiry")],
    )  # fmt: skip
    simulated = simulate_lead(sample, MODEL, T0 + timedelta(hours=5))
    assert result.engagement == simulated.engagement == 10.0
    assert result.engagement_level == simulated.engagement_level == 3
    assert result.matrix_cell == simulated.matrix_cell == "A3"
    assert result.mql_ready and simulated.mql_ready
    assert result.fit == simulated.fit


def test_an_inquiry_keeps_its_points_for_a_day_then_decays_in_whole_days() -> None:
    event = sales_ready_capture()
    just_before = live(event, T0, T0 + timedelta(days=1) - timedelta(microseconds=1))
    assert just_before.engagement == 10.0 and just_before.matrix_cell == "A3"
    a_day_later = live(event, T0, T0 + timedelta(days=1))
    assert a_day_later.engagement == round(10 * 0.5 ** (1 / 30), 2)
    assert a_day_later.matrix_cell == "A4" and not a_day_later.mql_ready
    # ...and the re-evaluation timer is set for exactly that moment, not a day later
    assert next_reevaluation(just_before, MODEL, T0 + timedelta(hours=3)) == T0 + timedelta(days=1)


# -- property: live == simulate ----------------------------------------------------------

titles = st.sampled_from(
    ["VP Sales", "Chief Marketing Officer", "Director of IT", "Marketing Manager",
     "Software Engineer", "Student", "Founder", None]
)  # fmt: skip
text = st.sampled_from([None, "yes", "This quarter", "$50k", "renewal", "no"])
offsets = st.floats(min_value=0, max_value=400, allow_nan=False)  # days before the capture
property_values = st.one_of(
    st.sampled_from(["hot", "cold", "/pricing"]),
    st.integers(min_value=0, max_value=7200),
    st.integers(min_value=0, max_value=7200).map(str),
    st.booleans(),
)
activity_facts = st.lists(
    st.tuples(
        st.sampled_from(SCORED_TYPES),
        offsets,
        st.sampled_from([None, "https://x.io/pricing", "https://x.io/blog"]),
        st.dictionaries(st.sampled_from(["seconds", "rating", "completed"]), property_values,
                        max_size=2),
    ),
    max_size=12,
)  # fmt: skip


@st.composite
def leads(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "title": draw(titles),
        "department": draw(st.sampled_from([None, "Sales", "Finance", "Legal"])),
        "industry": draw(st.sampled_from([None, "Software", "Retail", "Banking"])),
        "country": draw(st.sampled_from([None, "US", "DE", "IN"])),
        "company_size": draw(st.sampled_from([None, "20", "250", "5000"])),
        "answers": {n: draw(text) for n in ("budget", "authority", "timeframe",
                                             "compelling_event")},
        "rating": draw(st.sampled_from([None, "hot", "warm"])),
        "activities": draw(activity_facts),
    }  # fmt: skip


def _live_and_sample(lead: dict[str, Any], captured_at: datetime) -> tuple[Any, Any, SampleLead]:
    """The same facts through both doors: intake's events for live, a sample for simulate."""
    event = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="api",
        contact=Contact(email="p@example.org", title=lead["title"],
                        department=lead["department"], industry=lead["industry"],
                        country=lead["country"]),
        source=SourceInfo(channel="api"),
        answers=QualificationAnswers(company_size=lead["company_size"], **lead["answers"]),
        rating=lead["rating"],
    )  # fmt: skip
    profile = profile_from_captured(event)
    acts = [inquiry_activity(event.inquiry_id, captured_at, "api", lead["rating"])[1]]
    samples = [
        SampleActivity(
            activity_type="inquiry", occurred_at=captured_at,
            properties={"capture_method": "api"} | ({"rating": lead["rating"]}
                                                      if lead["rating"] else {}),
        )
    ]  # fmt: skip
    for n, (kind, days, url, props) in enumerate(lead["activities"]):
        at = captured_at - timedelta(days=days)
        payload = ActivityRecorded(activity_id=f"a{n}", activity_type=kind, url=url,
                                   properties=props)  # fmt: skip
        acts.append(recorded_activity(payload, at, uuid.uuid4())[1])
        samples.append(
            SampleActivity(activity_type=kind, occurred_at=at, url=url, properties=props)
        )
    sample = SampleLead(
        profile=SampleProfile(
            title=lead["title"], department=lead["department"], industry=lead["industry"],
            country=lead["country"], company_size=parse_company_size(lead["company_size"]),
            email_domain="example.org", channel="api", capture_method="api",
            rating=lead["rating"],
            answers={k: v for k, v in lead["answers"].items() if v is not None}
            | ({"company_size": lead["company_size"]} if lead["company_size"] else {}),
        ),
        activities=samples,
    )  # fmt: skip
    return profile, acts, sample


@settings(max_examples=200)
@given(leads(), st.floats(min_value=0, max_value=500, allow_nan=False))
def test_live_score_equals_simulate_for_the_same_facts_and_instant(
    lead: dict[str, Any], later_days: float
) -> None:
    profile, acts, sample = _live_and_sample(lead, T0)
    now = T0 + timedelta(days=later_days)
    live_result = live_score(profile, acts, MODEL, now, None)
    simulated = simulate_lead(sample, MODEL, now)
    assert live_result.model_dump() == simulated.model_dump()
    assert live_result.credited == simulated.credited


@settings(max_examples=200)
@given(
    leads(),
    st.integers(min_value=0, max_value=24 * 3600 * 1000 - 1),  # ms between event and scoring
    st.floats(min_value=0, max_value=600, allow_nan=False),
)
def test_band_edges_do_not_depend_on_the_delay_before_scoring(
    lead: dict[str, Any], delay_ms: int, later_days: float
) -> None:
    """A lead captured with its activities is scored some milliseconds (up to a day) later by
    the consumer; simulate scores the same facts at the moment they happened."""
    happened = T0 + timedelta(days=later_days)
    fresh = {**lead, "activities": [(k, 0.0, u, p) for k, _d, u, p in lead["activities"]]}
    profile, acts, sample = _live_and_sample(fresh, happened)
    live_result = live_score(profile, acts, MODEL, happened + timedelta(milliseconds=delay_ms),
                             None)  # fmt: skip
    # the sample's activities carry no time: they happened "now"
    sample = sample.model_copy(
        update={"activities": [a.model_copy(update={"occurred_at": None})
                               for a in sample.activities]}
    )  # fmt: skip
    simulated = simulate_lead(sample, MODEL, happened)
    for field in ("fit", "engagement", "grade", "engagement_level", "matrix_cell", "mql_ready"):
        assert getattr(live_result, field) == getattr(simulated, field), field


@settings(max_examples=200)
@given(leads(), st.floats(min_value=0, max_value=400, allow_nan=False))
def test_the_reevaluation_is_due_exactly_when_decay_changes_the_level_or_mql(
    lead: dict[str, Any], later_days: float
) -> None:
    profile, acts, _sample = _live_and_sample(lead, T0)
    now = T0 + timedelta(days=later_days)
    result = live_score(profile, acts, MODEL, now, None)
    due = next_reevaluation(result, MODEL, now)
    if due is None:
        assert not result.credited or result.disqualified_by is not None
        return
    periodic = now + timedelta(hours=MODEL.decay.reevaluate_hours)
    assert now < due <= periodic
    before = live_score(profile, acts, MODEL, due - timedelta(microseconds=1), None)
    assert (before.engagement_level, before.mql_ready) == (result.engagement_level,
                                                           result.mql_ready)  # fmt: skip
    if due < periodic:
        at = live_score(profile, acts, MODEL, due, None)
        assert (at.engagement_level, at.mql_ready) != (result.engagement_level, result.mql_ready)
