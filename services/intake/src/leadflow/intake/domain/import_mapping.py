"""CSV imports: which column feeds which lead field (explicit mapping, or guessed from the
headers), and a row turned into an inquiry draft.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    QualificationAnswers,
)
from leadflow.intake.domain.contact import CONTACT_FIELDS
from leadflow.intake.domain.errors import FieldError
from leadflow.intake.domain.inquiry import InquiryDraft
from leadflow.intake.domain.reference import is_blank

# ---------------------------------------------------------------------------------------
# CSV imports: column mapping

IMPORT_TARGETS: frozenset[str] = frozenset(
    {f"contact.{f}" for f in CONTACT_FIELDS}
    | {f"source.{f}" for f in SourceInfo.model_fields}
    | {f"answers.{f}" for f in QualificationAnswers.model_fields}
    | {
        "consent.marketing_opt_in",
        "consent.do_not_email",
        "consent.text_version",
        "notes",
        "rating",
        "external_id",
        "ignore",
        # history (leadflow.intake.imports): the outcome and when things happened
        "outcome",
        "outcome.amount",
        "outcome.currency",
        "outcome.closed_at",
        "created_at",
    }
)

X_EDUCATION_MAPPING: Mapping[str, str] = {
    "Prospect ID": "external_id",
    "Lead Number": "attributes.lead_number",
    "Lead Origin": "source.utm_medium",
    "Lead Source": "source.utm_source",
    "Do Not Email": "consent.do_not_email",
    "Do Not Call": "attributes.do_not_call",
    "Converted": "outcome",  # history: 1 = won in X Education's own system, 0 = closed
    "Country": "contact.country",
    "City": "contact.city",
    "Specialization": "contact.department",
    "What is your current occupation": "contact.title",
    "What matters most to you in choosing a course": "answers.compelling_event",
    "How did you hear about X Education": "source.referrer",
    "Tags": "answers.comments",
    "Email": "contact.email",
    "email": "contact.email",
}
PRESET_MAPPINGS: Mapping[str, Mapping[str, str]] = {"x-education": X_EDUCATION_MAPPING}


def mapping_errors(mapping: Mapping[str, str]) -> list[FieldError]:
    """Refuse targets that name no field, before any row is read."""
    errors = []
    for column, target in mapping.items():
        if target in IMPORT_TARGETS or (target.startswith("attributes.") and len(target) > 11):
            continue
        errors.append(FieldError(f"mapping.{column}", f"unknown target field {target!r}"))
    return errors


def resolve_mapping(
    header: Sequence[str], mapping: Mapping[str, str], *, keep_unmapped: bool
) -> dict[str, str]:
    """Column → target for this file's header; unmapped columns become attributes when
    ``keep_unmapped`` (so nothing in a vendor export is silently lost)."""
    by_folded = {k.strip().casefold(): v for k, v in mapping.items()}
    resolved: dict[str, str] = {}
    for column in header:
        target = by_folded.get(column.strip().casefold())
        if target is None and keep_unmapped:
            slug = re.sub(r"[^a-z0-9]+", "_", column.strip().casefold()).strip("_")
            target = f"attributes.{slug}" if slug else "ignore"
        if target and target != "ignore":
            resolved[column] = target
    return resolved


def map_row(
    row: Mapping[str, str | None], columns: Mapping[str, str], occurred_at: datetime | None = None
) -> InquiryDraft:
    """One CSV row as an ``InquiryDraft``; placeholders such as ``Select`` read as blank."""
    contact: dict[str, Any] = {}
    source: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    consent: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    top: dict[str, Any] = {}
    for column, target in columns.items():
        value = row.get(column)
        if is_blank(value):
            continue
        group, _, name = target.partition(".")
        if group == "contact":
            contact[name] = value
        elif group == "source":
            source[name] = value
        elif group == "answers":
            answers[name] = value
        elif group == "consent":
            consent[name] = value
        elif group == "attributes":
            attributes[name] = str(value)
        elif group in ("outcome", "created_at"):
            continue  # history: read by ``imports.history_of`` / ``created_at_of``
        else:
            top[group] = value
    return InquiryDraft(
        contact=contact,
        source=source,
        answers=answers,
        consent=consent or None,
        notes=top.get("notes"),
        rating=top.get("rating"),
        external_id=top.get("external_id"),
        attributes=attributes,
        occurred_at=occurred_at,
    )
