"""Scoring rules as data, and the pure functions that apply them (no I/O).

Marketing ops own the scoring model: fit rules on profile attributes, engagement rules on
activities (with per-rule and per-day caps and a decay half-life), grade bands, the MQL rule
and the disqualify rules. This module validates a model (errors name the offending rule, e.g.
``fit_rules[3].attribute``), builds a lead's profile from intake events, scores a profile and
its activities at a given instant, and chooses nurture tracks and their cadence.

The pieces, one module each: ``profile`` (what scoring knows of a lead and the attributes
rules read), ``activity`` (an engagement activity), ``model`` (the model as data, its
validation, conditions), ``score`` (scoring at an instant, decay, re-evaluation time) and
``nurture`` (tracks and their cadence). This package re-exports their public names.
"""

from __future__ import annotations

from leadflow.scoring.domain.activity import (
    Activity,
    PropertyValue,
    normalise_activity_type,
)
from leadflow.scoring.domain.model import (
    CELL_RE,
    GRADE_RE,
    RULE_ID_RE,
    Band,
    Condition,
    Decay,
    DisqualifyRule,
    EngagementRule,
    FitRule,
    GradeBand,
    LevelBand,
    ModelInvalid,
    MqlRule,
    Op,
    Scalar,
    ScoringModel,
    condition_holds,
    validate_model,
)
from leadflow.scoring.domain.nurture import (
    EnrolmentReason,
    NurtureTrack,
    TouchStep,
    choose_track,
    may_enrol,
    touch_due_at,
    validate_track,
)
from leadflow.scoring.domain.profile import (
    ANSWER_FIELDS,
    BOOL_ATTRIBUTES,
    KNOWN_ATTRIBUTES,
    NUMBER_ATTRIBUTES,
    STRING_ATTRIBUTES,
    TRACK_ATTRIBUTES,
    LeadProfile,
    country_code,
    parse_company_size,
    profile_after_inquiry,
    profile_attributes,
    profile_from_captured,
    profile_updated,
    region_of,
    seniority_of,
    snapshot,
)
from leadflow.scoring.domain.score import (
    DAY,
    FORGET_AFTER_HALF_LIVES,
    MAX_DECAY_STEPS,
    RuleCredit,
    ScoreResult,
    age_in_days,
    decay_factor,
    disqualification,
    forgotten,
    grade_of,
    level_of,
    materially_changed,
    mql_decision,
    next_reevaluation,
    same_property,
    score,
)

__all__ = [
    "ANSWER_FIELDS",
    "BOOL_ATTRIBUTES",
    "CELL_RE",
    "DAY",
    "FORGET_AFTER_HALF_LIVES",
    "GRADE_RE",
    "KNOWN_ATTRIBUTES",
    "MAX_DECAY_STEPS",
    "NUMBER_ATTRIBUTES",
    "RULE_ID_RE",
    "STRING_ATTRIBUTES",
    "TRACK_ATTRIBUTES",
    "Activity",
    "Band",
    "Condition",
    "Decay",
    "DisqualifyRule",
    "EngagementRule",
    "EnrolmentReason",
    "FitRule",
    "GradeBand",
    "LeadProfile",
    "LevelBand",
    "ModelInvalid",
    "MqlRule",
    "NurtureTrack",
    "Op",
    "PropertyValue",
    "RuleCredit",
    "Scalar",
    "ScoreResult",
    "ScoringModel",
    "TouchStep",
    "age_in_days",
    "choose_track",
    "condition_holds",
    "country_code",
    "decay_factor",
    "disqualification",
    "forgotten",
    "grade_of",
    "level_of",
    "materially_changed",
    "may_enrol",
    "mql_decision",
    "next_reevaluation",
    "normalise_activity_type",
    "parse_company_size",
    "profile_after_inquiry",
    "profile_attributes",
    "profile_from_captured",
    "profile_updated",
    "region_of",
    "same_property",
    "score",
    "seniority_of",
    "snapshot",
    "touch_due_at",
    "validate_model",
    "validate_track",
]
