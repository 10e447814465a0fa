"""Events produced by ``services/scoring`` on ``leadflow.scoring``: qualification and nurture."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.envelope import EventPayload


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Contribution(_Value):
    """One rule's share of a score: what marketing reads to explain it."""

    rule_id: str
    kind: Literal["fit", "engagement", "predictive"]
    points: float
    reason: str = ""


class FeatureWeight(_Value):
    feature: str
    weight: float


class LeadScored(EventPayload):
    event_type: ClassVar[str] = "lead.scored"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "The lead's fit and engagement were (re)scored."

    fit: float
    engagement: float
    grade: str  # A+ ... D-
    engagement_level: int  # 1 (hot) ... 4 (cold)
    matrix_cell: str  # e.g. "A1"
    model_version: int
    contributions: list[Contribution] = []
    mql_ready: bool = False
    predicted_conversion: float | None = None
    predictive_model_version: int | None = None
    top_features: list[FeatureWeight] = []


class LeadQualified(EventPayload):
    """The lead crossed the MQL bar: routing takes it from here."""

    event_type: ClassVar[str] = "lead.qualified"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "The lead became a marketing-qualified lead (MQL)."

    fit: float
    engagement: float
    grade: str
    matrix_cell: str
    model_version: int
    reasons: list[Contribution] = []
    lead: LeadSnapshot = LeadSnapshot()
    # The predictive model's view at qualification, when one is in service (routing may
    # prioritise on it).
    predicted_conversion: float | None = None
    predictive_model_version: int | None = None
    # The buying cycle this qualification belongs to: ``expansion`` after ``expansion.opened``
    # (a customer's new buying cycle, routed to the account owner), else ``new_business``.
    cycle: Literal["new_business", "expansion"] = "new_business"


class ExpansionOpened(EventPayload):
    """A customer's new buying cycle (cross-sell / upsell) began: the lifecycle moves the
    customer to ``inquiry`` with cycle ``expansion`` (issue 30), from where it is qualified,
    routed to the account owner and measured apart from new business. Recorded by scoring
    when a customer (``won``/``customer``), or a colleague at a customer account still at
    ``inquiry``, raises a hand again (``trigger`` ``hand_raise``: an inquiry or a hand-raise
    activity such as a demo request, contact-sales or a trial; a colleague's first
    hand-raise, with ``colleague``) or its engagement since the win makes it MQL-ready again
    under the model's own bar (``engagement``)."""

    event_type: ClassVar[str] = "expansion.opened"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "A customer's new buying cycle (expansion) opened."

    trigger: Literal["hand_raise", "engagement"]
    account_id: str | None = None
    account_domain: str | None = None
    # Which of the lead's expansion cycles this is (1 for the first).
    expansion_number: int = 1
    # True when the person is a colleague at a customer account, not a customer themself.
    colleague: bool = False
    engagement: float | None = None
    model_version: int | None = None


class LeadDisqualified(EventPayload):
    event_type: ClassVar[str] = "lead.disqualified"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "The lead was disqualified (competitor, student, do-not-contact...)."

    reason: str
    rule_id: str | None = None
    model_version: int | None = None


class LeadReinstated(EventPayload):
    """A disqualification no longer holds (a do-not-contact request was lifted): the lead is
    back at ``inquiry`` and qualifies, nurtures or waits like any other from here."""

    event_type: ClassVar[str] = "lead.reinstated"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "A disqualified lead was reinstated (its disqualification was lifted)."

    reason: str
    rule_id: str | None = None
    model_version: int | None = None


class AccountQualified(EventPayload):
    """An account became a marketing-qualified account (MQA, issue 30): its people's fit and
    engagement, rolled up with diminishing returns, pass the model's MQL bar with at least
    two engaged people. Emitted once per account, on the stream of the lead whose score
    tipped it (``lead_id``); routing sends the account to its owner."""

    event_type: ClassVar[str] = "account.qualified"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "An account became a marketing-qualified account (MQA)."

    account_id: str
    account_domain: str | None = None
    registered: bool = False
    fit: float
    engagement: float
    grade: str
    matrix_cell: str
    engaged_people: int
    people: list[uuid.UUID] = []
    model_version: int


class NurtureEnrolled(EventPayload):
    event_type: ClassVar[str] = "nurture.enrolled"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "The lead was enrolled in a nurture track."

    track_id: str
    track_version: int = 1
    reason: Literal["not_sales_ready", "recycled", "rejected", "resumed"] = "not_sales_ready"
    next_touch_due_at: datetime | None = None


class NurtureTouchDue(EventPayload):
    """A nurture touch is due: the email/ads system acts on it."""

    event_type: ClassVar[str] = "nurture.touch_due"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "A nurture touch is due for the email/ads system to send."

    track_id: str
    step: int
    content_id: str
    channel: str
    due_at: datetime
    # The track step's template (``{first_name}``-style placeholders filled by notify).
    subject: str | None = None
    body: str | None = None


class NurtureExited(EventPayload):
    event_type: ClassVar[str] = "nurture.exited"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "The lead left its nurture track (qualified, completed, paused...)."

    track_id: str
    reason: Literal[
        "qualified", "completed", "disqualified", "handed_to_sales", "erased", "opted_out"
    ]


class ScoringModelPublished(EventPayload):
    """A scoring model version was published (stream: ``stream_id("scoring-model")``)."""

    event_type: ClassVar[str] = "scoring.model_published"
    producer: ClassVar[str] = "scoring"
    summary: ClassVar[str] = "Marketing ops published a new scoring model version."

    model_version: int
    model: dict[str, Any]
    published_by: str | None = None
    model_id: uuid.UUID | None = None
