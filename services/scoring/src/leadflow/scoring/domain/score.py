"""Scoring a lead at an instant: fit from the profile, decayed engagement from its
activities, grade, matrix cell, MQL decision, disqualification, and when decay can next
move it.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from leadflow.events.catalogue.scoring import Contribution
from leadflow.scoring.domain.activity import Activity, PropertyValue, normalise_activity_type
from leadflow.scoring.domain.model import (
    Band,
    DisqualifyRule,
    EngagementRule,
    FitRule,
    GradeBand,
    LevelBand,
    MqlRule,
    Predicate,
    ScoringModel,
    _as_number,
    condition_holds,
    predicate,
)
from leadflow.scoring.domain.profile import LeadProfile, profile_attributes

DAY = timedelta(days=1)
# Activities older than this many half-lives (under 0.025% of their points) are forgotten:
# live scoring reads only this window, and simulate applies the same cut.
FORGET_AFTER_HALF_LIVES = 12.0


def age_in_days(age: timedelta) -> int:
    """Whole days elapsed (activity from the future counts as fresh: 0)."""
    return max(age, timedelta(0)) // DAY


def decay_factor(age: timedelta, half_life_days: float) -> float:
    """``0.5 ** (whole days of age / half_life)``, in (0, 1].

    Decay counts whole elapsed days, not milliseconds. An activity keeps its full points for
    its first 24 hours and then loses value one step a day, on the anniversary of the moment
    it happened. That is what a marketing-ops user reads in the model ("an inquiry is worth
    10 points, halving every 30 days") and what ``POST /v1/scoring/simulate`` shows: a fresh
    inquiry is worth exactly 10, not 9.9999 because the consumer scored it a few
    milliseconds after it happened, so a band edge (10 → level 3) never depends on how fast
    the pipeline ran. The score of a lead only moves when something happens or when one of
    its activities turns a day older, so it can be reproduced and explained."""
    return float(0.5 ** (age_in_days(age) / half_life_days))


def forgotten(age: timedelta, half_life_days: float) -> bool:
    """Whether an activity this old no longer counts (``FORGET_AFTER_HALF_LIVES``)."""
    return age_in_days(age) >= half_life_days * FORGET_AFTER_HALF_LIVES


@functools.lru_cache(maxsize=1024)
def _normalised_types(types: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalise_activity_type(t) for t in types)


def _rule_matches(rule: EngagementRule, activity: Activity) -> bool:
    if activity.activity_type not in _normalised_types(tuple(rule.activity_types)):
        return False
    return _details_match(rule, activity)


def _details_match(rule: EngagementRule, activity: Activity) -> bool:
    """The rule's conditions beyond the activity type: properties and URL."""
    for key, expected in rule.properties.items():
        if not same_property(activity.properties.get(key), expected):
            return False
    if rule.url_contains is not None:
        return rule.url_contains.lower() in (activity.url or "").lower()
    return True


@dataclass(frozen=True)
class CompiledRules:
    """A model's rules as ``score`` asks them, built once per model object (``compiled``):
    each fit and disqualify condition as a predicate (``model.predicate``), each fit rule's
    contribution (frozen: shared by every score it is part of), and the
    engagement rules indexed by normalised activity type, so an activity is matched against
    the rules of its type only instead of every rule against every activity."""

    fit: tuple[tuple[FitRule, Predicate, Contribution], ...]
    disqualify: tuple[tuple[DisqualifyRule, Predicate], ...]
    by_type: Mapping[str, tuple[tuple[int, EngagementRule], ...]]

    def matches(self, activities: Iterable[Activity]) -> dict[int, list[Activity]]:
        """The activities each engagement rule matches (by the rule's index in the model),
        in the order given; rules that match none are absent."""
        found: dict[int, list[Activity]] = {}
        for activity in activities:
            for i, rule in self.by_type.get(activity.activity_type, ()):
                if _details_match(rule, activity):
                    found.setdefault(i, []).append(activity)
        return found


_COMPILED: dict[int, tuple[ScoringModel, CompiledRules]] = {}


def _fit_contribution(rule: FitRule) -> Contribution:
    """What a fit rule that holds adds to a score: the same for every lead (a frozen value,
    so every score shares it)."""
    return Contribution(rule_id=rule.id, kind="fit", points=rule.points, reason=rule.reason)


def compiled(model: ScoringModel) -> CompiledRules:
    """``model``'s rules compiled, once per model object (a batch's model comes from the
    store's cache, so a model is compiled when it is published or first read). The cache
    holds the model itself, so its id cannot be reused while cached."""
    entry = _COMPILED.get(id(model))
    if entry is None or entry[0] is not model:
        by_type: dict[str, list[tuple[int, EngagementRule]]] = {}
        for i, rule in enumerate(model.engagement_rules):
            for kind in _normalised_types(tuple(rule.activity_types)):
                by_type.setdefault(kind, []).append((i, rule))
        rules = CompiledRules(
            fit=tuple((r, predicate(r), _fit_contribution(r)) for r in model.fit_rules),
            disqualify=tuple((r, predicate(r)) for r in model.disqualify_rules),
            by_type={kind: tuple(found) for kind, found in by_type.items()},
        )
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        entry = _COMPILED[id(model)] = (model, rules)
    return entry[1]


def _property_text(value: PropertyValue | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).strip().lower()


def same_property(actual: PropertyValue | None, expected: PropertyValue) -> bool:
    """A rule's property value matches the activity's: text case-insensitively, numbers by
    value (``5`` matches ``"5.0"``), flags as ``true`` / ``false``."""
    if not isinstance(actual, bool) and not isinstance(expected, bool):
        a, e = _as_number(actual), _as_number(expected)
        if a is not None and e is not None:
            return a == e
    return _property_text(actual) == _property_text(expected)


def _raw_points(rule: EngagementRule, activity: Activity) -> float:
    if rule.scale_by is None:
        return rule.points
    quantity = _as_number(activity.properties.get(rule.scale_by))
    if quantity is None or quantity <= 0:
        return 0.0
    return rule.points * quantity / rule.scale_unit


class RuleCredit(BaseModel):
    """How one engagement rule added up: raw (capped) points, and their decayed value."""

    rule_id: str
    activities: int
    raw: float
    capped: float
    decayed: float


class ScoreResult(BaseModel):
    fit: float
    engagement: float
    engagement_exact: float = Field(exclude=True)
    engagement_raw: float
    grade: str
    engagement_level: int
    matrix_cell: str
    model_version: int
    contributions: list[Contribution]
    engagement_rules: list[RuleCredit]
    mql_ready: bool
    mql_reason: str
    disqualified_by: str | None = None
    disqualify_reason: str | None = None
    scored_at: datetime
    # (occurred_at, credited points) of every activity that counts: when each one turns a
    # day older is when the score can move without a new event (``next_reevaluation``).
    credited: list[tuple[datetime, float]] = Field(default=[], exclude=True)

    def top_contributions(self, n: int = 5) -> list[Contribution]:
        return sorted(self.contributions, key=lambda c: (-abs(c.points), c.rule_id))[:n]


def _credit_rule(
    rule: EngagementRule,
    matching: Sequence[Activity],
    now: datetime,
    half_life: float,
    credited_out: list[tuple[datetime, float]] | None = None,
) -> RuleCredit:
    """Credit the freshest activities first, so caps keep the points that decay least (and
    adding an activity can never lower the rule's decayed total)."""
    total_raw = 0.0
    total_capped = 0.0
    decayed = 0.0
    per_day: dict[date, float] = defaultdict(float)
    cap_left = math.inf if rule.max_points is None else rule.max_points
    for activity in sorted(matching, key=lambda a: a.occurred_at, reverse=True):
        points = _raw_points(rule, activity)
        total_raw += points
        if points > 0:
            day = activity.occurred_at.astimezone(UTC).date()
            day_left = math.inf if rule.daily_cap is None else rule.daily_cap - per_day[day]
            credited = max(0.0, min(points, day_left, cap_left))
            per_day[day] += credited
            cap_left -= credited
        else:
            credited = points  # negative signals (bounces, unsubscribes) are not capped
        total_capped += credited
        decayed += credited * decay_factor(now - activity.occurred_at, half_life)
        if credited and credited_out is not None:
            credited_out.append((activity.occurred_at, credited))
    return RuleCredit(
        rule_id=rule.id,
        activities=len(matching),
        raw=total_raw,
        capped=total_capped,
        decayed=decayed,
    )


def _band_of(bands: Sequence[Band], value: float) -> Band:
    for band in bands:
        lo = -math.inf if band.min is None else band.min
        hi = math.inf if band.max is None else band.max
        if lo <= value < hi:
            return band
    # Validated models cover [0, ∞); anything below the lowest band falls into it.
    return min(bands, key=lambda b: -math.inf if b.min is None else b.min)


def grade_of(fit: float, model: ScoringModel) -> str:
    band = _band_of(model.fit_grades, fit)
    assert isinstance(band, GradeBand)
    return band.grade


def level_of(engagement: float, model: ScoringModel) -> int:
    band = _band_of(model.engagement_levels, engagement)
    assert isinstance(band, LevelBand)
    return band.level


def mql_decision(fit: float, engagement: float, cell: str, rule: MqlRule) -> tuple[bool, str]:
    if cell in rule.cells:
        return True, f"matrix cell {cell} qualifies"
    if rule.min_fit is not None or rule.min_engagement is not None:
        fit_ok = rule.min_fit is None or fit >= rule.min_fit
        eng_ok = rule.min_engagement is None or engagement >= rule.min_engagement
        if fit_ok and eng_ok:
            return True, "fit and engagement thresholds met"
    return False, f"matrix cell {cell} is below the MQL bar"


def disqualification(attrs: Mapping[str, Any], model: ScoringModel) -> DisqualifyRule | None:
    """The first disqualify rule that holds, if any."""
    for rule in model.disqualify_rules:
        if condition_holds(rule, attrs):
            return rule
    return None


def score(
    profile: LeadProfile,
    activities: Iterable[Activity],
    model: ScoringModel,
    now: datetime,
    *,
    engagement_since: datetime | None = None,
) -> ScoreResult:
    """Score a lead as of ``now``: fit from the profile, decayed engagement from activities
    (only those at or after ``engagement_since``, which recycling resets, and not yet
    forgotten), grade, matrix cell, MQL decision and disqualification.

    The one function of (facts, model, now) behind every score: the consumer's live score,
    ``GET /v1/leads/{id}/score``, the backtest and ``POST /v1/scoring/simulate`` all call it,
    so the same facts at the same instant give the same grade everywhere."""
    attrs = profile_attributes(profile, model)
    rules = compiled(model)
    contributions: list[Contribution] = []
    fit_sum = 0.0
    for rule, holds, contribution in rules.fit:
        if holds(attrs):
            fit_sum += rule.points
            contributions.append(contribution)
    fit = round(min(100.0, max(0.0, fit_sum)), 2)

    half_life = model.decay.half_life_days
    acts = [
        a
        for a in activities
        if (engagement_since is None or a.occurred_at >= engagement_since)
        and not forgotten(now - a.occurred_at, half_life)
    ]
    credits: list[RuleCredit] = []
    credited: list[tuple[datetime, float]] = []
    engagement_sum = 0.0
    raw_sum = 0.0
    matches = rules.matches(acts)
    for i, erule in enumerate(model.engagement_rules):
        matching = matches.get(i)
        if not matching:
            continue
        credit = _credit_rule(erule, matching, now, half_life, credited)
        credits.append(credit)
        engagement_sum += credit.decayed
        raw_sum += credit.capped
        if credit.decayed:
            contributions.append(
                Contribution(
                    rule_id=erule.id,
                    kind="engagement",
                    points=round(credit.decayed, 2),
                    reason=erule.reason or f"{credit.activities} x {erule.id}",
                )
            )
    exact = max(0.0, engagement_sum)
    engagement = round(exact, 2)
    grade = grade_of(fit, model)
    # Levels and the MQL bar read the unrounded value, so the decay timer's exact crossing
    # time really is the moment the level changes.
    level = level_of(exact, model)
    cell = f"{grade[0]}{level}"
    dq = next((rule for rule, holds in rules.disqualify if holds(attrs)), None)
    if dq is not None:
        ready, why = False, f"disqualified: {dq.reason}"
    else:
        ready, why = mql_decision(fit, exact, cell, model.mql)
    return ScoreResult(
        fit=fit,
        engagement=engagement,
        engagement_exact=exact,
        engagement_raw=round(max(0.0, raw_sum), 2),
        grade=grade,
        engagement_level=level,
        matrix_cell=cell,
        model_version=model.version,
        contributions=contributions,
        engagement_rules=credits,
        mql_ready=ready,
        mql_reason=why,
        disqualified_by=dq.id if dq else None,
        disqualify_reason=dq.reason if dq else None,
        scored_at=now,
        credited=credited,
    )


def materially_changed(
    old: Mapping[str, Any] | None, new: ScoreResult, tolerance: float = 0.5
) -> bool:
    """Whether a re-score is worth a ``LeadScored`` event: grade, cell or MQL-readiness moved,
    or a score moved by more than ``tolerance`` points (decay alone drifts continuously).
    A new model version alone is not a change: a publish re-scores everyone, and only the
    leads whose score actually moved get an event."""
    if old is None:
        return True
    return (
        old.get("grade") != new.grade
        or old.get("matrix_cell") != new.matrix_cell
        or bool(old.get("mql_ready")) != new.mql_ready
        or abs(float(old.get("fit", 0.0)) - new.fit) > tolerance
        or abs(float(old.get("engagement", 0.0)) - new.engagement) > tolerance
    )


MAX_DECAY_STEPS = 5_000


def next_reevaluation(result: ScoreResult, model: ScoringModel, now: datetime) -> datetime | None:
    """When to look at the lead again so decay can move it: the moment one of its activities
    turns a day older and the engagement level or MQL-readiness changes with it (decay moves
    in whole days, so that moment is exact), and at least every ``reevaluate_hours``. None
    when there is nothing left to decay."""
    if not result.credited or result.disqualified_by is not None:
        return None
    periodic = now + timedelta(hours=model.decay.reevaluate_hours)
    half_life = model.decay.half_life_days
    steps: list[tuple[datetime, int]] = []
    for i, (at, _points) in enumerate(result.credited):
        when = at + DAY * (age_in_days(now - at) + 1)
        while when <= periodic:
            steps.append((when, i))
            if len(steps) > MAX_DECAY_STEPS:
                return periodic
            when += DAY
    if not steps:
        return periodic
    steps.sort()
    values = [
        points * (0.0 if forgotten(now - at, half_life) else decay_factor(now - at, half_life))
        for at, points in result.credited
    ]
    total = sum(values)
    for when, i in steps:
        at, points = result.credited[i]
        age = when - at
        value = 0.0 if forgotten(age, half_life) else points * decay_factor(age, half_life)
        total += value - values[i]
        values[i] = value
        engagement = max(0.0, total)
        level = level_of(engagement, model)
        ready, _why = mql_decision(result.fit, engagement, f"{result.grade[0]}{level}", model.mql)
        if level != result.engagement_level or ready != result.mql_ready:
            return when
    return periodic
