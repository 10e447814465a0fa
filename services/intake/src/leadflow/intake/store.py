"""SQL for intake's own tables (unqualified names: the engine's search_path is the schema).

Multi-row statements (``unnest`` of arrays) everywhere a request touches many rows, so a
batch of scans, activities or import rows costs a handful of round trips.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.db import DriverSql, json_text
from leadflow.events.shredding import shred
from leadflow.intake.domain import (
    Account,
    AccountMatch,
    ConsentRecord,
    Contact,
    HygieneFlags,
    KnownLead,
    Profile,
    name_key,
)
from leadflow.intake.security import ApiKey

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


_LOCK_IDENTITIES = text(
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


async def lock_identities(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise concurrent transactions that may be about the same person (same email,
    phone or name at a company domain) until commit, so a probable duplicate created by one
    is seen, and merged, by the other instead of both creating a lead.

    Locks are taken in one statement, in a fixed order, so these waits cannot deadlock. It
    must stay a statement of its own: a read in the same statement would use a snapshot
    taken before the wait, and miss the lead the previous holder just committed.
    """
    ids = _lock_ids(keys)
    if ids:
        await conn.execute(_LOCK_IDENTITIES, {"ids": ids})


# Idempotency keys claimed first (the first UNION branch reads the insert to its end), then
# the identity locks: every transaction claims before it locks, and claims in (scope, key)
# order, so two batches retrying the same requests wait for each other, never in a cycle.
_CLAIM_AND_LOCK = DriverSql(
    """
    WITH claimed AS (
        INSERT INTO idempotency_keys (scope, key, request_hash)
        SELECT * FROM unnest(CAST(:s AS text[]), CAST(:k AS text[]), CAST(:h AS text[]))
        ON CONFLICT DO NOTHING
        RETURNING scope, key
    )
    SELECT scope, key FROM claimed
    UNION ALL
    SELECT NULL, NULL FROM (
        SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[]))
            WITH ORDINALITY AS t(k, n) ORDER BY n
    ) AS locks
    """
)


async def claim_and_lock(
    conn: AsyncConnection, claims: Sequence[tuple[str, str, str]], identities: Iterable[str]
) -> set[tuple[str, str]]:
    """Claim idempotency keys ``(scope, key, request_hash)`` and take the identity locks
    (see ``lock_identities``) in one statement; returns the (scope, key) claimed here (the
    others were claimed before, by an earlier request)."""
    ordered = sorted(claims)
    rows = await _CLAIM_AND_LOCK.fetch(
        conn,
        {
            "s": [c[0] for c in ordered],
            "k": [c[1] for c in ordered],
            "h": [c[2] for c in ordered],
            "ids": _lock_ids(identities),
        },
    )
    return {(r[0], r[1]) for r in rows if r[0] is not None}


_STORED_RESPONSES = text(
    "SELECT scope, key, request_hash, response FROM idempotency_keys "
    "WHERE (scope, key) IN (SELECT * FROM unnest(CAST(:s AS text[]), CAST(:k AS text[])))"
)


async def stored_responses(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, Any]]:
    """(request_hash, response) of idempotency keys claimed by earlier requests."""
    rows = await conn.execute(
        _STORED_RESPONSES, {"s": [k[0] for k in keys], "k": [k[1] for k in keys]}
    )
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


# Candidates (kind 0, oldest first: identity resolution prefers the oldest) and the
# registered accounts of the incoming company domains (kind 1) in one round trip.
# Each kind of match is its own index lookup, and the leads are then read by key: no plan
# can scan the table, even while its statistics are stale (a new deployment's first minute,
# when the planner believes few leads are live and an OR of the matches read every lead
# once per lead). Merged and erased leads are dropped here rather than in SQL for the
# same reason.
_CANDIDATES_AND_ACCOUNTS = DriverSql(
    f"""
    WITH matched AS MATERIALIZED (
        SELECT lead_id FROM lead_emails WHERE email = ANY(CAST(:emails AS text[]))
        UNION
        SELECT lead_id FROM leads WHERE phone = ANY(CAST(:phones AS text[]))
        UNION
        SELECT lead_id FROM leads WHERE company_domain = ANY(CAST(:domains AS text[]))
                                    AND name_key = ANY(CAST(:names AS text[]))
    )
    SELECT 0 AS kind, {_LEAD_COLUMNS},
           NULL::text AS account_domain, NULL::text AS account_id,
           NULL::text AS account_name, NULL::text AS account_owner
    FROM leads l WHERE l.lead_id = ANY(ARRAY(SELECT lead_id FROM matched))
    UNION ALL
    SELECT 1, NULL::uuid, NULL::jsonb, NULL::jsonb, NULL::jsonb, NULL::jsonb, NULL::jsonb,
           NULL::text, NULL::integer, NULL::uuid, NULL::timestamptz, NULL::text,
           NULL::timestamptz, NULL::timestamptz, NULL::boolean, NULL::text[],
           a.domain, a.account_id, a.name, a.owner_rep_id
    FROM accounts a WHERE a.domain = ANY(CAST(:accounts AS text[]))
    ORDER BY kind, created_at, lead_id
    """
)


async def fetch_candidates_and_accounts(
    conn: AsyncConnection,
    emails: Iterable[str],
    phones: Iterable[str],
    domains: Iterable[str],
    names: Iterable[str],
    account_domains: Iterable[str],
) -> tuple[list[LeadState], dict[str, Account]]:
    """Live leads that could be the same person as any of the incoming contacts, oldest
    first, and the registered accounts of these domains (one statement)."""
    rows = await _CANDIDATES_AND_ACCOUNTS.fetch(
        conn,
        {
            "emails": list(set(emails)),
            "phones": list(set(phones)),
            "domains": list(set(domains)),
            "names": list(set(names)),
            "accounts": list(set(account_domains)),
        },
    )
    leads: list[LeadState] = []
    accounts: dict[str, Account] = {}
    for r in rows:
        if r.kind == 0:
            if r.merged_into is None and r.erased_at is None:  # live leads only
                leads.append(_state(r))
        else:
            accounts[r.account_domain] = Account(
                r.account_id, r.account_domain, r.account_name, r.account_owner
            )
    return leads, accounts


# Everything a batch of inquiries writes besides its events, in ONE statement (the
# sub-statements touch different tables, so none needs to see another's rows):
# - new and changed leads (upsert) and their new email aliases. The alias insert is plain:
#   a concurrent request creating the same email loses with a unique violation and is
#   retried, then finds the lead this one created;
# - anonymous ids that identified themselves;
# - anonymous activity of people who just identified themselves, claimed for their lead
#   (returned as kind 'a' to be recorded as events);
# - the answers to requests that carried an Idempotency-Key (claimed earlier in the
#   transaction), for their replays;
# - the leads' crypto-shredding keys, created where missing (returned as kind 'k'; an
#   erased lead keeps a tombstone row without a key).
_SAVE_BATCH = DriverSql(
    """
    WITH saved AS (
        INSERT INTO leads (lead_id, email, phone, name_key, company_domain, contact,
                           field_times, consent, account, flags, merged_into,
                           inquiries, created_at, updated_at)
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:emails AS text[]), CAST(:phones AS text[]),
            CAST(:names AS text[]), CAST(:domains AS text[]),
            CAST(:contacts AS jsonb[]), CAST(:times AS jsonb[]),
            CAST(:consents AS jsonb[]), CAST(:accounts AS jsonb[]),
            CAST(:flags AS jsonb[]), CAST(:merged AS uuid[]),
            CAST(:inquiries AS integer[]), CAST(:created AS timestamptz[]),
            CAST(:updated AS timestamptz[]))
        ON CONFLICT (lead_id) DO UPDATE SET
            email = EXCLUDED.email, phone = EXCLUDED.phone,
            name_key = EXCLUDED.name_key, company_domain = EXCLUDED.company_domain,
            contact = EXCLUDED.contact, field_times = EXCLUDED.field_times,
            consent = EXCLUDED.consent, account = EXCLUDED.account,
            flags = EXCLUDED.flags, merged_into = EXCLUDED.merged_into,
            inquiries = EXCLUDED.inquiries, updated_at = EXCLUDED.updated_at
        RETURNING 1
    ), aliases AS (
        INSERT INTO lead_emails (email, lead_id)
        SELECT * FROM unnest(CAST(:alias_emails AS text[]), CAST(:alias_leads AS uuid[]))
        RETURNING 1
    ), linked AS (
        INSERT INTO anonymous_ids (anonymous_id, lead_id)
        SELECT * FROM unnest(CAST(:anon AS text[]), CAST(:anon_leads AS uuid[]))
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), identified AS (
        SELECT * FROM unnest(CAST(:id_emails AS text[]), CAST(:id_email_leads AS uuid[]))
            AS e(email, lead_id)
    ), identified_anon AS (
        SELECT * FROM unnest(CAST(:anon AS text[]), CAST(:anon_leads AS uuid[]))
            AS a(anonymous_id, lead_id)
    ), matched AS (
        SELECT a.activity_id, coalesce(i.lead_id, n.lead_id) AS lead_id
        FROM activities a
        LEFT JOIN identified i ON a.email = i.email
        LEFT JOIN identified_anon n ON a.anonymous_id = n.anonymous_id
        WHERE a.lead_id IS NULL AND (i.lead_id IS NOT NULL OR n.lead_id IS NOT NULL)
        FOR UPDATE OF a SKIP LOCKED
    ), claimed AS (
        UPDATE activities t SET lead_id = m.lead_id, attached_at = :now
        FROM matched m WHERE t.activity_id = m.activity_id
        RETURNING t.lead_id, t.payload, t.occurred_at
    ), answered AS (
        UPDATE idempotency_keys t SET status = 202, response = CAST(v.r AS jsonb)
        FROM unnest(CAST(:idem_scopes AS text[]), CAST(:idem_keys AS text[]),
                    CAST(:idem_responses AS text[])) AS v(s, k, r)
        WHERE t.scope = v.s AND t.key = v.k
        RETURNING 1
    ), wanted AS (
        SELECT * FROM unnest(CAST(:key_leads AS uuid[]), CAST(:new_keys AS bytea[]))
            AS w(lead_id, key)
    ), created_keys AS (
        INSERT INTO lead_keys (lead_id, key)
        SELECT lead_id, key FROM wanted
        ON CONFLICT (lead_id) DO NOTHING
        RETURNING lead_id, key
    )
    SELECT 'k' AS kind, lead_id, key, NULL::jsonb AS payload, NULL::timestamptz AS occurred_at
    FROM created_keys
    UNION ALL
    SELECT 'k', k.lead_id, k.key, NULL, NULL FROM lead_keys k JOIN wanted w USING (lead_id)
    UNION ALL
    SELECT 'a', lead_id, NULL, payload, occurred_at FROM claimed
    """
)


@dataclass
class SavedBatch:
    keys: dict[uuid.UUID, bytes | None]
    activities: list[tuple[uuid.UUID, dict[str, Any], datetime]]


async def save_batch(
    conn: AsyncConnection,
    states: Sequence[LeadState],
    now: datetime,
    *,
    identified_emails: dict[str, uuid.UUID],
    identified_anon: dict[str, uuid.UUID],
    key_leads: Sequence[uuid.UUID],
    new_keys: Sequence[bytes],
    responses: Sequence[tuple[str, str, dict[str, Any]]] = (),
) -> SavedBatch:
    """Write a batch's leads, aliases, anonymous links, pending-activity claims, idempotent
    ``responses`` (scope, key, answer) and keys in one statement (see ``_SAVE_BATCH``). Returns the keys of ``key_leads`` and the claimed
    activities (lead, payload, occurred_at) oldest first."""
    pairs = [(email, s.merged_into or s.lead_id) for s in states for email in s.new_emails]
    rows = await _SAVE_BATCH.fetch(
        conn,
        {
            "ids": [s.lead_id for s in states],
            "emails": [s.contact.email for s in states],
            "phones": [s.contact.phone for s in states],
            "names": [name_key(s.contact.first_name, s.contact.last_name) for s in states],
            "domains": [s.company_domain for s in states],
            "contacts": [s.contact.model_dump_json(exclude_none=True) for s in states],
            "times": [
                json_text({k: v.isoformat() for k, v in s.field_times.items()}) for s in states
            ],
            "consents": [s.consent.model_dump_json() if s.consent else None for s in states],
            "accounts": [s.account.model_dump_json() if s.account else None for s in states],
            "flags": [s.flags.model_dump_json() for s in states],
            "merged": [s.merged_into for s in states],
            "inquiries": [s.inquiries for s in states],
            "created": [s.created_at or now for s in states],
            "updated": [now for _ in states],
            "alias_emails": [p[0] for p in pairs],
            "alias_leads": [p[1] for p in pairs],
            "anon": list(identified_anon),
            "anon_leads": list(identified_anon.values()),
            "id_emails": list(identified_emails),
            "id_email_leads": list(identified_emails.values()),
            "now": now,
            "key_leads": list(key_leads),
            "new_keys": list(new_keys),
            "idem_scopes": [r[0] for r in responses],
            "idem_keys": [r[1] for r in responses],
            "idem_responses": [json_text(r[2]) for r in responses],
        },
    )
    keys: dict[uuid.UUID, bytes | None] = {}
    activities: list[tuple[uuid.UUID, dict[str, Any], datetime]] = []
    for r in rows:
        if r.kind == "k":
            keys.setdefault(r.lead_id, bytes(r.key) if r.key is not None else None)
        else:
            activities.append((r.lead_id, dict(r.payload), r.occurred_at))
    activities.sort(key=lambda t: t[2])
    return SavedBatch(keys, activities)


async def get_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> Any | None:
    row = await conn.execute(
        text(f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE l.lead_id = :id"), {"id": lead_id}
    )
    return row.first()


async def find_lead_by_email(conn: AsyncConnection, email: str) -> Any | None:
    row = await conn.execute(
        text(
            f"SELECT {_LEAD_COLUMNS} FROM leads l JOIN lead_emails m ON m.lead_id = l.lead_id "
            "WHERE m.email = :email"
        ),
        {"email": email},
    )
    return row.first()


async def lead_ids_by_emails(conn: AsyncConnection, emails: Sequence[str]) -> dict[str, uuid.UUID]:
    if not emails:
        return {}
    rows = await conn.execute(
        text("SELECT email, lead_id FROM lead_emails WHERE email = ANY(CAST(:e AS text[]))"),
        {"e": list(set(emails))},
    )
    return {r[0]: r[1] for r in rows}


async def live_lead_ids(
    conn: AsyncConnection, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each existing, unerased lead id mapped to the lead it lives on (merges followed)."""
    if not ids:
        return {}
    rows = await conn.execute(
        text(
            "SELECT lead_id, coalesce(merged_into, lead_id) FROM leads "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[])) AND erased_at IS NULL"
        ),
        {"ids": list(set(ids))},
    )
    return {r[0]: r[1] for r in rows}


async def erase_lead_rows(
    conn: AsyncConnection, lead_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Shred the keys and blank every personal column intake keeps about these leads: the
    contact, e-mails, and the activities' e-mail, anonymous id, URL and properties (the rows
    stay, keyed by activity id, so a replayed activity is still a duplicate)."""
    params = {"ids": list(lead_ids), "now": now}
    await shred(conn, list(lead_ids), now)
    await conn.execute(
        text(
            "UPDATE leads SET email = NULL, phone = NULL, name_key = NULL, "
            "contact = '{}'::jsonb, field_times = '{}'::jsonb, erased_at = :now, "
            "updated_at = :now WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        params,
    )
    await conn.execute(
        text("DELETE FROM lead_emails WHERE lead_id = ANY(CAST(:ids AS uuid[]))"), params
    )
    # Activities still waiting under one of the person's anonymous ids go with them.
    await conn.execute(
        text(
            "UPDATE activities SET email = NULL, anonymous_id = NULL, "
            "payload = jsonb_build_object('type', payload->'type') "
            "WHERE lead_id = ANY(CAST(:ids AS uuid[])) OR anonymous_id IN "
            "(SELECT anonymous_id FROM anonymous_ids WHERE lead_id = ANY(CAST(:ids AS uuid[])))"
        ),
        params,
    )
    await conn.execute(
        text("DELETE FROM anonymous_ids WHERE lead_id = ANY(CAST(:ids AS uuid[]))"), params
    )


async def merged_into(conn: AsyncConnection, lead_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.execute(
        text("SELECT lead_id FROM leads WHERE merged_into = :id"), {"id": lead_id}
    )
    return [r[0] for r in rows]


async def set_consent(
    conn: AsyncConnection, lead_id: uuid.UUID, consent: ConsentRecord, now: datetime
) -> None:
    await conn.execute(
        text("UPDATE leads SET consent = CAST(:c AS jsonb), updated_at = :now WHERE lead_id = :id"),
        {"c": consent.model_dump_json(), "now": now, "id": lead_id},
    )


async def set_do_not_contact(
    conn: AsyncConnection, lead_id: uuid.UUID, do_not_contact: bool, now: datetime
) -> None:
    await conn.execute(
        text("UPDATE leads SET do_not_contact = :d, updated_at = :now WHERE lead_id = :id"),
        {"d": do_not_contact, "now": now, "id": lead_id},
    )


# ---------------------------------------------------------------------------------------
# Accounts


async def upsert_account(conn: AsyncConnection, account: Account) -> None:
    await conn.execute(
        text(
            "INSERT INTO accounts (domain, account_id, name, owner_rep_id) "
            "VALUES (:domain, :account_id, :name, :owner) ON CONFLICT (domain) DO UPDATE SET "
            "account_id = EXCLUDED.account_id, name = EXCLUDED.name, "
            "owner_rep_id = EXCLUDED.owner_rep_id, updated_at = now()"
        ),
        {
            "domain": account.domain,
            "account_id": account.account_id,
            "name": account.name,
            "owner": account.owner_rep_id,
        },
    )


async def list_accounts(conn: AsyncConnection) -> list[Account]:
    rows = await conn.execute(
        text("SELECT domain, account_id, name, owner_rep_id FROM accounts ORDER BY domain")
    )
    return [Account(r.account_id, r.domain, r.name, r.owner_rep_id) for r in rows]


# ---------------------------------------------------------------------------------------
# API keys


async def find_api_key(conn: AsyncConnection, key_hash: str) -> ApiKey | None:
    row = (
        await conn.execute(
            text(
                "SELECT key_id, name, scopes, device_id, revoked_at FROM api_keys "
                "WHERE key_hash = :h"
            ),
            {"h": key_hash},
        )
    ).first()
    if row is None:
        return None
    return ApiKey(
        str(row.key_id), row.name, frozenset(row.scopes), row.device_id, row.revoked_at is not None
    )


async def insert_api_key(
    conn: AsyncConnection,
    key_id: uuid.UUID,
    name: str,
    key_hash: str,
    prefix: str,
    scopes: Sequence[str],
    device_id: str | None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO api_keys (key_id, name, key_hash, prefix, scopes, device_id) "
            "VALUES (:id, :name, :hash, :prefix, :scopes, :device) "
            "ON CONFLICT (key_hash) DO UPDATE SET scopes = EXCLUDED.scopes, revoked_at = NULL"
        ),
        {
            "id": key_id,
            "name": name,
            "hash": key_hash,
            "prefix": prefix,
            "scopes": list(scopes),
            "device": device_id,
        },
    )


async def list_api_keys(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT key_id, name, prefix, scopes, device_id, created_at, revoked_at "
            "FROM api_keys ORDER BY created_at"
        )
    )
    return [dict(r._mapping) for r in rows]


async def revoke_api_key(conn: AsyncConnection, key_id: uuid.UUID, now: datetime) -> bool:
    result = await conn.execute(
        text(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE key_id = :id "
            "RETURNING key_id"
        ),
        {"id": key_id, "now": now},
    )
    return result.first() is not None


# ---------------------------------------------------------------------------------------
# Forms


async def get_form(conn: AsyncConnection, form_key: str) -> dict[str, Any] | None:
    value = await conn.scalar(
        text("SELECT definition FROM forms WHERE form_key = :k"), {"k": form_key}
    )
    return dict(value) if value is not None else None


async def put_form(
    conn: AsyncConnection,
    form_key: str,
    definition: dict[str, Any],
    *,
    only_if_missing: bool = False,
) -> None:
    conflict = (
        "DO NOTHING"
        if only_if_missing
        else ("DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()")
    )
    await conn.execute(
        text(
            f"INSERT INTO forms (form_key, definition) VALUES (:k, CAST(:d AS jsonb)) "
            f"ON CONFLICT (form_key) {conflict}"
        ),
        {"k": form_key, "d": json_text(definition)},
    )


async def list_forms(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(text("SELECT definition FROM forms ORDER BY form_key"))
    return [dict(r[0]) for r in rows]


async def delete_form(conn: AsyncConnection, form_key: str) -> bool:
    result = await conn.execute(
        text("DELETE FROM forms WHERE form_key = :k RETURNING form_key"), {"k": form_key}
    )
    return result.first() is not None


# ---------------------------------------------------------------------------------------
# Idempotency


async def claim_idempotency(
    conn: AsyncConnection, scope: str, key: str, request_hash: str
) -> tuple[bool, str | None, int | None, Any]:
    """Claim ``key`` in this transaction. A concurrent claim of the same key waits on the
    unique index until ours commits, then sees our stored response.

    Returns (claimed, stored_hash, stored_status, stored_response)."""
    claimed = await conn.scalar(
        text(
            "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (:s, :k, :h) "
            "ON CONFLICT DO NOTHING RETURNING true"
        ),
        {"s": scope, "k": key, "h": request_hash},
    )
    if claimed:
        return True, None, None, None
    row = (
        await conn.execute(
            text(
                "SELECT request_hash, status, response FROM idempotency_keys "
                "WHERE scope = :s AND key = :k"
            ),
            {"s": scope, "k": key},
        )
    ).first()
    assert row is not None
    return False, row.request_hash, row.status, row.response


async def store_idempotent_response(
    conn: AsyncConnection, scope: str, key: str, status: int, response: Any
) -> None:
    await conn.execute(
        text(
            "UPDATE idempotency_keys SET status = :st, response = CAST(:r AS jsonb) "
            "WHERE scope = :s AND key = :k"
        ),
        {"st": status, "r": json_text(response), "s": scope, "k": key},
    )


# ---------------------------------------------------------------------------------------
# Scans


async def seen_scans(
    conn: AsyncConnection, device: str, scan_ids: Sequence[str]
) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    rows = await conn.execute(
        text(
            "SELECT scan_id, lead_id, inquiry_id FROM scans WHERE device_id = :d "
            "AND scan_id = ANY(CAST(:ids AS text[]))"
        ),
        {"d": device, "ids": list(scan_ids)},
    )
    return {r.scan_id: (r.lead_id, r.inquiry_id) for r in rows}


async def record_scans(
    conn: AsyncConnection, device: str, rows: Sequence[tuple[str, uuid.UUID, uuid.UUID]]
) -> None:
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO scans (device_id, scan_id, lead_id, inquiry_id) SELECT :d, * FROM "
            "unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]), CAST(:inq AS uuid[]))"
        ),
        {
            "d": device,
            "ids": [r[0] for r in rows],
            "leads": [r[1] for r in rows],
            "inq": [r[2] for r in rows],
        },
    )


# ---------------------------------------------------------------------------------------
# Imports


async def create_import(
    conn: AsyncConnection,
    import_id: uuid.UUID,
    filename: str | None,
    mapping: dict[str, str],
    file_format: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO imports (import_id, status, filename, mapping, file_format) "
            "VALUES (:id, 'running', :f, CAST(:m AS jsonb), CAST(:ff AS jsonb))"
        ),
        {"id": import_id, "f": filename, "m": json_text(mapping), "ff": json_text(file_format)},
    )


async def import_total(conn: AsyncConnection, import_id: uuid.UUID, rows: int) -> None:
    await conn.execute(
        text("UPDATE imports SET rows_total = :n, updated_at = now() WHERE import_id = :id"),
        {"n": rows, "id": import_id},
    )


@dataclass(frozen=True)
class ImportCounts:
    """What one batch of an import did (added to the import's running totals)."""

    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    new_leads: int = 0
    matched: int = 0
    unchanged: int = 0
    history_won: int = 0
    history_lost: int = 0


async def import_progress(
    conn: AsyncConnection,
    import_id: uuid.UUID,
    counts: ImportCounts,
    rejections: Sequence[tuple[int, str | None, str]],
) -> None:
    await conn.execute(
        text(
            "UPDATE imports SET rows_read = rows_read + :r, accepted = accepted + :a, "
            "rejected = rejected + :x, new_leads = new_leads + :n, matched = matched + :m, "
            "unchanged = unchanged + :u, history_won = history_won + :w, "
            "history_lost = history_lost + :l, updated_at = now() WHERE import_id = :id"
        ),
        {
            "r": counts.rows_read,
            "a": counts.accepted,
            "x": counts.rejected,
            "n": counts.new_leads,
            "m": counts.matched,
            "u": counts.unchanged,
            "w": counts.history_won,
            "l": counts.history_lost,
            "id": import_id,
        },
    )
    if rejections:
        await conn.execute(
            text(
                "INSERT INTO import_rejections (import_id, row_number, field, reason) "
                "SELECT :id, * FROM unnest(CAST(:rows AS integer[]), CAST(:fields AS text[]), "
                "CAST(:reasons AS text[])) ON CONFLICT DO NOTHING"
            ),
            {
                "id": import_id,
                "rows": [r[0] for r in rejections],
                "fields": [r[1] for r in rejections],
                "reasons": [r[2] for r in rejections],
            },
        )


async def external_leads(
    conn: AsyncConnection, system: str, external_ids: Sequence[str]
) -> dict[str, uuid.UUID]:
    """The leads already known by these ids of ``system`` (an import's source system)."""
    if not external_ids:
        return {}
    rows = await conn.execute(
        text(
            "SELECT external_id, lead_id FROM external_ids WHERE system = :s "
            "AND external_id = ANY(CAST(:ids AS text[]))"
        ),
        {"s": system, "ids": list(external_ids)},
    )
    return {r.external_id: r.lead_id for r in rows}


async def record_external_ids(
    conn: AsyncConnection, system: str, rows: Sequence[tuple[str, uuid.UUID, str | None]]
) -> None:
    """Remember (external id -> lead, outcome recorded) for the next import of the file."""
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO external_ids (system, external_id, lead_id, outcome) "
            "SELECT :s, * FROM unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]), "
            "CAST(:outcomes AS text[])) ON CONFLICT DO NOTHING"
        ),
        {
            "s": system,
            "ids": [r[0] for r in rows],
            "leads": [r[1] for r in rows],
            "outcomes": [r[2] for r in rows],
        },
    )


async def finish_import(
    conn: AsyncConnection, import_id: uuid.UUID, status: str, error: str | None = None
) -> None:
    await conn.execute(
        text(
            "UPDATE imports SET status = :s, error = :e, finished_at = now(), "
            "updated_at = now() WHERE import_id = :id"
        ),
        {"s": status, "e": error, "id": import_id},
    )


async def get_import(
    conn: AsyncConnection, import_id: uuid.UUID, rejection_limit: int
) -> tuple[Any, list[Any]] | None:
    row = (
        await conn.execute(text("SELECT * FROM imports WHERE import_id = :id"), {"id": import_id})
    ).first()
    if row is None:
        return None
    rejected = await conn.execute(
        text(
            "SELECT row_number, field, reason FROM import_rejections WHERE import_id = :id "
            "ORDER BY row_number LIMIT :n"
        ),
        {"id": import_id, "n": rejection_limit},
    )
    return row, list(rejected)


# ---------------------------------------------------------------------------------------
# Activities


async def existing_activity_ids(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    rows = await conn.execute(
        text("SELECT activity_id FROM activities WHERE activity_id = ANY(CAST(:ids AS text[]))"),
        {"ids": list(ids)},
    )
    return {r[0] for r in rows}


async def insert_activities(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO activities (activity_id, lead_id, anonymous_id, email, payload, "
            "occurred_at, attached_at) SELECT * FROM unnest(CAST(:ids AS text[]), "
            "CAST(:leads AS uuid[]), CAST(:anon AS text[]), CAST(:emails AS text[]), "
            "CAST(:payloads AS jsonb[]), CAST(:occurred AS timestamptz[]), "
            "CAST(:attached AS timestamptz[]))"
        ),
        {
            "ids": [r["activity_id"] for r in rows],
            "leads": [r["lead_id"] for r in rows],
            "anon": [r["anonymous_id"] for r in rows],
            "emails": [r["email"] for r in rows],
            "payloads": [json_text(r["payload"]) for r in rows],
            "occurred": [r["occurred_at"] for r in rows],
            "attached": [r["attached_at"] for r in rows],
        },
    )


async def anonymous_owners(
    conn: AsyncConnection, anonymous_ids: Sequence[str]
) -> dict[str, uuid.UUID]:
    if not anonymous_ids:
        return {}
    rows = await conn.execute(
        text(
            "SELECT anonymous_id, lead_id FROM anonymous_ids "
            "WHERE anonymous_id = ANY(CAST(:a AS text[]))"
        ),
        {"a": list(set(anonymous_ids))},
    )
    return {r[0]: r[1] for r in rows}


async def link_anonymous(conn: AsyncConnection, pairs: dict[str, uuid.UUID]) -> None:
    if not pairs:
        return
    await conn.execute(
        text(
            "INSERT INTO anonymous_ids (anonymous_id, lead_id) SELECT * FROM "
            "unnest(CAST(:a AS text[]), CAST(:l AS uuid[])) ON CONFLICT DO NOTHING"
        ),
        {"a": list(pairs), "l": list(pairs.values())},
    )


async def claim_pending_activities(
    conn: AsyncConnection,
    emails: dict[str, uuid.UUID],
    anonymous: dict[str, uuid.UUID],
    now: datetime,
) -> list[tuple[uuid.UUID, dict[str, Any], datetime]]:
    """Attach anonymous activity of people who just identified themselves (same email or
    same anonymous id); returns (lead, payload, occurred_at) to record as events."""
    if not emails and not anonymous:
        return []
    rows = await conn.execute(
        text(
            """
            WITH ids AS (
                SELECT * FROM unnest(CAST(:emails AS text[]), CAST(:eleads AS uuid[]))
                    AS e(email, lead_id)
            ), anon AS (
                SELECT * FROM unnest(CAST(:anon AS text[]), CAST(:aleads AS uuid[]))
                    AS a(anonymous_id, lead_id)
            ), matched AS (
                SELECT a.activity_id,
                       coalesce(i.lead_id, n.lead_id) AS lead_id
                FROM activities a
                LEFT JOIN ids i ON a.email = i.email
                LEFT JOIN anon n ON a.anonymous_id = n.anonymous_id
                WHERE a.lead_id IS NULL AND (i.lead_id IS NOT NULL OR n.lead_id IS NOT NULL)
                FOR UPDATE OF a SKIP LOCKED
            )
            UPDATE activities t SET lead_id = m.lead_id, attached_at = :now
            FROM matched m WHERE t.activity_id = m.activity_id
            RETURNING t.lead_id, t.payload, t.occurred_at
            """
        ),
        {
            "emails": list(emails),
            "eleads": list(emails.values()),
            "anon": list(anonymous),
            "aleads": list(anonymous.values()),
            "now": now,
        },
    )
    return sorted(((r[0], dict(r[1]), r[2]) for r in rows), key=lambda t: t[2])
