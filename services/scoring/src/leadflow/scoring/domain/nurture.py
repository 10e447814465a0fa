"""Nurture tracks: a cadence of touches, who a track is for, when its next touch is due."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, ValidationError

from leadflow.scoring.domain.model import (
    RULE_ID_RE,
    Condition,
    ModelInvalid,
    ScoringModel,
    _check_condition,
    _err,
    _pydantic_errors,
    _Strict,
    condition_holds,
)
from leadflow.scoring.domain.profile import TRACK_ATTRIBUTES, LeadProfile, profile_attributes


class TouchStep(_Strict):
    content_id: str
    channel: str = "email"
    wait_hours: float = Field(ge=0)
    # The e-mail notify sends for an email step: ``{first_name}``, ``{company}``... are
    # filled from the lead's fields; a step without them is withheld as ``no_template``.
    subject: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=20_000)


class NurtureTrack(_Strict):
    """A cadence of touches; ``when`` conditions (all must hold) decide who it is for.
    Tracks are tried in ``priority`` order (lowest first)."""

    id: str
    name: str = ""
    priority: int = 100
    when: list[Condition] = []
    steps: list[TouchStep] = Field(min_length=1)
    active: bool = True
    version: int = 1


def validate_track(data: Mapping[str, Any]) -> NurtureTrack:
    try:
        track = NurtureTrack.model_validate(data)
    except ValidationError as exc:
        raise ModelInvalid(_pydantic_errors(exc, "track")) from exc
    errors: list[dict[str, str]] = []
    if not RULE_ID_RE.match(track.id):
        _err(errors, "id", "ids are 1-64 of A-Z a-z 0-9 _ . : -")
    for i, cond in enumerate(track.when):
        _check_condition(cond, f"when[{i}]", TRACK_ATTRIBUTES, errors)
    if errors:
        raise ModelInvalid(errors)
    return track


EnrolmentReason = Literal["not_sales_ready", "recycled", "rejected", "resumed"]


def choose_track(
    profile: LeadProfile,
    tracks: Iterable[NurtureTrack],
    reason: EnrolmentReason = "not_sales_ready",
    model: ScoringModel | None = None,
) -> NurtureTrack | None:
    attrs = profile_attributes(profile, model)
    attrs["enrolment_reason"] = reason
    for track in sorted((t for t in tracks if t.active), key=lambda t: (t.priority, t.id)):
        if all(condition_holds(c, attrs) for c in track.when):
            return track
    return None


def touch_due_at(track: NurtureTrack, step: int, since: datetime) -> datetime | None:
    """When touch ``step`` is due, counting its wait from ``since`` (enrolment or the previous
    touch); None once the track is complete."""
    if step >= len(track.steps):
        return None
    return since + timedelta(hours=track.steps[step].wait_hours)


def may_enrol(*, mql_ready: bool, qualified: bool, with_sales: bool, disqualified: bool,
              opted_out: bool, enrolled: bool) -> bool:  # fmt: skip
    """Not-sales-ready leads that nobody else is working on, and that may be marketed to."""
    return not (mql_ready or qualified or with_sales or disqualified or opted_out or enrolled)
