"""A lead's row as intake holds it: the mutable ``LeadState`` a decision works on, the
identity locks, reads by id and e-mail, consent and do-not-contact changes, erasure.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.events.shredding import shred
from leadflow.events.sql import Tx
from leadflow.intake.domain import (
    AccountMatch,
    ConsentRecord,
    Contact,
    HygieneFlags,
    KnownLead,
    Profile,
)

# ---------------------------------------------------------------------------------------
# Leads


@dataclass
class LeadState:
    """A lead as intake holds it while deciding (mutable within one transaction)."""

    lead_id: uuid.UUID
    contact: Contact
    field_times: dict[str, datetime] = field(default_factory=dict)
    consent: ConsentRecord | None = None
    account: AccountMatch | None = None
    flags: HygieneFlags = field(default_factory=HygieneFlags)
    company_domain: str | None = None
    emails: set[str] = field(default_factory=set)
    inquiries: int = 1
    merged_into: uuid.UUID | None = None
    created_at: datetime | None = None
    stage: str = "inquiry"
    new_emails: set[str] = field(default_factory=set)
    dirty: bool = False

    def known(self) -> KnownLead:
        return KnownLead(
            self.lead_id,
            emails=frozenset(self.emails),
            phone=self.contact.phone,
            first_name=self.contact.first_name,
            last_name=self.contact.last_name,
            company_domain=self.company_domain,
        )

    def profile(self) -> Profile:
        return Profile(self.lead_id, self.contact, dict(self.field_times), self.consent)


def _times(raw: dict[str, str] | None) -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in (raw or {}).items()}


def _state(row: Any) -> LeadState:
    return LeadState(
        lead_id=row.lead_id,
        contact=Contact(**(row.contact or {})),
        field_times=_times(row.field_times),
        consent=ConsentRecord(**row.consent) if row.consent else None,
        account=AccountMatch(**row.account) if row.account else None,
        flags=HygieneFlags(**(row.flags or {})),
        company_domain=row.company_domain,
        emails=set(row.emails or ()),
        inquiries=row.inquiries,
        merged_into=row.merged_into,
        created_at=row.created_at,
        stage=row.stage,
    )


_LEAD_COLUMNS = (
    "l.lead_id, l.contact, l.field_times, l.consent, l.account, l.flags, l.company_domain, "
    "l.inquiries, l.merged_into, l.created_at, l.stage, l.erased_at, l.updated_at, "
    "l.do_not_contact, "
    "ARRAY(SELECT e.email FROM lead_emails e WHERE e.lead_id = l.lead_id ORDER BY e.email) "
    "AS emails"
)


_LOCK_IDENTITIES = (
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) "
    "WITH ORDINALITY AS t(k, n) ORDER BY n"
)


def _lock_ids(keys: Iterable[str]) -> list[int]:
    return sorted(
        {
            int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big", signed=True)
            for k in keys
        }
    )


async def lock_identities(tx: Tx, keys: Iterable[str]) -> None:
    """Serialise concurrent transactions that may be about the same person (same email,
    phone or name at a company domain) until commit, so a probable duplicate created by one
    is seen, and merged, by the other instead of both creating a lead.

    Locks are taken in one statement, in a fixed order, so these waits cannot deadlock. It
    must stay a statement of its own: a read in the same statement would use a snapshot
    taken before the wait, and miss the lead the previous holder just committed.
    """
    ids = _lock_ids(keys)
    if ids:
        await tx.execute(_LOCK_IDENTITIES, ids=ids)


async def get_lead(tx: Tx, lead_id: uuid.UUID) -> Any | None:
    return await tx.fetchrow(
        f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE l.lead_id = :id", id=lead_id
    )


async def find_lead_by_email(tx: Tx, email: str) -> Any | None:
    return await tx.fetchrow(
        f"SELECT {_LEAD_COLUMNS} FROM leads l JOIN lead_emails m ON m.lead_id = l.lead_id "
        "WHERE m.email = :email",
        email=email,
    )


async def lead_ids_by_emails(tx: Tx, emails: Sequence[str]) -> dict[str, uuid.UUID]:
    if not emails:
        return {}
    rows = await tx.fetch(
        "SELECT email, lead_id FROM lead_emails WHERE email = ANY(CAST(:e AS text[]))",
        e=list(set(emails)),
    )
    return {r[0]: r[1] for r in rows}


async def live_lead_ids(tx: Tx, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Each existing, unerased lead id mapped to the lead it lives on (merges followed)."""
    if not ids:
        return {}
    rows = await tx.fetch(
        "SELECT lead_id, coalesce(merged_into, lead_id) FROM leads "
        "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND erased_at IS NULL",
        ids=list(set(ids)),
    )
    return {r[0]: r[1] for r in rows}


async def erase_lead_rows(tx: Tx, lead_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Shred the keys and blank every personal column intake keeps about these leads: the
    contact, e-mails, and the activities' e-mail, anonymous id, URL and properties (the rows
    stay, keyed by activity id, so a replayed activity is still a duplicate)."""
    ids = list(lead_ids)
    await shred(tx, ids, now)
    await tx.execute(
        "UPDATE leads SET email = NULL, phone = NULL, name_key = NULL, "
        "contact = '{}'::jsonb, field_times = '{}'::jsonb, erased_at = :now, "
        "updated_at = :now WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
        ids=ids,
        now=now,
    )
    await tx.execute("DELETE FROM lead_emails WHERE lead_id = ANY(CAST(:ids AS uuid[]))", ids=ids)
    # Activities still waiting under one of the person's anonymous ids go with them.
    await tx.execute(
        "UPDATE activities SET email = NULL, anonymous_id = NULL, "
        "payload = jsonb_build_object('type', payload->'type') "
        "WHERE lead_id = ANY(CAST(:ids AS uuid[])) OR anonymous_id IN "
        "(SELECT anonymous_id FROM anonymous_ids WHERE lead_id = ANY(CAST(:ids AS uuid[])))",
        ids=ids,
    )
    await tx.execute("DELETE FROM anonymous_ids WHERE lead_id = ANY(CAST(:ids AS uuid[]))", ids=ids)


async def merged_into(tx: Tx, lead_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await tx.fetch("SELECT lead_id FROM leads WHERE merged_into = :id", id=lead_id)
    return [r[0] for r in rows]


async def set_consent(tx: Tx, lead_id: uuid.UUID, consent: ConsentRecord, now: datetime) -> None:
    await tx.execute(
        "UPDATE leads SET consent = CAST(:c AS jsonb), updated_at = :now WHERE lead_id = :id",
        c=consent.model_dump_json(),
        now=now,
        id=lead_id,
    )


async def set_do_not_contact(
    tx: Tx, lead_id: uuid.UUID, do_not_contact: bool, now: datetime
) -> None:
    await tx.execute(
        "UPDATE leads SET do_not_contact = :d, updated_at = :now WHERE lead_id = :id",
        d=do_not_contact,
        now=now,
        id=lead_id,
    )
