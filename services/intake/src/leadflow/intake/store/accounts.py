"""Registered company accounts (a lead's account match reads them)."""

from __future__ import annotations

from leadflow.events.sql import Tx
from leadflow.intake.domain import (
    Account,
)

# ---------------------------------------------------------------------------------------
# Accounts


async def upsert_account(tx: Tx, account: Account) -> None:
    await tx.execute(
        "INSERT INTO accounts (domain, account_id, name, owner_rep_id) "
        "VALUES (:domain, :account_id, :name, :owner) ON CONFLICT (domain) DO UPDATE SET "
        "account_id = EXCLUDED.account_id, name = EXCLUDED.name, "
        "owner_rep_id = EXCLUDED.owner_rep_id, updated_at = now()",
        domain=account.domain,
        account_id=account.account_id,
        name=account.name,
        owner=account.owner_rep_id,
    )


async def list_accounts(tx: Tx) -> list[Account]:
    rows = await tx.fetch(
        "SELECT domain, account_id, name, owner_rep_id FROM accounts ORDER BY domain"
    )
    return [Account(r.account_id, r.domain, r.name, r.owner_rep_id) for r in rows]
