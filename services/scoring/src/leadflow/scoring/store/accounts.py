"""Accounts: their people, their customers and their MQA records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflow.events.sql import Tx
from leadflow.scoring.store.leads import LEAD_COLUMNS, LeadRow


async def account_leads(tx: Tx, key: str) -> list[LeadRow]:
    """The leads whose profile names the account ``key`` (its id, or its company domain)."""
    rows = await tx.fetch(
        f"SELECT {LEAD_COLUMNS} FROM leads WHERE (profile->>'account_id' = :k "
        "OR profile->>'account_domain' = :d) AND status <> 'merged' ORDER BY lead_id",
        k=key.strip(),
        d=key.strip().lower(),
    )
    return [LeadRow.from_row(r) for r in rows]


async def account_members(
    tx: Tx, account_ids: list[str]
) -> dict[str, list[tuple[uuid.UUID, dict[str, Any] | None, bool, str | None, bool]]]:
    """Per account not yet qualified: its leads' ``(lead_id, last published score,
    disqualified, domain, registered)``."""
    rows = await tx.fetch(
        "SELECT profile->>'account_id', lead_id, score, disqualified, "
        "profile->>'account_domain', coalesce((profile->>'account_registered')::boolean, "
        "false) FROM leads WHERE profile->>'account_id' = ANY(:ids) AND status <> 'merged' "
        "AND profile->>'account_id' NOT IN (SELECT account_id FROM account_qualifications) "
        "ORDER BY lead_id",
        ids=account_ids,
    )
    out: dict[str, list[tuple[uuid.UUID, dict[str, Any] | None, bool, str | None, bool]]] = {}
    for account_id, lead_id, score, disqualified, domain, registered in rows:
        out.setdefault(account_id, []).append((lead_id, score, disqualified, domain, registered))
    return out


# A customer of its account: won, or in an expansion cycle. The same text as the predicate of
# the partial index leads_customer_account (migration 0007), so the planner can use it.
_CUSTOMER = "(status = 'won' OR (status = 'open' AND cycle = 'expansion'))"


async def customers_of_accounts(tx: Tx, account_ids: list[str]) -> dict[str, set[uuid.UUID]]:
    """The customers (won, or in an expansion) of each of these accounts, in one statement
    served by the partial index ``leads_customer_account`` (migration 0007)."""
    rows = await tx.fetch(
        f"SELECT profile->>'account_id', lead_id FROM leads WHERE {_CUSTOMER} "
        "AND profile->>'account_id' = ANY(:a)",
        a=account_ids,
    )
    found: dict[str, set[uuid.UUID]] = {}
    for account_id, lead_id in rows:
        found.setdefault(account_id, set()).add(lead_id)
    return found


async def mark_account_qualified(tx: Tx, account_id: str, lead_id: uuid.UUID, at: datetime) -> bool:
    """Record the MQA; False if another writer recorded it first (emit nothing then)."""
    inserted = await tx.fetchval(
        "INSERT INTO account_qualifications (account_id, lead_id, qualified_at) "
        "VALUES (:a, :l, :t) ON CONFLICT (account_id) DO NOTHING RETURNING 1",
        a=account_id,
        l=lead_id,
        t=at,
    )
    return inserted is not None
