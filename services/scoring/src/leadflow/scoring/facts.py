"""The facts a score is a function of, and the two doors that build them.

A lead's score is ``domain.score(profile, activities, model, now, engagement_since=...)``:
nothing else goes in. Live scoring builds those facts from intake's events (a capture or a
repeat inquiry is an ``inquiry`` activity at the moment it happened, an
``activity.recorded`` is that activity at its ``occurred_at``); ``POST /v1/scoring/simulate``
builds them from a sample lead. Both doors are here, side by side, so that the same facts
scored at the same instant give the same result whichever door they came through (a
property test holds them to it).

What "now" is: the live score is taken at the scoring service's clock when it handles the
event, ``GET /v1/leads/{id}/score`` at the clock when asked, simulate at the request's
``now`` (default: the clock). That is safe because decay moves in whole days
(``domain.decay_factor``): the milliseconds between an event and its scoring never move a
lead across a band edge.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.scoring.domain import (
    Activity,
    LeadProfile,
    PropertyValue,
    ScoreResult,
    ScoringModel,
    normalise_activity_type,
    score,
)


def inquiry_activity(
    inquiry_id: uuid.UUID, occurred_at: datetime, capture_method: str, rating: str | None
) -> tuple[str, Activity]:
    """A capture or repeat inquiry raises a hand: an ``inquiry`` activity when it happened
    (the scan time for a badge scan), keyed by the inquiry so a replay adds it once."""
    properties: dict[str, PropertyValue] = {"capture_method": capture_method}
    if rating:
        properties["rating"] = rating
    key = f"inquiry:{inquiry_id}"
    return key, Activity("inquiry", occurred_at, properties=properties, activity_id=key)


def recorded_activity(
    payload: ActivityRecorded, occurred_at: datetime, event_id: uuid.UUID
) -> tuple[str, Activity]:
    """An ``activity.recorded`` event as the activity scoring counts, keyed by its id."""
    key = payload.activity_id or str(event_id)
    return key, Activity(
        activity_type=normalise_activity_type(payload.activity_type),
        occurred_at=occurred_at,
        url=payload.url,
        content_id=payload.content_id,
        campaign=payload.campaign,
        properties=dict(payload.properties),
        activity_id=key,
    )


# -- simulate's door ----------------------------------------------------------------------


class SampleActivity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_type: str
    occurred_at: datetime | None = None
    url: str | None = None
    content_id: str | None = None
    campaign: str | None = None
    properties: dict[str, PropertyValue] = {}


class SampleProfile(LeadProfile):
    model_config = ConfigDict(extra="forbid")


class SampleLead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    profile: SampleProfile = SampleProfile()
    activities: list[SampleActivity] = []
    engagement_since: datetime | None = None


class SampleInvalid(Exception):
    """A sample that cannot be scored; ``field`` is relative to the sample lead."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def sample_activities(sample: SampleLead, now: datetime) -> list[Activity]:
    """The sample's activities; one without ``occurred_at`` happened at ``now``."""
    acts = []
    for j, a in enumerate(sample.activities):
        when = a.occurred_at or now
        if when.tzinfo is None:
            raise SampleInvalid(f"activities[{j}].occurred_at", "needs a timezone")
        acts.append(
            Activity(
                normalise_activity_type(a.activity_type), when, url=a.url,
                content_id=a.content_id, campaign=a.campaign, properties=dict(a.properties),
            )
        )  # fmt: skip
    return acts


def simulate_lead(sample: SampleLead, model: ScoringModel, now: datetime) -> ScoreResult:
    """Score a sample exactly as live scoring scores the same facts at ``now``."""
    if sample.engagement_since is not None and sample.engagement_since.tzinfo is None:
        raise SampleInvalid("engagement_since", "needs a timezone")
    profile = LeadProfile.model_validate(sample.profile.model_dump())
    return score(
        profile,
        sample_activities(sample, now),
        model,
        now,
        engagement_since=sample.engagement_since,
    )


def live_score(
    profile: LeadProfile,
    activities: list[Activity],
    model: ScoringModel,
    now: datetime,
    engagement_since: datetime | None,
) -> ScoreResult:
    """The live door: a stored lead's facts at ``now`` (what the consumer, the timers and
    ``GET /v1/leads/{id}/score`` call)."""
    return score(profile, activities, model, now, engagement_since=engagement_since)
