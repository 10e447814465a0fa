"""Account queries (issue 30): an account's people and the account waterfall, from the log.

Unlike the other reports these read the lead event log, not a projection: an account page
is a handful of leads found by the partial expression indexes of migration 0006 (account
id or company domain on intake's account facts), then each lead's events by the
``(lead_id, occurred_at)`` index. The account waterfall groups every lead's reach by its
latest account fact; it is one pass over the log's stage-moving events and is the first
candidate for a projection when logs grow large.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from leadflow.analytics.accounts import AccountReach, Deal, Person, fold_person
from leadflow.analytics.cycles import CycleRun, cycle_runs
from leadflow.events.lifecycle import STAGE_CHANGING_EVENTS
from leadflow.events.sql import Tx

_FACTS = "event_type IN ('lead.captured', 'lead.profile_updated')"


async def account_people(tx: Tx, key: str) -> list[Person]:
    """The people whose latest account fact names ``key`` (an account id or a domain)."""
    key = key.strip()
    domain = key.lower()
    ids = await tx.fetch(
        "SELECT DISTINCT lead_id FROM lead_event_log WHERE "
        f"{_FACTS} AND (payload->'account'->>'account_id' = :k "
        f"OR payload->'account'->>'domain' = :d)",
        k=key,
        d=domain,
    )
    lead_ids = [r[0] for r in ids]
    if not lead_ids:
        return []
    rows = await tx.fetch(
        "SELECT l.lead_id, l.event_type, l.occurred_at, l.payload, p.fields "
        "FROM lead_event_log l LEFT JOIN lead_personal p "
        "ON p.lead_id = l.lead_id AND p.event_id = l.event_id "
        "WHERE l.lead_id = ANY(:ids) ORDER BY l.lead_id, l.occurred_at, l.global_position",
        ids=lead_ids,
    )
    events: dict[uuid.UUID, list[tuple[str, datetime, Mapping[str, Any]]]] = {}
    for lead_id, event_type, occurred, payload, personal in rows:
        events.setdefault(lead_id, []).append(
            (event_type, occurred, {**payload, **(personal or {})})
        )
    people = [fold_person(str(lead_id), evs) for lead_id, evs in events.items()]
    # A lead whose later fact moved it to another company is that company's now.
    return [
        p for p in people if key in (p.account_id, p.account_domain) or domain == p.account_domain
    ]


async def account_reach(
    tx: Tx,
) -> tuple[list[AccountReach], list[Deal]]:
    """Every account lead's reach, and every won deal as ``(account, at, amount, currency,
    cycle)``."""
    latest = (
        "WITH acct AS (SELECT DISTINCT ON (lead_id) lead_id, "
        "payload->'account'->>'account_id' AS account_id FROM lead_event_log "
        f"WHERE {_FACTS} ORDER BY lead_id, global_position DESC) "
    )
    reach = await tx.fetch(
        latest + "SELECT a.account_id, "
        "bool_or(l.event_type IN ('lead.captured', 'inquiry.received', "
        "'activity.recorded')), "
        "bool_or(l.event_type IN ('lead.qualified', 'account.qualified')), "
        "bool_or(l.event_type = 'opportunity.opened'), "
        "bool_or(l.event_type = 'deal.won') "
        "FROM acct a JOIN lead_event_log l ON l.lead_id = a.lead_id "
        "WHERE a.account_id IS NOT NULL GROUP BY a.account_id, a.lead_id"
    )
    reached = [AccountReach(r[0], bool(r[1]), bool(r[2]), bool(r[3]), bool(r[4])) for r in reach]
    won = await tx.fetch(
        latest + "SELECT a.account_id, l.occurred_at, l.payload->>'amount', "
        "coalesce(l.payload->>'currency', 'USD'), "
        "coalesce(l.payload->>'cycle', 'new_business') "
        "FROM acct a JOIN lead_event_log l ON l.lead_id = a.lead_id "
        "WHERE a.account_id IS NOT NULL AND l.event_type = 'deal.won' "
        "ORDER BY l.occurred_at, l.global_position"
    )
    deals = [(r[0], r[1], Decimal(r[2] or "0"), r[3], r[4]) for r in won]
    return reached, deals


async def all_cycle_runs(tx: Tx) -> list[CycleRun]:
    """Every lead's buying cycles (``cycles.cycle_runs``), from its stage-moving events."""
    rows = await tx.fetch(
        "SELECT lead_id, event_type, payload->>'amount', payload->>'currency' "
        "FROM lead_event_log WHERE event_type = ANY(:types) "
        "ORDER BY lead_id, occurred_at, global_position",
        types=sorted(STAGE_CHANGING_EVENTS),
    )
    runs: list[CycleRun] = []
    lead: Any = None
    events: list[tuple[str, Mapping[str, Any]]] = []
    for lead_id, event_type, amount, currency in rows:
        if lead_id != lead:
            runs += cycle_runs(events)
            lead, events = lead_id, []
        events.append((event_type, {"amount": amount, "currency": currency}))
    runs += cycle_runs(events)
    return runs
