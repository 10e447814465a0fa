"""Scoring rules as data, and the pure functions that apply them (no I/O).

Marketing ops own the scoring model: fit rules on profile attributes, engagement rules on
activities (with per-rule and per-day caps and a decay half-life), grade bands, the MQL rule
and the disqualify rules. This module validates a model (errors name the offending rule, e.g.
``fit_rules[3].attribute``), builds a lead's profile from intake events, scores a profile and
its activities at a given instant, and chooses nurture tracks and their cadence.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.events.catalogue.activities import CATALOGUE, canonical_activity_type
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import (
    InquiryReceived,
    LeadCaptured,
    LeadProfileUpdated,
    QualificationAnswers,
)
from leadflow.events.catalogue.scoring import Contribution

# ---------------------------------------------------------------------------------------
# Profile: the attributes fit rules, disqualify rules and track rules may read
# ---------------------------------------------------------------------------------------

ANSWER_FIELDS = (
    "compelling_event",
    "timeframe",
    "budget",
    "authority",
    "company_size",
    "product_interest",
    "opportunity_size",
)

STRING_ATTRIBUTES = frozenset(
    {
        "company",
        "title",
        "seniority",
        "department",
        "industry",
        "country",
        "region",
        "city",
        "product_interest",
        "email_domain",
        "account_id",
        "account_domain",
        "website",
        "channel",
        "campaign",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "referrer",
        "capture_method",
        "rating",
        *(f"answers.{name}" for name in ANSWER_FIELDS),
    }
)
NUMBER_ATTRIBUTES = frozenset({"company_size"})
BOOL_ATTRIBUTES = frozenset(
    {
        "free_mail",
        "disposable",
        "role_address",
        "marketing_opt_in",
        "do_not_contact",
        "competitor",
        "has_account",
        "account_matched",
    }
)
KNOWN_ATTRIBUTES = STRING_ATTRIBUTES | NUMBER_ATTRIBUTES | BOOL_ATTRIBUTES
# Track rules may also read why the lead is being enrolled.
TRACK_ATTRIBUTES = KNOWN_ATTRIBUTES | {"enrolment_reason"}


class LeadProfile(BaseModel):
    """What scoring knows about a lead, folded from intake events (non-personal fields only)."""

    model_config = ConfigDict(extra="ignore")

    company: str | None = None
    title: str | None = None
    seniority: str | None = None
    department: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    product_interest: str | None = None
    email_domain: str | None = None
    account_id: str | None = None
    account_domain: str | None = None
    # The account was registered through intake's accounts API (a known account), not only
    # grouped by company domain: ``has_account`` reads this, ``account_matched`` any account.
    account_registered: bool = False
    website: str | None = None
    channel: str | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None
    capture_method: str | None = None
    rating: str | None = None
    free_mail: bool = False
    disposable: bool = False
    role_address: bool = False
    # Marketing e-mail consent (None: unknown) governs nurture e-mail only; do_not_contact
    # (the person asked for no contact at all) is what takes a lead away from sales.
    marketing_opt_in: bool | None = None
    do_not_contact: bool = False
    answers: dict[str, str] = {}
    # Non-personal extra columns of an import (visits, time on site, ...): predictive
    # features; sales-entered ones are filtered out there, rules do not read them.
    attributes: dict[str, str] = {}


def _clean(value: str | None) -> str | None:
    """Blank and placeholder values ("Select", as some form exports write) count as absent."""
    if value is None:
        return None
    text = value.strip()
    if not text or text.lower() in {"select", "none", "null", "n/a", "na", "-"}:
        return None
    return text


def _merge_answers(current: Mapping[str, str], answers: QualificationAnswers) -> dict[str, str]:
    merged = dict(current)
    for name in ANSWER_FIELDS:
        value = _clean(getattr(answers, name))
        if value is not None:
            merged[name] = value
    return merged


def parse_company_size(text: str | None) -> int | None:
    """``"51-200"`` → 51, ``"1000+"`` → 1000, ``"10k"`` → 10000; the lower bound is what we know."""
    if not text:
        return None
    match = re.search(r"(\d[\d,.]*)\s*([kKmM]?)", text)
    if not match:
        return None
    try:
        number = float(match.group(1).replace(",", ""))
    except ValueError:
        return None
    multiplier = {"k": 1_000, "m": 1_000_000}.get(match.group(2).lower(), 1)
    return int(number * multiplier)


def profile_from_captured(event: LeadCaptured) -> LeadProfile:
    contact = event.contact
    answers = _merge_answers({}, event.answers)
    email_domain = event.email_domain or (
        contact.email.rsplit("@", 1)[1].lower() if contact.email and "@" in contact.email else None
    )
    return LeadProfile(
        company=_clean(contact.company) or (event.account.name if event.account else None),
        title=_clean(contact.title),
        department=_clean(contact.department),
        industry=_clean(contact.industry),
        company_size=parse_company_size(answers.get("company_size")),
        country=_clean(contact.country),
        city=_clean(contact.city),
        product_interest=answers.get("product_interest"),
        email_domain=email_domain,
        account_id=event.account.account_id if event.account else None,
        account_domain=event.account.domain if event.account else None,
        account_registered=event.account.registered if event.account else False,
        website=_clean(contact.website),
        channel=_clean(event.source.channel) or event.capture_method,
        campaign=_clean(event.source.campaign) or _clean(event.source.utm_campaign),
        utm_source=_clean(event.source.utm_source),
        utm_medium=_clean(event.source.utm_medium),
        utm_campaign=_clean(event.source.utm_campaign),
        referrer=_clean(event.source.referrer),
        capture_method=event.capture_method,
        rating=event.rating,
        free_mail=event.flags.free_mail,
        disposable=event.flags.disposable,
        role_address=event.flags.role_address,
        marketing_opt_in=event.consent.marketing_opt_in if event.consent else None,
        answers=answers,
        attributes=dict(event.attributes),
    )


def profile_updated(profile: LeadProfile, event: LeadProfileUpdated) -> LeadProfile:
    """Apply the new values of a profile update; fields the update leaves empty are kept."""
    contact = event.contact
    changes: dict[str, Any] = {}
    for name in ("company", "title", "department", "industry", "country", "city", "website"):
        value = _clean(getattr(contact, name))
        if value is not None:
            changes[name] = value
    if contact.email and "@" in contact.email:
        changes["email_domain"] = contact.email.rsplit("@", 1)[1].lower()
    if event.account is not None:
        changes["account_id"] = event.account.account_id
        changes["account_domain"] = event.account.domain
        changes["account_registered"] = event.account.registered
        if "company" not in changes and event.account.name:
            changes["company"] = event.account.name
    answers = _merge_answers(profile.answers, event.answers)
    changes["answers"] = answers
    if answers.get("company_size"):
        changes["company_size"] = parse_company_size(answers["company_size"])
    if answers.get("product_interest"):
        changes["product_interest"] = answers["product_interest"]
    if "title" in changes:
        changes["seniority"] = None  # re-derived from the new title
    return profile.model_copy(update=changes)


def profile_after_inquiry(profile: LeadProfile, event: InquiryReceived) -> LeadProfile:
    """A repeat inquiry can bring newer qualification answers."""
    answers = _merge_answers(profile.answers, event.answers)
    changes: dict[str, Any] = {"answers": answers}
    if answers.get("company_size"):
        changes["company_size"] = parse_company_size(answers["company_size"])
    if answers.get("product_interest"):
        changes["product_interest"] = answers["product_interest"]
    if event.rating:
        changes["rating"] = event.rating
    if event.attributes:
        changes["attributes"] = {**profile.attributes, **event.attributes}
    return profile.model_copy(update=changes)


_SENIORITY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("student", r"\b(student|intern|trainee|graduate)\b"),
    ("vp", r"\b(vp|svp|evp|vice president)\b"),
    ("c_level", r"\b(chief|ceo|cto|cfo|coo|cmo|cio|ciso|founder|co-founder|owner|president)\b"),
    ("director", r"\b(director|head of|head)\b"),
    ("manager", r"\b(manager|lead|supervisor|principal)\b"),
    ("professional", r"\b(professional|engineer|analyst|specialist|consultant|businessman)\b"),
)


@functools.lru_cache(maxsize=4096)
def seniority_of(title: str | None) -> str | None:
    """A coarse seniority from a job title; explicit seniority wins when intake provides it."""
    if not title:
        return None
    lowered = title.lower()
    for level, pattern in _SENIORITY_PATTERNS:
        if re.search(pattern, lowered):
            return level
    return "individual"


_AMER = {"US", "CA", "MX", "BR", "AR", "CL", "CO", "PE", "UY", "CR", "PA", "EC", "VE"}
_APAC = {
    "IN", "CN", "JP", "KR", "SG", "AU", "NZ", "HK", "TW", "ID", "MY", "TH", "VN", "PH",
    "PK", "BD", "LK", "NP",
}  # fmt: skip
_EUROPE = {
    "GB", "IE", "FR", "DE", "NL", "BE", "LU", "ES", "PT", "IT", "CH", "AT", "DK", "SE",
    "NO", "FI", "IS", "PL", "CZ", "SK", "HU", "RO", "BG", "GR", "HR", "SI", "EE", "LV",
    "LT", "UA", "RS", "TR", "CY", "MT",
}  # fmt: skip
_MEA = {"AE", "SA", "QA", "BH", "OM", "KW", "IL", "EG", "ZA", "NG", "KE", "MA", "JO", "LB"}


@functools.lru_cache(maxsize=4096)
def country_code(country: str | None) -> str | None:
    """ISO alpha-2 for a code or a country name ("India" → "IN"); None when unknown."""
    if not country:
        return None
    text = country.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    try:
        found = pycountry.countries.lookup(text)
    except LookupError:
        return None
    return str(found.alpha_2)


def region_of(country: str | None) -> str | None:
    code = country_code(country)
    if code is None:
        return None
    if code in _AMER:
        return "AMER"
    if code in _APAC:
        return "APAC"
    if code in _EUROPE or code in _MEA:
        return "EMEA"
    return None


def _domain_matches(domain: str | None, domains: Iterable[str]) -> bool:
    if not domain:
        return False
    wanted = _domain_set(tuple(domains))
    parts = domain.lower().split(".")
    # the domain itself or any parent domain ("mail.acme.com" matches "acme.com")
    return any(".".join(parts[i:]) in wanted for i in range(len(parts)))


@functools.lru_cache(maxsize=256)
def _domain_set(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.lower() for d in domains)


def profile_attributes(profile: LeadProfile, model: ScoringModel | None = None) -> dict[str, Any]:
    """The flat attribute map rules read: stored fields plus derived ones (seniority, region,
    competitor, free-mail by the model's domain list)."""
    # The field values as they are (a model_dump per score was a hot spot).
    attrs: dict[str, Any] = {
        k: v for k, v in profile.__dict__.items() if k not in ("answers", "attributes")
    }
    for name in ANSWER_FIELDS:
        attrs[f"answers.{name}"] = profile.answers.get(name)
    attrs["seniority"] = profile.seniority or seniority_of(profile.title)
    attrs["country"] = country_code(profile.country) or profile.country
    attrs["region"] = profile.region or region_of(profile.country)
    # A known account is a registered one; intake groups every company domain into an
    # implicit account, which must not earn fit points by itself (issue 30).
    attrs["has_account"] = profile.account_id is not None and profile.account_registered
    attrs["account_matched"] = profile.account_id is not None
    competitor = False
    if model is not None:
        competitor = _domain_matches(profile.email_domain, model.competitor_domains) or (
            _domain_matches(profile.account_domain, model.competitor_domains)
        )
        if _domain_matches(profile.email_domain, model.free_mail_domains):
            attrs["free_mail"] = True
    attrs["competitor"] = competitor
    return attrs


def snapshot(profile: LeadProfile, *, grade: str | None, matrix_cell: str | None) -> LeadSnapshot:
    """The non-personal profile routing decides on, carried on ``LeadQualified``."""
    attrs = profile_attributes(profile)
    return LeadSnapshot(
        company=profile.company,
        title=profile.title,
        seniority=attrs["seniority"],
        department=profile.department,
        industry=profile.industry,
        company_size=profile.company_size,
        country=attrs["country"],
        region=attrs["region"],
        product_interest=profile.product_interest,
        email_domain=profile.email_domain,
        account_id=profile.account_id,
        account_domain=profile.account_domain,
        channel=profile.channel,
        campaign=profile.campaign,
        grade=grade,
        matrix_cell=matrix_cell,
    )


# ---------------------------------------------------------------------------------------
# Activities
# ---------------------------------------------------------------------------------------


def normalise_activity_type(value: str) -> str:
    """The catalogue's name for a type: ``"Email Opened"``, ``"email-opened"`` and the alias
    ``email_opened`` are all ``email_open`` (``leadflow.events.catalogue.activities``)."""
    return canonical_activity_type(value)


# An activity property: text, a number (seconds on site, a video's percent watched) or a flag.
PropertyValue = bool | int | float | str


@dataclass(frozen=True)
class Activity:
    activity_type: str
    occurred_at: datetime
    url: str | None = None
    content_id: str | None = None
    campaign: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    activity_id: str | None = None

    def __post_init__(self) -> None:
        # Whatever door built it (an event, a stored row, a sample), an activity carries the
        # catalogue's canonical type, the one rules are matched on.
        object.__setattr__(self, "activity_type", normalise_activity_type(self.activity_type))


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


_VALUES: dict[int, tuple[Condition, list[Any], frozenset[str]]] = {}


def _values_of(cond: Condition) -> tuple[list[Any], frozenset[str]]:
    """A condition's values and their lower-cased forms, computed once per condition object
    (the cache holds the condition itself, so its id cannot be reused while cached)."""
    entry = _VALUES.get(id(cond))
    if entry is None or entry[0] is not cond:
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        lowered = frozenset(str(v).lower() for v in values if v is not None)
        if len(_VALUES) > 20_000:
            _VALUES.clear()
        entry = _VALUES[id(cond)] = (cond, values, lowered)
    return entry[1], entry[2]


def condition_holds(cond: Condition, attrs: Mapping[str, Any]) -> bool:
    """String comparisons are case-insensitive; a missing attribute matches only ``absent``
    (and the negations ``ne`` / ``not_in``)."""
    actual = attrs.get(cond.attribute)
    if isinstance(actual, str):
        actual = actual.strip() or None
    op = cond.op
    if op == "present":
        return actual is not None and actual is not False
    if op == "absent":
        return actual is None
    if op == "is_true":
        return actual is True
    if op == "is_false":
        return actual is False
    values, lowered = _values_of(cond)
    if op in {"ne", "not_in"}:
        return actual is None or str(actual).lower() not in lowered
    if actual is None:
        return False
    text = str(actual).lower()
    if op in {"eq", "in"}:
        number = _as_number(actual)
        if number is not None and not isinstance(actual, str):
            return any(_as_number(v) == number for v in values)
        return text in lowered
    if op in {"contains", "contains_any"}:
        return any(v in text for v in lowered)
    if op == "domain_in":
        return _domain_matches(text, lowered)
    number = _as_number(actual)
    if number is None:
        return False
    bounds = [_as_number(v) for v in values]
    if op == "gte":
        return bounds[0] is not None and number >= bounds[0]
    if op == "lte":
        return bounds[0] is not None and number <= bounds[0]
    if op == "between":
        return bounds[0] is not None and bounds[1] is not None and bounds[0] <= number <= bounds[1]
    return False


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
    for key, expected in rule.properties.items():
        if not same_property(activity.properties.get(key), expected):
            return False
    if rule.url_contains is not None:
        return rule.url_contains.lower() in (activity.url or "").lower()
    return True


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
    contributions: list[Contribution] = []
    fit_sum = 0.0
    for rule in model.fit_rules:
        if condition_holds(rule, attrs):
            fit_sum += rule.points
            contributions.append(
                Contribution(rule_id=rule.id, kind="fit", points=rule.points, reason=rule.reason)
            )
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
    for erule in model.engagement_rules:
        matching = [a for a in acts if _rule_matches(erule, a)]
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
    dq = disqualification(attrs, model)
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


# ---------------------------------------------------------------------------------------
# Nurture
# ---------------------------------------------------------------------------------------


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
