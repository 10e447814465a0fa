"""The channel-independent inquiry: what the API, forms, scans and imports each turn their
input into before identity resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    ConsentRecord,
    QualificationAnswers,
    Rating,
)
from leadflow.intake.domain.contact import CleanContact, clean_contact
from leadflow.intake.domain.errors import FieldError, HygieneError
from leadflow.intake.domain.reference import clean_text, is_blank

# ---------------------------------------------------------------------------------------
# The channel-independent inquiry


@dataclass(frozen=True)
class InquiryDraft:
    """Raw input from any channel (API, form, scan, import row), before hygiene."""

    contact: Mapping[str, Any]
    source: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Any] = field(default_factory=dict)
    consent: Mapping[str, Any] | None = None
    notes: str | None = None
    rating: str | None = None
    external_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class CleanInquiry:
    clean: CleanContact
    source: SourceInfo
    answers: QualificationAnswers
    consent: ConsentRecord | None
    notes: str | None
    rating: Rating | None
    external_id: str | None
    attributes: dict[str, str]
    occurred_at: datetime | None
    external_system: str | None = None  # an import's system; None from the API


_TRUE = frozenset({"true", "yes", "y", "1", "on", "checked", "opt-in", "optin"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "opt-out", "optout"})


def parse_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if is_blank(value):
        return None
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes/no")


def clean_consent(
    raw: Mapping[str, Any] | None, *, default_source: str | None, prefix: str = "consent"
) -> ConsentRecord | None:
    """A consent record from ``marketing_opt_in`` or an export's ``do_not_email`` flag.

    ``do_not_email = no`` says nothing about opt-in, so it yields no record at all.
    """
    if not raw:
        return None
    opt_in_raw = raw.get("marketing_opt_in")
    dne_raw = raw.get("do_not_email")
    try:
        opt_in = parse_bool(opt_in_raw)
    except ValueError as exc:
        raise HygieneError([FieldError(f"{prefix}.marketing_opt_in", str(exc))]) from None
    try:
        do_not_email = parse_bool(dne_raw)
    except ValueError as exc:
        raise HygieneError([FieldError(f"{prefix}.do_not_email", str(exc))]) from None
    if do_not_email:
        opt_in = False
    if opt_in is None:
        return None
    given_at = raw.get("given_at")
    return ConsentRecord(
        stated=raw.get("stated", True) is not False,
        marketing_opt_in=opt_in,
        text_version=clean_text(raw.get("text_version"), max_length=100),
        given_at=given_at if isinstance(given_at, datetime) else None,
        source=clean_text(raw.get("source"), max_length=100) or default_source,
    )


def clean_inquiry(
    draft: InquiryDraft,
    *,
    channel: str,
    require_email: bool = True,
    default_region: str | None = None,
) -> CleanInquiry:
    """Hygiene for a whole inquiry; every bad field is reported at once."""
    errors: list[FieldError] = []
    clean: CleanContact | None = None
    try:
        clean = clean_contact(
            draft.contact, require_email=require_email, default_region=default_region
        )
    except HygieneError as exc:
        errors.extend(exc.errors)
    consent: ConsentRecord | None = None
    try:
        consent = clean_consent(draft.consent, default_source=channel)
    except HygieneError as exc:
        errors.extend(exc.errors)
    rating: Rating | None = None
    if not is_blank(draft.rating):
        value = str(draft.rating).strip().lower()
        if value in ("hot", "warm", "cold"):
            rating = value  # type: ignore[assignment]
        else:
            errors.append(FieldError("rating", "rating must be hot, warm or cold"))
    if errors or clean is None:
        raise HygieneError(errors)
    source = {k: clean_text(v, max_length=300) for k, v in draft.source.items()}
    source.setdefault("channel", channel)
    if source.get("channel") is None:
        source["channel"] = channel
    answers = {k: clean_text(v, max_length=2000) for k, v in draft.answers.items()}
    return CleanInquiry(
        clean=clean,
        source=SourceInfo(**{k: v for k, v in source.items() if k in SourceInfo.model_fields}),
        answers=QualificationAnswers(
            **{k: v for k, v in answers.items() if k in QualificationAnswers.model_fields}
        ),
        consent=consent,
        notes=clean_text(draft.notes, max_length=4000),
        rating=rating,
        external_id=clean_text(draft.external_id, max_length=200),
        attributes={
            k: v
            for k, v in ((k, clean_text(v)) for k, v in draft.attributes.items())
            if v is not None
        },
        occurred_at=draft.occurred_at,
    )
