"""Whom a rep calls: the contact card routing keeps per lead, learnt from intake's events.

Routing decides on the non-personal snapshot scoring sends; a rep working the queue needs
the person too. Intake's ``lead.captured`` and ``lead.profile_updated`` carry the current
contact, so routing keeps a small card of it (``leads.contact``), and ``lead.erased`` blanks
it (the card is personal data: ``docs/events.md``). Pure functions here; the batch writes are
in ``store.ContactWrites``.
"""

from __future__ import annotations

from leadflow.events.catalogue.intake import Contact

CARD_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "phone", "company", "title")


def contact_card(contact: Contact) -> dict[str, str | None]:
    """The fields a rep needs to reach the person, with a display ``name``."""
    card: dict[str, str | None] = {name: getattr(contact, name) for name in CARD_FIELDS}
    parts = [p.strip() for p in (contact.first_name, contact.last_name) if p and p.strip()]
    card["name"] = " ".join(parts) or None
    return card
