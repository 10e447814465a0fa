"""A lead's profile over time: updates by recency, merges of duplicates (the better e-mail
stays primary), and marketing consent, never inferred.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadflow.events.catalogue.intake import (
    ConsentRecord,
    Contact,
)
from leadflow.intake.domain.contact import CONTACT_FIELDS
from leadflow.intake.domain.normalisation import hygiene_flags

# ---------------------------------------------------------------------------------------
# Profiles: updates by recency, merges, consent


@dataclass(frozen=True)
class Profile:
    """A lead's current contact data with the time each field was last set."""

    lead_id: uuid.UUID
    contact: Contact
    field_times: Mapping[str, datetime] = field(default_factory=dict)
    consent: ConsentRecord | None = None


def apply_contact(profile: Profile, incoming: Contact, at: datetime) -> tuple[Profile, list[str]]:
    """Take each non-empty incoming field that is newer than what we hold.

    A badge scan uploaded hours late must not overwrite a correction made in between, so
    the comparison is on when the value was observed, not when it arrived.
    """
    current = profile.contact.model_dump()
    times = dict(profile.field_times)
    changed: list[str] = []
    for name in CONTACT_FIELDS:
        value = getattr(incoming, name)
        if value is None or value == current.get(name):
            continue
        held_at = times.get(name)
        if current.get(name) is not None and held_at is not None and held_at > at:
            continue
        if name == "email" and current.get(name) is not None:
            # Another of the person's addresses (a known alias): it becomes the primary only
            # if it is as good a way to reach them; either way the other one is kept.
            before = list(current.get("secondary_emails") or [])
            primary = current[name]
            worse = email_quality(value) < email_quality(primary)
            if worse:
                current["secondary_emails"] = list(dict.fromkeys([*before, value]))
            else:
                others = [e for e in before if e != value]
                current["secondary_emails"] = list(dict.fromkeys([*others, primary]))
            if current["secondary_emails"] != before:
                changed.append("secondary_emails")
            if worse:
                continue
        current[name] = value
        times[name] = at
        changed.append(name)
    return Profile(profile.lead_id, Contact(**current), times, profile.consent), changed


@dataclass(frozen=True)
class MergeOutcome:
    contact: Contact
    field_times: Mapping[str, datetime]
    field_sources: dict[str, str]
    consent: ConsentRecord | None
    consent_changed: bool


def _consent_rank(record: ConsentRecord) -> tuple[bool, datetime]:
    """What a person said outranks a box left unticked; then the later statement wins."""
    return record.stated, record.given_at or datetime.min.replace(tzinfo=UTC)


def merged_consent(
    survivor: ConsentRecord | None, other: ConsentRecord | None
) -> ConsentRecord | None:
    """Marketing consent after a merge: the person's own latest answer, never an inference.

    Unknown (no record) is not an answer, so it neither narrows an opt-in nor widens an
    opt-out; a box left unticked never overrides a stated answer; between two stated
    answers the later one (``given_at``) wins, and a tie keeps the survivor's.
    """
    if other is None:
        return survivor
    if survivor is None:
        return other
    return other if _consent_rank(other) > _consent_rank(survivor) else survivor


def email_quality(email: str | None) -> int:
    """How good an address is as the one to reach a lead at: a business address (2) over a
    role or private web-mail address (1) over a disposable one (0)."""
    if not email:
        return -1
    flags = hygiene_flags(email)
    if flags.disposable:
        return 0
    if flags.free_mail or flags.role_address:
        return 1
    return 2


def _primary_email(a: str | None, ta: datetime | None, b: str | None, tb: datetime | None) -> bool:
    """Whether ``b`` (the other record's address) becomes the primary: the better address
    wins (a work e-mail is not replaced by a private one); between equals, the newer."""
    if b is None:
        return False
    if a is None:
        return True
    qa, qb = email_quality(a), email_quality(b)
    if qa != qb:
        return qb > qa
    return tb is not None and (ta is None or tb > ta)


def merge_profiles(survivor: Profile, other: Profile) -> MergeOutcome:
    """Fold ``other`` into ``survivor``: per field the most recently observed value wins
    (ties keep the survivor's), except the e-mail address, where the better one stays
    primary and the other becomes secondary; consent by :func:`merged_consent`."""
    a, b = survivor.contact.model_dump(), other.contact.model_dump()
    merged: dict[str, Any] = {}
    times: dict[str, datetime] = {}
    sources: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        va, vb = a.get(name), b.get(name)
        ta, tb = survivor.field_times.get(name), other.field_times.get(name)
        if name == "email":
            take_other = _primary_email(va, ta, vb, tb)
        else:
            take_other = vb is not None and (
                va is None or (tb is not None and (ta is None or tb > ta))
            )
        if take_other:
            merged[name] = vb
            if tb is not None:
                times[name] = tb
            sources[name] = str(other.lead_id)
        else:
            merged[name] = va
            if ta is not None:
                times[name] = ta
            if va is not None:
                sources[name] = str(survivor.lead_id)
    addresses = [a.get("email"), *a.get("secondary_emails", ()), b.get("email"),
                 *b.get("secondary_emails", ())]  # fmt: skip
    merged["secondary_emails"] = list(
        dict.fromkeys(e for e in addresses if e and e != merged.get("email"))
    )
    consent = merged_consent(survivor.consent, other.consent)
    return MergeOutcome(Contact(**merged), times, sources, consent, consent != survivor.consent)


def consent_change(
    current: ConsentRecord | None, incoming: ConsentRecord | None
) -> ConsentRecord | None:
    """The consent to record when an inquiry states one, or ``None`` if nothing changes.

    An inquiry without an answer (no record, or a box left unticked on a lead we already
    hold a record for) changes nothing: "unknown" is never read as "no"."""
    if incoming is None:
        return None
    if current is not None and not incoming.stated:
        return None
    if current is not None and current.marketing_opt_in == incoming.marketing_opt_in:
        return None
    # A first explicit "no" is recorded too: it is what later proves we asked.
    return incoming
