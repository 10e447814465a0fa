"""Campaign costs: what an admin entered (the sources report divides by it)."""

from __future__ import annotations

from typing import Any

from leadflow.analytics.commands import EnterCampaignCost, EnteredCost
from leadflow.analytics.store.query import number
from leadflow.events.sql import Tx


async def costs(tx: Tx) -> list[dict[str, Any]]:
    result = await tx.fetch(
        "SELECT id, campaign, channel, period_start, period_end, amount, currency "
        "FROM campaign_costs ORDER BY period_start, id"
    )
    return [
        {
            "id": r[0],
            "campaign": r[1],
            "channel": r[2],
            "period_start": r[3].isoformat(),
            "period_end": r[4].isoformat(),
            "amount": number(r[5]),
            "currency": r[6],
        }
        for r in result
    ]


async def lock_costs(tx: Tx) -> None:
    """Entries take turns until they commit, so two overlapping costs entered at once
    cannot both find no clash."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtext('campaign_costs'))")


async def costs_of(tx: Tx, campaign: str, channel: str, currency: str) -> list[EnteredCost]:
    rows = await tx.fetch(
        "SELECT id, period_start, period_end FROM campaign_costs "
        "WHERE campaign = :campaign AND channel = :channel AND currency = :currency",
        campaign=campaign,
        channel=channel,
        currency=currency,
    )
    return [EnteredCost(r[0], r[1], r[2]) for r in rows]


async def insert_cost(tx: Tx, cmd: EnterCampaignCost) -> int:
    return int(
        await tx.fetchval(
            "INSERT INTO campaign_costs (campaign, channel, period_start, period_end, "
            "amount, currency) VALUES (:campaign, :channel, :period_start, :period_end, "
            ":amount, :currency) RETURNING id",
            campaign=cmd.campaign,
            channel=cmd.channel,
            period_start=cmd.period_start,
            period_end=cmd.period_end,
            amount=cmd.amount,
            currency=cmd.currency,
        )
    )


async def cost(tx: Tx, cost_id: int) -> EnteredCost | None:
    """The cost, locked until the transaction ends (or None)."""
    row = await tx.fetchrow(
        "SELECT id, period_start, period_end FROM campaign_costs WHERE id = :i FOR UPDATE",
        i=cost_id,
    )
    return EnteredCost(row[0], row[1], row[2]) if row else None


async def delete_cost(tx: Tx, cost_id: int) -> None:
    await tx.execute("DELETE FROM campaign_costs WHERE id = :i", i=cost_id)
