"""What notify learns of a lead from captures, profile updates and scores, decided without a
database: ``domain.learn`` and a consumer batch folded by the kernel (``decide_each``) with
notify's ``LeadNewsHandler``, exactly as the events one at a time."""

from __future__ import annotations

import uuid

from leadflow.events.batch import decide_each
from leadflow.events.catalogue.intake import (
    ConsentRecord,
    Contact,
    LeadCaptured,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.routing import LeadAccepted
from leadflow.events.catalogue.scoring import Contribution, LeadQualified, LeadScored
from leadflow.events.envelope import Envelope, EventPayload, new_id
from leadflow.notify.domain import LeadNews, learn, score_summary
from leadflow.notify.handlers import LeadNewsHandler


def captured(consent: bool | None, **contact: str) -> LeadCaptured:
    return LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(**contact),
        consent=ConsentRecord(marketing_opt_in=consent) if consent is not None else None,
    )


def updated(**contact: str) -> LeadProfileUpdated:
    return LeadProfileUpdated(changed_fields=list(contact), contact=Contact(**contact))


def scored(grade: str, *points: float) -> LeadScored:
    return LeadScored(
        fit=70,
        engagement=40,
        grade=grade,
        engagement_level=2,
        matrix_cell=f"{grade}2",
        model_version=1,
        contributions=[
            Contribution(rule_id=f"r{i}", kind="fit", points=p, reason=f"rule {i}")
            for i, p in enumerate(points)
        ],
    )


def test_contact_fields_merge_in_event_order_and_the_last_stated_consent_holds() -> None:
    news = learn(None, captured(True, email="ada@example.com", title="CTO"))
    news = learn(news, updated(title="CEO", phone="+44 20 7946 0999"))
    news = learn(news, captured(None, company="Engines"))  # says nothing of consent
    assert news.contact == {
        "email": "ada@example.com",
        "title": "CEO",
        "phone": "+44 20 7946 0999",
        "company": "Engines",
        "secondary_emails": [],
    }
    assert news.consent is True
    assert learn(news, captured(False)).consent is False
    assert news.scoring is None


def test_a_profile_update_alone_states_no_consent() -> None:
    news = learn(None, updated(title="CEO"))
    assert (news.contact, news.consent) == ({"title": "CEO", "secondary_emails": []}, None)


def test_the_latest_score_wins_with_its_five_strongest_reasons() -> None:
    news = learn(LeadNews(contact={"email": "a@b.co"}), scored("B", 1))
    news = learn(news, scored("A", 5, -30, 2, 12, -1, 8, 3))
    assert news.contact == {"email": "a@b.co"}
    assert news.scoring == {
        "grade": "A",
        "fit": 70,
        "engagement": 40,
        "reasons": ["rule 1 (-30)", "rule 3 (+12)", "rule 5 (+8)", "rule 0 (+5)", "rule 6 (+3)"],
    }
    qualified = LeadQualified(fit=82, engagement=61, grade="A", matrix_cell="A1", model_version=1)
    assert score_summary(qualified)["reasons"] == []


def test_an_event_that_teaches_nothing_leaves_the_news_alone() -> None:
    news = LeadNews(contact={"email": "a@b.co"}, consent=True)
    assert learn(news, LeadAccepted(rep_id="r1")) is news


def envelope(payload: EventPayload, lead: uuid.UUID) -> Envelope:
    return Envelope.new(payload, lead_id=lead)


def test_a_batch_learns_each_lead_as_its_events_one_at_a_time() -> None:
    a, b = new_id(), new_id()
    events = [
        envelope(captured(True, email="a@x.co", title="CTO"), a),
        envelope(captured(False, email="b@x.co"), b),
        envelope(scored("B", 3), a),
        envelope(updated(title="CEO"), a),
        envelope(scored("A", 9), a),
        envelope(captured(True), b),
    ]
    handler = LeadNewsHandler()
    batch = decide_each(handler, {}, events, None)
    for lead in (a, b):
        alone = decide_each(handler, {}, [e for e in events if e.lead_id == lead], None)
        assert batch.states[lead] == alone.states[lead]
    assert batch.states[a].contact == {"email": "a@x.co", "title": "CEO", "secondary_emails": []}
    assert batch.states[a].scoring is not None and batch.states[a].scoring["grade"] == "A"
    assert (batch.states[b].consent, batch.states[b].scoring) == (True, None)
    # Learning appends nothing and schedules nothing: save writes the two tables.
    assert (batch.appends, batch.schedule, batch.cancel) == ([], {}, {})
    assert list(batch.changed) == [a, b]
