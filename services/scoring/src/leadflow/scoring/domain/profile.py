"""A lead's profile as scoring knows it (non-personal fields folded from intake events), and
the flat attribute map that fit, disqualify and track rules read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pycountry
from pydantic import BaseModel, ConfigDict

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.intake import (
    InquiryReceived,
    LeadCaptured,
    LeadProfileUpdated,
    QualificationAnswers,
)

if TYPE_CHECKING:
    from leadflow.scoring.domain.model import ScoringModel

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
