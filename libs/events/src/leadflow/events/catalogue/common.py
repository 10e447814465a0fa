"""Value objects shared by several producers' payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SourceInfo(_Value):
    """Where an inquiry came from: what marketing attributes revenue to."""

    channel: str | None = None  # web_form, api, badge_scan, import, ...
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    referrer: str | None = None
    form_id: str | None = None
    event_id: str | None = None  # a trade show or webinar, not an event-store event
    device_id: str | None = None
    import_id: str | None = None


class LeadSnapshot(_Value):
    """The non-personal profile downstream services decide on (routing rules, SLA segments).

    Carries no personal data (no name, email or phone), so it can be repeated in other
    producers' events without escaping erasure.
    """

    company: str | None = None
    title: str | None = None
    seniority: str | None = None
    department: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None  # ISO-3166 alpha-2
    region: str | None = None
    product_interest: str | None = None
    email_domain: str | None = None
    account_id: str | None = None
    account_domain: str | None = None
    channel: str | None = None
    campaign: str | None = None
    grade: str | None = None
    matrix_cell: str | None = None
