"""Lead facts (``sla_leads``): segment, owner and when each event type was last seen."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from leadflow.events.sql import Tx
from leadflow.sla_monitor.domain import LeadClocks, LeadFacts
from leadflow.sla_monitor.store.clocks import active_slas

# -- lead facts -----------------------------------------------------------------------

# Creating missing rows and locking existing ones in one statement, in lead id order: two
# transactions handling the same lead (its routing and scoring events on different replicas)
# serialise here, and the second reads what the first committed. The configuration revision
# rides along so the batch needs no separate round trip for it.
_LOCK_LEADS = """
    WITH up AS (
        INSERT INTO sla_leads (lead_id)
        SELECT id FROM unnest(CAST(:ids AS uuid[])) AS t(id) ORDER BY id
        ON CONFLICT (lead_id) DO UPDATE SET lead_id = EXCLUDED.lead_id
        RETURNING lead_id, grade, region, country, channel, rep_id, team_id, seen
    )
    SELECT up.*, r.revision, current_schema() AS schema FROM up CROSS JOIN sla_config_revision r
    """


async def load_leads(
    tx: Tx, lead_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, LeadClocks], tuple[str, int]]:
    """Every lead's facts, when each event type was last seen and its running clocks,
    row-locked for this transaction (a new lead's row created empty), plus ``(schema,
    config revision)``: two statements for the whole batch."""
    rows = await tx.fetch(_LOCK_LEADS, ids=sorted(set(lead_ids)))
    if not rows:  # pragma: no cover - migration 0002 inserts the one revision row
        raise RuntimeError("lock_leads: no lead ids given, or the sla_config_revision row is gone")
    running = await active_slas(tx, lead_ids)
    states: dict[uuid.UUID, LeadClocks] = {}
    for row in rows:
        facts = LeadFacts(
            grade=row.grade,
            region=row.region,
            country=row.country,
            channel=row.channel,
            rep_id=row.rep_id,
            team_id=row.team_id,
        )
        seen = {k: datetime.fromisoformat(v) for k, v in (row.seen or {}).items()}
        states[row.lead_id] = LeadClocks(facts, seen, tuple(running.get(row.lead_id, ())))
    return states, (rows[0].schema, int(rows[0].revision))
