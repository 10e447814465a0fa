"""Request and response bodies of intake's HTTP API (strict: unknown fields are refused)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from leadflow.events.catalogue.activities import CATALOGUE as ACTIVITIES
from leadflow.intake.security import SCOPES

Text = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4000)


class ContactIn(_Strict):
    email: str | None = Field(default=None, max_length=320)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    website: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=100)
    city: str | None = Field(default=None, max_length=100)


class SourceIn(_Strict):
    channel: str | None = Field(default=None, max_length=100)
    campaign: str | None = Field(default=None, max_length=300)
    utm_source: str | None = Field(default=None, max_length=300)
    utm_medium: str | None = Field(default=None, max_length=300)
    utm_campaign: str | None = Field(default=None, max_length=300)
    utm_term: str | None = Field(default=None, max_length=300)
    utm_content: str | None = Field(default=None, max_length=300)
    referrer: str | None = Field(default=None, max_length=2000)
    form_id: str | None = Field(default=None, max_length=200)
    event_id: str | None = Field(default=None, max_length=200)


class AnswersIn(_Strict):
    compelling_event: str | None = None
    timeframe: str | None = None
    budget: str | None = None
    authority: str | None = None
    company_size: str | None = None
    product_interest: str | None = None
    opportunity_size: str | None = None
    comments: str | None = None


class ConsentIn(_Strict):
    marketing_opt_in: bool
    text_version: str | None = Field(default=None, max_length=100)
    given_at: AwareDatetime | None = None
    source: str | None = Field(default=None, max_length=100)


class InquiryIn(_Strict):
    contact: ContactIn
    source: SourceIn = SourceIn()
    answers: AnswersIn = AnswersIn()
    consent: ConsentIn | None = None
    notes: str | None = None
    rating: Literal["hot", "warm", "cold"] | None = None
    external_id: str | None = Field(default=None, max_length=200)
    anonymous_id: str | None = Field(default=None, max_length=200)
    occurred_at: AwareDatetime | None = None


class InquiryAccepted(BaseModel):
    lead_id: str
    inquiry_id: str
    matched: bool
    match_reason: str | None = None


class ScanIn(_Strict):
    scan_id: str = Field(min_length=1, max_length=200)
    scanned_at: AwareDatetime
    badge: ContactIn | str
    notes: str | None = None
    rating: Literal["hot", "warm", "cold"] | None = None
    answers: AnswersIn = AnswersIn()


class ScanBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=200)
    campaign: str | None = Field(default=None, max_length=300)
    # Items are validated one by one so that a bad item never rejects the good ones.
    items: list[dict[str, Any]] = Field(min_length=1)


# An activity property: text, a number (seconds on site, percent of a video) or a flag.
PropertyValue = (
    bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[str, Field(max_length=1000)]
)
MAX_PROPERTIES = 50


class ActivityIn(_Strict):
    activity_id: str | None = Field(default=None, min_length=1, max_length=200)
    type: str
    occurred_at: AwareDatetime
    email: str | None = Field(default=None, max_length=320)
    lead_id: str | None = None
    anonymous_id: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    content_id: str | None = Field(default=None, max_length=200)
    campaign: str | None = Field(default=None, max_length=300)
    properties: dict[Annotated[str, Field(min_length=1, max_length=100)], PropertyValue] = {}

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        """One vocabulary with scoring (``leadflow.events.catalogue.activities``): a name or an
        alias is accepted and recorded under its canonical name."""
        kind = ACTIVITIES.get(value)
        if kind is None:
            raise ValueError(
                f"unknown activity type {value!r}; "
                f"known: {', '.join(ACTIVITIES.names('activities'))}"
            )
        if kind.door != "activities":
            raise ValueError(
                f"{kind.name!r} is recorded for every inquiry: post it to /v1/inquiries"
            )
        return kind.name

    @field_validator("properties")
    @classmethod
    def _few_properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_PROPERTIES:
            raise ValueError(f"at most {MAX_PROPERTIES} properties")
        return value


class ActivityBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[dict[str, Any]] = Field(min_length=1)


class ConsentChangeIn(_Strict):
    """Marketing e-mail consent (nurture e-mail) and do-not-contact (no contact at all, sales
    included) are separate answers; a request gives one or both."""

    marketing_opt_in: bool | None = None
    do_not_contact: bool | None = None
    text_version: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


class ErasureIn(_Strict):
    reason: str | None = Field(default=None, max_length=500)
    requested_by: str | None = Field(default=None, max_length=200)


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


class FormIn(_Strict):
    """A web form: which posted field feeds which lead field, what is required, where to go
    after, and who may post it."""

    name: str = Field(min_length=1, max_length=200)
    form_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{4,64}$")
    field_map: dict[str, str] = {}
    required: list[str] = ["email"]
    thank_you_url: str | None = Field(default=None, max_length=2000)
    allowed_origins: list[str] = Field(min_length=1)
    campaign: str | None = Field(default=None, max_length=300)
    honeypot_field: str = Field(default="hp_website", min_length=1, max_length=100)
    consent_text_version: str | None = Field(default=None, max_length=100)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            origin = value.strip().rstrip("/")
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{value!r} is not an origin (scheme://host[:port]); '*' is not allowed"
                )
            out.append(origin.lower())
        return out

    @field_validator("thank_you_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("thank_you_url must be an absolute http(s) URL")
        return value


class ApiKeyIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    device_id: str | None = Field(default=None, max_length=200)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, values: list[str]) -> list[str]:
        unknown = sorted(set(values) - SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; use {sorted(SCOPES)}")
        return sorted(set(values))


class AccountIn(_Strict):
    account_id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    owner_rep_id: str | None = Field(
        default=None,
        max_length=200,
        description="refused (422): account owners are set in routing, "
        "PUT /v1/routing/accounts/{account_key}",
    )
