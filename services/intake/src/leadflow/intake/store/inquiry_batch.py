"""What a group-committed batch of inquiries reads and writes: the Idempotency-Key claims
and identity locks, the candidate leads and accounts in one statement, and everything but
the events saved in ONE statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx
from leadflow.intake.domain import (
    Account,
    name_key,
)
from leadflow.intake.store.leads import _LEAD_COLUMNS, LeadState, _lock_ids, _state

# Idempotency keys claimed first (the first UNION branch reads the insert to its end), then
# the identity locks: every transaction claims before it locks, and claims in (scope, key)
# order, so two batches retrying the same requests wait for each other, never in a cycle.
_CLAIM_AND_LOCK = """
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


async def claim_and_lock(
    tx: Tx, claims: Sequence[tuple[str, str, str]], identities: Iterable[str]
) -> set[tuple[str, str]]:
    """Claim idempotency keys ``(scope, key, request_hash)`` and take the identity locks
    (see ``lock_identities``) in one statement; returns the (scope, key) claimed here (the
    others were claimed before, by an earlier request)."""
    ordered = sorted(claims)
    rows = await tx.fetch(
        _CLAIM_AND_LOCK,
        s=[c[0] for c in ordered],
        k=[c[1] for c in ordered],
        h=[c[2] for c in ordered],
        ids=_lock_ids(identities),
    )
    return {(r[0], r[1]) for r in rows if r[0] is not None}


_STORED_RESPONSES = (
    "SELECT scope, key, request_hash, response FROM idempotency_keys "
    "WHERE (scope, key) IN (SELECT * FROM unnest(CAST(:s AS text[]), CAST(:k AS text[])))"
)


async def stored_responses(
    tx: Tx, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, Any]]:
    """(request_hash, response) of idempotency keys claimed by earlier requests."""
    rows = await tx.fetch(_STORED_RESPONSES, s=[k[0] for k in keys], k=[k[1] for k in keys])
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


# Candidates (kind 0, oldest first: identity resolution prefers the oldest) and the
# registered accounts of the incoming company domains (kind 1) in one round trip.
# Each kind of match is its own index lookup, and the leads are then read by key: no plan
# can scan the table, even while its statistics are stale (a new deployment's first minute,
# when the planner believes few leads are live and an OR of the matches read every lead
# once per lead). Merged and erased leads are dropped here rather than in SQL for the
# same reason.
_CANDIDATES_AND_ACCOUNTS = f"""
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


async def fetch_candidates_and_accounts(
    tx: Tx,
    emails: Iterable[str],
    phones: Iterable[str],
    domains: Iterable[str],
    names: Iterable[str],
    account_domains: Iterable[str],
) -> tuple[list[LeadState], dict[str, Account]]:
    """Live leads that could be the same person as any of the incoming contacts, oldest
    first, and the registered accounts of these domains (one statement)."""
    rows = await tx.fetch(
        _CANDIDATES_AND_ACCOUNTS,
        emails=list(set(emails)),
        phones=list(set(phones)),
        domains=list(set(domains)),
        names=list(set(names)),
        accounts=list(set(account_domains)),
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
_SAVE_BATCH = """
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


@dataclass
class SavedBatch:
    keys: dict[uuid.UUID, bytes | None]
    activities: list[tuple[uuid.UUID, dict[str, Any], datetime]]


async def save_batch(
    tx: Tx,
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
    rows = await tx.fetch(
        _SAVE_BATCH,
        ids=[s.lead_id for s in states],
        emails=[s.contact.email for s in states],
        phones=[s.contact.phone for s in states],
        names=[name_key(s.contact.first_name, s.contact.last_name) for s in states],
        domains=[s.company_domain for s in states],
        contacts=[s.contact.model_dump_json(exclude_none=True) for s in states],
        times=[json_text({k: v.isoformat() for k, v in s.field_times.items()}) for s in states],
        consents=[s.consent.model_dump_json() if s.consent else None for s in states],
        accounts=[s.account.model_dump_json() if s.account else None for s in states],
        flags=[s.flags.model_dump_json() for s in states],
        merged=[s.merged_into for s in states],
        inquiries=[s.inquiries for s in states],
        created=[s.created_at or now for s in states],
        updated=[now for _ in states],
        alias_emails=[p[0] for p in pairs],
        alias_leads=[p[1] for p in pairs],
        anon=list(identified_anon),
        anon_leads=list(identified_anon.values()),
        id_emails=list(identified_emails),
        id_email_leads=list(identified_emails.values()),
        now=now,
        key_leads=list(key_leads),
        new_keys=list(new_keys),
        idem_scopes=[r[0] for r in responses],
        idem_keys=[r[1] for r in responses],
        idem_responses=[json_text(r[2]) for r in responses],
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
