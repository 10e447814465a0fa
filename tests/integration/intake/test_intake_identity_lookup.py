"""Identity resolution's lookup stays an index lookup however stale the planner's statistics.

A new deployment's tables are analysed while empty; until autovacuum analyses them again the
planner guesses that almost no lead is live (``merged_into IS NULL``), and an earlier form of
the lookup (one OR over the email, phone and name+domain matches) became a scan of every lead
for every lead: 115 ms per request after 850 leads in the pipeline benchmark's first minute."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from leadflow.intake import store
from tests.integration.intake.conftest import Intake

LEADS = 3000


async def _stale_statistics_with_leads(intake: Intake) -> None:
    """``LEADS`` live leads (and one merged) that the planner believes are not there."""
    async with intake.kit.unit_of_work() as uow:
        for table in ("leads", "lead_emails"):
            await uow.tx.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            await uow.tx.execute(f"ANALYZE {table}")
        await uow.tx.execute(
            "INSERT INTO leads (lead_id, phone, name_key, company_domain, created_at) "
            "SELECT md5('lead' || i)::uuid, '+4420' || lpad(i::text, 8, '0'), "
            "'name' || i, 'dom' || (i % 300) || '.example', "
            "now() - make_interval(secs => :n - i) "
            "FROM generate_series(1, :n) AS i",
            n=LEADS,
        )
        await uow.tx.execute(
            "INSERT INTO lead_emails (email, lead_id) "
            "SELECT 'e' || i || '@dom' || (i % 300) || '.example', md5('lead' || i)::uuid "
            "FROM generate_series(1, :n) AS i",
            n=LEADS,
        )
        await uow.tx.execute(
            "UPDATE leads SET merged_into = md5('lead1')::uuid WHERE lead_id = :id", id=_lead(7)
        )


def _lead(i: int) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"lead{i}".encode()).hexdigest())


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


LOOKUP = {
    "emails": ["e5@dom5.example", "nobody@else.example"],
    "phones": ["+442000000011"],
    "domains": ["dom13.example"],
    "names": ["name13"],
    "accounts": ["dom13.example"],
}


async def test_the_lookup_reads_no_whole_table_while_statistics_are_stale(
    intake: Intake,
) -> None:
    await _stale_statistics_with_leads(intake)
    async with intake.kit.unit_of_work() as uow:
        [row] = await uow.tx.fetch(
            "EXPLAIN (FORMAT JSON) " + store._CANDIDATES_AND_ACCOUNTS, **LOOKUP
        )
    document = json.loads(row[0]) if isinstance(row[0], str) else row[0]  # codec or not
    scans = _scans(document[0]["Plan"])
    whole_tables = [rel for node, rel in scans if node == "Seq Scan" and rel != "accounts"]
    assert whole_tables == [], scans


async def test_the_lookup_finds_each_kind_of_match_and_skips_merged_leads(
    intake: Intake,
) -> None:
    await _stale_statistics_with_leads(intake)
    async with intake.kit.unit_of_work() as uow:
        leads, _accounts = await store.fetch_candidates_and_accounts(
            uow.tx,
            ["e5@dom5.example", "e7@dom7.example"],  # by email; lead 7 is merged away
            ["+442000000011"],  # by phone
            ["dom13.example"],
            ["name13"],  # by name at the company's domain
            [],
        )
    # Oldest first: leads were created in the order of their number.
    assert [lead.lead_id for lead in leads] == [_lead(5), _lead(11), _lead(13)]
