"""A whole contact cleaned at once: every field normalised, the problems gathered per field,
the company domain and the hygiene flags derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadflow.events.catalogue.intake import (
    Contact,
    HygieneFlags,
)
from leadflow.intake.domain.errors import FieldError, HygieneError
from leadflow.intake.domain.normalisation import (
    company_domain,
    email_domain,
    hygiene_flags,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_website,
)
from leadflow.intake.domain.reference import clean_text, is_blank

# ---------------------------------------------------------------------------------------
# A whole contact


# The single-valued fields a form, an import or a merge sets one by one (the secondary
# addresses are the merge's business: see ``merge_profiles``).
CONTACT_FIELDS: tuple[str, ...] = tuple(f for f in Contact.model_fields if f != "secondary_emails")


@dataclass(frozen=True)
class CleanContact:
    contact: Contact
    flags: HygieneFlags
    email_domain: str | None
    company_domain: str | None


def clean_contact(
    raw: Mapping[str, Any],
    *,
    require_email: bool = True,
    default_region: str | None = None,
    prefix: str = "contact",
) -> CleanContact:
    """Validate and normalise contact fields; raises ``HygieneError`` naming every bad field."""
    errors: list[FieldError] = []
    values: dict[str, str | None] = {}

    email = raw.get("email")
    if is_blank(email):
        if require_email:
            errors.append(FieldError(f"{prefix}.email", "email is required"))
        values["email"] = None
    else:
        try:
            values["email"] = normalize_email(str(email))
        except ValueError as exc:
            errors.append(FieldError(f"{prefix}.email", str(exc)))

    try:
        values["country"] = normalize_country(
            None if raw.get("country") is None else str(raw.get("country"))
        )
    except ValueError as exc:
        errors.append(FieldError(f"{prefix}.country", str(exc)))
        values["country"] = None

    phone = raw.get("phone")
    if is_blank(phone):
        values["phone"] = None
    else:
        try:
            values["phone"] = normalize_phone(str(phone), values.get("country") or default_region)
        except ValueError as exc:
            errors.append(FieldError(f"{prefix}.phone", str(exc)))

    try:
        values["website"] = normalize_website(raw.get("website"))
    except ValueError as exc:
        errors.append(FieldError(f"{prefix}.website", str(exc)))

    values["first_name"] = normalize_name(raw.get("first_name"))
    values["last_name"] = normalize_name(raw.get("last_name"))
    values["city"] = normalize_name(raw.get("city"))
    for name in ("title", "department", "company", "industry"):
        values[name] = clean_text(raw.get(name), max_length=200)

    if errors:
        raise HygieneError(errors)
    contact = Contact(**values)
    return CleanContact(
        contact=contact,
        flags=hygiene_flags(contact.email),
        email_domain=email_domain(contact.email),
        company_domain=company_domain(contact.email, contact.website),
    )
