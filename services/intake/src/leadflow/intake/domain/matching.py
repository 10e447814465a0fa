"""Who an inquiry is: identity resolution against the leads it may be (same e-mail, phone,
name at the company domain), and the company account it belongs to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from leadflow.events.catalogue.intake import (
    IMPLICIT_ACCOUNT_NAMESPACE,
    AccountMatch,
    implicit_account_id,
)
from leadflow.intake.domain.contact import CleanContact

# ---------------------------------------------------------------------------------------
# Identity resolution

MatchReason = Literal["same_email", "same_phone", "same_name_and_domain"]


@dataclass(frozen=True)
class KnownLead:
    """What identity resolution needs to know about an existing lead."""

    lead_id: uuid.UUID
    emails: frozenset[str] = frozenset()
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_domain: str | None = None


@dataclass(frozen=True)
class IdentityDecision:
    """``new``: a lead we never saw; ``same``: the same person (another inquiry);
    ``probable_duplicate``: a different record that is probably the same person, to be
    captured and then merged into ``lead_id``."""

    kind: Literal["new", "same", "probable_duplicate"]
    lead_id: uuid.UUID | None = None
    reason: MatchReason | None = None


def name_key(first: str | None, last: str | None) -> str | None:
    """The comparable form of a person's name, for duplicate detection."""
    key = _name_key(first, last)
    return None if key is None else f"{key[0]}|{key[1]}"


def _name_key(first: str | None, last: str | None) -> tuple[str, str] | None:
    if not first or not last:
        return None
    return (" ".join(first.casefold().split()), " ".join(last.casefold().split()))


def resolve_identity(clean: CleanContact, candidates: Iterable[KnownLead]) -> IdentityDecision:
    """Same normalised email beats same phone beats same name at the same company domain.

    Candidates come oldest first; among equals the oldest lead wins so that duplicates fold
    into the record everyone has been working with.
    """
    contact = clean.contact
    by_phone: KnownLead | None = None
    by_name: KnownLead | None = None
    name = _name_key(contact.first_name, contact.last_name)
    for known in candidates:
        if contact.email and contact.email in known.emails:
            return IdentityDecision("same", known.lead_id, "same_email")
        if by_phone is None and contact.phone and contact.phone == known.phone:
            by_phone = known
        if (
            by_name is None
            and name is not None
            and clean.company_domain
            and clean.company_domain == known.company_domain
            and name == _name_key(known.first_name, known.last_name)
        ):
            by_name = known
    if by_phone is not None:
        return IdentityDecision("probable_duplicate", by_phone.lead_id, "same_phone")
    if by_name is not None:
        return IdentityDecision("probable_duplicate", by_name.lead_id, "same_name_and_domain")
    return IdentityDecision("new")


# ---------------------------------------------------------------------------------------
# Accounts


@dataclass(frozen=True)
class Account:
    """A registered company account. Who owns it is routing's business (routing assigns
    by it, ``PUT /v1/routing/accounts/{key}``); intake only matches leads to it.
    ``owner_rep_id`` is what an older intake stored, never forwarded."""

    account_id: str
    domain: str
    name: str | None = None
    owner_rep_id: str | None = None


# The implicit id (uuid5 of the domain) lives in the catalogue: consumers tell a registered
# account from a domain match by it on events older than ``AccountMatch.registered``.
ACCOUNT_NAMESPACE = IMPLICIT_ACCOUNT_NAMESPACE


def account_domains(domain: str) -> list[str]:
    """``eu.sales.acme.com`` → its candidate account domains, most specific first."""
    parts = domain.lower().split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


def match_account(clean: CleanContact, known: Mapping[str, Account]) -> AccountMatch | None:
    """Match on the company domain (never on free-mail); unknown companies get an implicit
    account keyed by their domain so their leads still group together, marked
    ``registered=False`` so nobody mistakes the grouping for a known account."""
    domain = clean.company_domain
    if not domain:
        return None
    for candidate in account_domains(domain):
        account = known.get(candidate)
        if account is not None:
            return AccountMatch(
                account_id=account.account_id,
                domain=account.domain,
                name=account.name,
                registered=True,
            )
    return AccountMatch(
        account_id=implicit_account_id(domain),
        domain=domain,
        name=clean.contact.company,
        registered=False,
    )
