"""Events produced by ``services/intake`` on ``leadflow.intake``: capture and data hygiene."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.envelope import EventPayload
from leadflow.events.envelope import is_historical as is_historical  # beside its payloads

CaptureMethod = Literal["api", "web_form", "badge_scan", "import"]
Rating = Literal["hot", "warm", "cold"]

HISTORICAL_DOC = (
    "True for history loaded from another system (an import mapping an outcome column): the "
    "fact happened in the past, at occurred_at. Consumers record it (analytics counts it, "
    "scoring learns from it) but act on nothing: no SLA clock, nurture, routing or "
    "notification starts from a historical event."
)


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Contact(_Value):
    """Normalised contact data: email lower-cased, phone E.164, country ISO-3166 alpha-2."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    department: str | None = None
    company: str | None = None
    website: str | None = None
    industry: str | None = None
    country: str | None = None
    city: str | None = None
    # Added: the person's other addresses (a merged duplicate's private web-mail, say); the
    # primary stays in ``email``. A factory, not ``= []``: pydantic deep-copies a mutable
    # default on every construction, and a Contact is built several times per inquiry.
    secondary_emails: list[str] = Field(default_factory=list, json_schema_extra={"default": []})


class QualificationAnswers(_Value):
    """The free-text answers to the questions sales asks (BANT and friends)."""

    compelling_event: str | None = None
    timeframe: str | None = None
    budget: str | None = None
    authority: str | None = None
    company_size: str | None = None
    product_interest: str | None = None
    opportunity_size: str | None = None
    comments: str | None = None


class ConsentRecord(_Value):
    """Marketing e-mail consent (newsletter, nurture e-mail): never sales eligibility.

    ``stated`` (added) is False when the person said nothing: a form showed the newsletter
    box and it was left unticked. Such a record means "not given" for a new lead, but it
    never withdraws or overrides an answer the person did give (docs/consent.md).
    """

    marketing_opt_in: bool
    text_version: str | None = None
    given_at: datetime | None = None
    source: str | None = None
    stated: bool = True


# Intake's implicit account ids: uuid5 of the company domain in this namespace (a company
# nobody registered still groups its people by domain).
IMPLICIT_ACCOUNT_NAMESPACE = uuid.UUID("0b7c7a3e-5c1e-4d8e-9a53-2f1f9c1e7a10")


def implicit_account_id(domain: str) -> str:
    """The stable account id intake gives a company domain nobody registered."""
    return str(uuid.uuid5(IMPLICIT_ACCOUNT_NAMESPACE, domain.lower()))


class AccountMatch(_Value):
    """The company a lead belongs to.

    ``registered`` (added): True when the account was registered through intake's accounts
    API (``PUT /v1/admin/accounts/{domain}``), False when intake only grouped the lead by its
    company domain (an implicit account). Events written before the field existed carry no
    value; it is then derived from the id (an implicit account's id is
    :func:`implicit_account_id` of its domain), so a replay reads the same facts.
    """

    account_id: str
    domain: str
    name: str | None = None
    registered: bool = Field(
        default=False,
        description="registered through intake's accounts API (true) or only matched by "
        "company domain (false); absent on older events: derived from the id",
    )
    owner_rep_id: str | None = Field(
        default=None,
        description="never set: account owners are routing's (PUT /v1/routing/accounts/{key})",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_registered(cls, data: Any) -> Any:
        if isinstance(data, dict) and "registered" not in data:
            account_id, domain = data.get("account_id"), data.get("domain")
            if isinstance(account_id, str) and isinstance(domain, str):
                return {**data, "registered": account_id != implicit_account_id(domain)}
        return data


class HygieneFlags(_Value):
    free_mail: bool = False
    disposable: bool = False
    role_address: bool = False


class LeadCaptured(EventPayload):
    """A new lead: the first inquiry from a person we did not know."""

    event_type: ClassVar[str] = "lead.captured"
    producer: ClassVar[str] = "intake"
    # notes are a rep's free text about the person (as on InquiryReceived), answers the
    # person's own words (comments, budget, ...): personal.
    personal_fields: ClassVar[frozenset[str]] = frozenset({"contact", "notes", "answers"})
    summary: ClassVar[str] = "A new lead was created from its first inquiry."

    inquiry_id: uuid.UUID
    capture_method: CaptureMethod
    contact: Contact
    source: SourceInfo = SourceInfo()
    answers: QualificationAnswers = QualificationAnswers()
    consent: ConsentRecord | None = None
    account: AccountMatch | None = None
    flags: HygieneFlags = HygieneFlags()
    email_domain: str | None = None
    rating: Rating | None = None
    notes: str | None = None
    # Added by intake: the source system's id (e.g. an import's Prospect ID) and the
    # non-personal extra columns of an import (visits, time on site...) scoring may use.
    external_id: str | None = None
    # The system that id belongs to (an import's ``system``, e.g. "salesforce"): the same
    # id may exist in two systems. None when the caller did not say (the API).
    external_system: str | None = None
    attributes: dict[str, str] = {}
    historical: bool = Field(default=False, description=HISTORICAL_DOC)


class InquiryReceived(EventPayload):
    """A known lead raised a hand again (another form, another badge scan)."""

    event_type: ClassVar[str] = "inquiry.received"
    producer: ClassVar[str] = "intake"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"notes", "answers"})
    summary: ClassVar[str] = "An existing lead made another inquiry."

    inquiry_id: uuid.UUID
    capture_method: CaptureMethod
    source: SourceInfo = SourceInfo()
    answers: QualificationAnswers = QualificationAnswers()
    rating: Rating | None = None
    notes: str | None = None
    external_id: str | None = None  # added by intake, as on LeadCaptured
    external_system: str | None = None
    attributes: dict[str, str] = {}
    historical: bool = Field(default=False, description=HISTORICAL_DOC)


class LeadProfileUpdated(EventPayload):
    """Profile fields changed (newer inquiry, merge, correction); ``changes`` holds new values."""

    event_type: ClassVar[str] = "lead.profile_updated"
    producer: ClassVar[str] = "intake"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"contact", "answers"})
    summary: ClassVar[str] = "Profile fields of a lead changed."

    changed_fields: list[str]
    contact: Contact
    answers: QualificationAnswers = QualificationAnswers()
    account: AccountMatch | None = None
    reason: str | None = None


class LeadsMerged(EventPayload):
    """A probable duplicate was folded into this (surviving) lead."""

    event_type: ClassVar[str] = "leads.merged"
    producer: ClassVar[str] = "intake"
    summary: ClassVar[str] = "A duplicate lead was merged into the surviving lead."

    merged_lead_id: uuid.UUID
    match_reason: Literal["same_email", "same_phone", "same_name_and_domain", "manual"]
    field_sources: dict[str, str] = {}


# An activity property: text, a number (seconds on site) or a flag.
PropertyValue = bool | int | float | str


class ActivityRecorded(EventPayload):
    """An engagement signal: page view, download, webinar, email open/click, event visit.

    ``activity_type`` is a canonical name of ``leadflow.events.catalogue.activities`` (intake
    records aliases under their canonical name; events recorded before the catalogue may
    carry other spellings, which consumers resolve through the same catalogue)."""

    event_type: ClassVar[str] = "activity.recorded"
    producer: ClassVar[str] = "intake"
    # Where the person went and what they typed (a search, a chat) and the cookie that
    # followed them: personal. ``channel`` (from ``properties["channel"]``) is not, so
    # attribution keeps it after an erasure.
    personal_fields: ClassVar[frozenset[str]] = frozenset({"url", "properties", "anonymous_id"})
    summary: ClassVar[str] = "A lead did something scoring may count."

    activity_id: str
    activity_type: str
    url: str | None = None
    content_id: str | None = None
    campaign: str | None = None
    properties: dict[str, PropertyValue] = {}
    anonymous_id: str | None = None
    channel: str | None = None


class ConsentChanged(EventPayload):
    """Marketing e-mail consent given or withdrawn. It governs nurture e-mail only: sales
    may still work the lead (that is what ``DoNotContactChanged`` is for)."""

    event_type: ClassVar[str] = "consent.changed"
    producer: ClassVar[str] = "intake"
    summary: ClassVar[str] = "The lead's marketing e-mail consent changed (nurture e-mail only)."

    marketing_opt_in: bool
    text_version: str | None = None
    source: str | None = None


class DoNotContactChanged(EventPayload):
    """The person asked for no contact at all (or lifted that request): unlike marketing
    consent this stops sales too; scoring disqualifies the lead, and reinstates it when the
    request is lifted."""

    event_type: ClassVar[str] = "do_not_contact.changed"
    producer: ClassVar[str] = "intake"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"reason"})  # free text
    summary: ClassVar[str] = "The person asked for no contact at all, or lifted that request."

    do_not_contact: bool
    reason: str | None = None
    source: str | None = None


class LeadErased(EventPayload):
    """Personal data was crypto-shredded; consumers drop whatever personal data they hold."""

    event_type: ClassVar[str] = "lead.erased"
    producer: ClassVar[str] = "intake"
    summary: ClassVar[str] = "The lead's personal data was erased."

    reason: str | None = None
    requested_by: str | None = None


class HistoricalDealWon(EventPayload):
    """An imported lead that converted in the system it came from (e.g. ``Converted = 1``).

    Always ``historical``: it moves the lead to ``won`` at ``occurred_at`` (the file's close
    date, or the import time when the file has none) and nothing acts on it.
    """

    event_type: ClassVar[str] = "history.deal_won"
    producer: ClassVar[str] = "intake"
    summary: ClassVar[str] = "Imported history: the lead was won in the system it came from."

    import_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    historical: Literal[True] = Field(default=True, description=HISTORICAL_DOC)


class HistoricalDealLost(EventPayload):
    """An imported lead that did not convert: closed history, never an open lead to work."""

    event_type: ClassVar[str] = "history.deal_lost"
    producer: ClassVar[str] = "intake"
    summary: ClassVar[str] = "Imported history: the lead closed without a deal."

    import_id: str | None = None
    reason_code: str = "not_converted"
    historical: Literal[True] = Field(default=True, description=HISTORICAL_DOC)
