"""The scoring model as data: its rule types, their validation (errors name the offending
rule, e.g. ``fit_rules[3].attribute``) and the condition check every rule kind shares.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.events.catalogue.activities import CATALOGUE
from leadflow.scoring.domain.activity import PropertyValue
from leadflow.scoring.domain.profile import (
    BOOL_ATTRIBUTES,
    KNOWN_ATTRIBUTES,
    NUMBER_ATTRIBUTES,
    _domain_matches,
)

Op = Literal[
    "eq", "ne", "in", "not_in", "contains", "contains_any", "gte", "lte", "between",
    "present", "absent", "is_true", "is_false", "domain_in",
]  # fmt: skip
Scalar = str | float | bool
GRADE_RE = re.compile(r"^[A-D][+-]?$")
CELL_RE = re.compile(r"^[A-D][1-4]$")
RULE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """``attribute op value``, e.g. ``company_size gte 200``, ``title contains_any [vp]``."""

    attribute: str
    op: Op = "eq"
    value: Scalar | list[Scalar] | None = None


class FitRule(Condition):
    id: str
    points: float
    reason: str = ""


class DisqualifyRule(Condition):
    id: str
    reason: str


class EngagementRule(_Strict):
    """Points per matching activity; ``scale_by`` multiplies by a numeric property / ``scale_unit``
    (e.g. seconds on site / 60). ``max_points`` caps the rule in total, ``daily_cap`` per day."""

    id: str
    activity_types: list[str] = Field(min_length=1)
    properties: dict[str, PropertyValue] = {}
    url_contains: str | None = None
    points: float
    scale_by: str | None = None
    scale_unit: float = 1.0
    max_points: float | None = None
    daily_cap: float | None = None
    reason: str = ""


class Band(_Strict):
    """A half-open interval ``[min, max)``; ``None`` is unbounded."""

    min: float | None = None
    max: float | None = None


class GradeBand(Band):
    grade: str


class LevelBand(Band):
    level: int


class Decay(_Strict):
    half_life_days: float = 30.0
    # How often an engaged lead is re-evaluated so that it cools down without new events.
    reevaluate_hours: float = 24.0


class MqlRule(_Strict):
    """Qualifies when the matrix cell is listed, or when every given threshold is met."""

    cells: list[str] = []
    min_fit: float | None = None
    min_engagement: float | None = None


class ScoringModel(_Strict):
    version: int = 0
    name: str = "default"
    fit_rules: list[FitRule] = []
    engagement_rules: list[EngagementRule] = []
    decay: Decay = Decay()
    fit_grades: list[GradeBand]
    engagement_levels: list[LevelBand]
    mql: MqlRule
    disqualify_rules: list[DisqualifyRule] = []
    competitor_domains: list[str] = []
    free_mail_domains: list[str] = []


class ModelInvalid(Exception):
    """A model that cannot be published; ``errors`` are ``{"field", "message"}`` items."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _loc_to_field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _err(errors: list[dict[str, str]], where: str, message: str) -> None:
    errors.append({"field": where, "message": message})


def _pydantic_errors(exc: ValidationError, root: str) -> list[dict[str, str]]:
    return [{"field": _loc_to_field(e["loc"]) or root, "message": e["msg"]} for e in exc.errors()]


def _check_condition(
    cond: Condition, where: str, known: frozenset[str] | set[str], errors: list[dict[str, str]]
) -> None:
    if cond.attribute not in known:
        _err(errors, f"{where}.attribute", f"unknown attribute {cond.attribute!r}")
        return
    value = cond.value
    numeric = cond.attribute in NUMBER_ATTRIBUTES
    if cond.op in {"present", "absent", "is_true", "is_false"}:
        if cond.op in {"is_true", "is_false"} and cond.attribute not in BOOL_ATTRIBUTES:
            _err(errors, f"{where}.op", f"{cond.attribute} is not a flag")
        return
    if cond.op in {"in", "not_in", "contains_any", "domain_in"}:
        if not isinstance(value, list) or not value:
            _err(errors, f"{where}.value", f"{cond.op} needs a non-empty list")
        return
    if cond.op in {"gte", "lte"}:
        if not numeric:
            _err(errors, f"{where}.op", f"{cond.attribute} is not numeric")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            _err(errors, f"{where}.value", f"{cond.op} needs a number")
        return
    if cond.op == "between":
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and float(value[0]) <= float(value[1])
        )
        if not numeric:
            _err(errors, f"{where}.op", f"{cond.attribute} is not numeric")
        elif not ok:
            _err(errors, f"{where}.value", "between needs [low, high]")
        return
    # eq / ne / contains
    if value is None or isinstance(value, list):
        _err(errors, f"{where}.value", f"{cond.op} needs a single value")


def _check_bands(
    bands: Sequence[Band], where: str, label: str, low: float, errors: list[dict[str, str]]
) -> None:
    """Bands must not overlap and must cover ``[low, ∞)`` without gaps."""
    for i, band in enumerate(bands):
        if band.min is not None and band.max is not None and band.min >= band.max:
            _err(errors, f"{where}[{i}]", "min must be below max")
            return

    def lower(i: int) -> float:
        low_i = bands[i].min
        return -math.inf if low_i is None else low_i

    order = sorted(range(len(bands)), key=lower)
    first = bands[order[0]]
    if first.min is not None and first.min > low:
        _err(errors, f"{where}[{order[0]}].min", f"{label} bands must start at {low} or below")
    for prev_i, next_i in itertools.pairwise(order):
        prev, nxt = bands[prev_i], bands[next_i]
        prev_max = math.inf if prev.max is None else prev.max
        next_min = -math.inf if nxt.min is None else nxt.min
        if prev_max > next_min:
            _err(
                errors,
                f"{where}[{next_i}]",
                f"{label} band overlaps {where}[{prev_i}]",
            )
        elif prev_max < next_min:
            _err(errors, f"{where}[{next_i}].min", f"gap below this {label} band")
    last = bands[order[-1]]
    if last.max is not None:
        _err(errors, f"{where}[{order[-1]}].max", "the top band must be open")


def _check_ids(items: Sequence[Any], where: str, errors: list[dict[str, str]]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not RULE_ID_RE.match(item.id):
            _err(errors, f"{where}[{i}].id", "ids are 1-64 of A-Z a-z 0-9 _ . : -")
        elif item.id in seen:
            _err(errors, f"{where}[{i}].id", f"duplicate id {item.id!r}")
        seen.add(item.id)


def validate_model(data: Mapping[str, Any], *, check_activity_types: bool = True) -> ScoringModel:
    """Parse and check a model; raise ``ModelInvalid`` naming every wrong rule.

    An engagement rule may only name activity types of the shared catalogue (by name or
    alias): a rule on a type intake refuses would never score. A model already published is
    loaded with ``check_activity_types=False``, so retiring a type never stops scoring."""
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as exc:
        raise ModelInvalid(_pydantic_errors(exc, "model")) from exc
    errors: list[dict[str, str]] = []
    _check_ids(model.fit_rules, "fit_rules", errors)
    _check_ids(model.engagement_rules, "engagement_rules", errors)
    _check_ids(model.disqualify_rules, "disqualify_rules", errors)
    for i, rule in enumerate(model.fit_rules):
        _check_condition(rule, f"fit_rules[{i}]", KNOWN_ATTRIBUTES, errors)
    for i, dq in enumerate(model.disqualify_rules):
        _check_condition(dq, f"disqualify_rules[{i}]", KNOWN_ATTRIBUTES, errors)
    for i, er in enumerate(model.engagement_rules):
        where = f"engagement_rules[{i}]"
        if er.max_points is not None and er.max_points <= 0:
            _err(errors, f"{where}.max_points", "must be positive")
        if er.daily_cap is not None and er.daily_cap <= 0:
            _err(errors, f"{where}.daily_cap", "must be positive")
        if er.scale_unit <= 0:
            _err(errors, f"{where}.scale_unit", "must be positive")
        for j, kind in enumerate(er.activity_types):
            if not kind.strip():
                _err(errors, f"{where}.activity_types[{j}]", "empty activity type")
            elif check_activity_types and CATALOGUE.get(kind) is None:
                _err(
                    errors,
                    f"{where}.activity_types[{j}]",
                    f"unknown activity type {kind!r}: intake cannot capture it "
                    f"(known: {', '.join(CATALOGUE.names())})",
                )
    if not (model.decay.half_life_days > 0 and math.isfinite(model.decay.half_life_days)):
        _err(errors, "decay.half_life_days", "half-life must be positive")
    if model.decay.reevaluate_hours <= 0:
        _err(errors, "decay.reevaluate_hours", "must be positive")
    if not model.fit_grades:
        _err(errors, "fit_grades", "at least one grade band is needed")
    else:
        for i, gb in enumerate(model.fit_grades):
            if not GRADE_RE.match(gb.grade):
                _err(errors, f"fit_grades[{i}].grade", "grades are A+ … D-")
        _check_bands(model.fit_grades, "fit_grades", "grade", 0.0, errors)
    if not model.engagement_levels:
        _err(errors, "engagement_levels", "at least one level band is needed")
    else:
        for i, lb in enumerate(model.engagement_levels):
            if lb.level not in (1, 2, 3, 4):
                _err(errors, f"engagement_levels[{i}].level", "levels are 1-4")
        _check_bands(model.engagement_levels, "engagement_levels", "level", 0.0, errors)
    for i, cell in enumerate(model.mql.cells):
        if not CELL_RE.match(cell):
            _err(errors, f"mql.cells[{i}]", f"{cell!r} is not a cell A1…D4")
    if not model.mql.cells and model.mql.min_fit is None and model.mql.min_engagement is None:
        _err(errors, "mql", "give qualifying cells or thresholds")
    if errors:
        raise ModelInvalid(errors)
    return model


# -- conditions --------------------------------------------------------------------------


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


Predicate = Callable[[Mapping[str, Any]], bool]
_COMPILED: dict[int, tuple[Condition, Predicate]] = {}


def predicate(cond: Condition) -> Predicate:
    """``cond`` as a function of the attribute map, compiled once per condition object (its
    values lower-cased and parsed as numbers once, the operator chosen once): every score
    asks a model's thirty-odd conditions, so deciding the operator and re-reading the values
    per question was a fifth of a score. The cache holds the condition itself, so its id
    cannot be reused while cached."""
    entry = _COMPILED.get(id(cond))
    if entry is None or entry[0] is not cond:
        if len(_COMPILED) > 20_000:
            _COMPILED.clear()
        entry = _COMPILED[id(cond)] = (cond, _compile(cond))
    return entry[1]


def condition_holds(cond: Condition, attrs: Mapping[str, Any]) -> bool:
    """String comparisons are case-insensitive; a missing attribute matches only ``absent``
    (and the negations ``ne`` / ``not_in``)."""
    return predicate(cond)(attrs)


def _compile(cond: Condition) -> Predicate:
    """The operators of ``condition_holds``; a text attribute is stripped (blank: missing).
    The commonest operators (flags, presence, equality, keywords) read the attribute inline:
    a call per question to read it cost as much as the question."""
    attribute, op = cond.attribute, cond.op
    values: list[Any] = cond.value if isinstance(cond.value, list) else [cond.value]
    lowered = frozenset(str(v).lower() for v in values if v is not None)

    def actual_of(attrs: Mapping[str, Any]) -> Any:
        actual = attrs.get(attribute)
        if isinstance(actual, str):
            return actual.strip() or None
        return actual

    if op == "is_true":  # a text attribute is never True, nor False
        return lambda attrs: attrs.get(attribute) is True
    if op == "is_false":
        return lambda attrs: attrs.get(attribute) is False
    if op == "present":

        def present(attrs: Mapping[str, Any]) -> bool:
            actual = attrs.get(attribute)
            if isinstance(actual, str):
                return bool(actual.strip())
            return actual is not None and actual is not False

        return present
    if op == "absent":
        return lambda attrs: actual_of(attrs) is None
    if op in {"ne", "not_in"}:
        return lambda attrs: (a := actual_of(attrs)) is None or str(a).lower() not in lowered
    if op in {"eq", "in"}:
        numbers = [_as_number(v) for v in values]

        def equals(attrs: Mapping[str, Any]) -> bool:
            actual = attrs.get(attribute)
            if isinstance(actual, str):
                text = actual.strip()
                return bool(text) and text.lower() in lowered
            if actual is None:
                return False
            number = _as_number(actual)
            if number is not None:
                return any(n == number for n in numbers)
            return str(actual).lower() in lowered

        return equals
    if op in {"contains", "contains_any"}:

        def contains(attrs: Mapping[str, Any]) -> bool:
            actual = attrs.get(attribute)
            if isinstance(actual, str):
                actual = actual.strip()
                if not actual:
                    return False
            elif actual is None:
                return False
            text = str(actual).lower()
            return any(v in text for v in lowered)

        return contains
    if op == "domain_in":
        return lambda attrs: (
            (a := actual_of(attrs)) is not None and _domain_matches(str(a).lower(), lowered)
        )
    bounds = [_as_number(v) for v in values]

    def compares(attrs: Mapping[str, Any]) -> bool:
        actual = actual_of(attrs)
        number = None if actual is None else _as_number(actual)
        if number is None:
            return False
        if op == "gte":
            return bounds[0] is not None and number >= bounds[0]
        if op == "lte":
            return bounds[0] is not None and number <= bounds[0]
        if op == "between":
            low, high = bounds[0], bounds[1]
            return low is not None and high is not None and low <= number <= high
        return False

    return compares
