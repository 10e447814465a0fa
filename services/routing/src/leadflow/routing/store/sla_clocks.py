"""SLA clocks learnt from sla-monitor's events, and the rep's queue ordered by them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.events.sql import Tx
from leadflow.routing.store.leads import SALES_OPEN_STAGES


async def rep_queue(tx: Tx, rep_id: str) -> list[dict[str, Any]]:
    """The rep's open leads, soonest SLA due first (leads without an open SLA last). Only the
    rep's own clocks count: marketing's (an MQL assigned within 30 minutes) has no rep."""
    rows = await tx.fetch(
        """
        SELECT l.lead_id, l.stage, l.assigned_at, l.snapshot, s.sla_id, s.policy_id,
               s.due_at, s.warn_at, l.contact
        FROM leads l
        LEFT JOIN LATERAL (
            SELECT sla_id, policy_id, due_at, warn_at FROM sla_clocks c
            WHERE c.lead_id = l.lead_id AND c.status = 'open' AND c.rep_id = :rep
            ORDER BY due_at LIMIT 1
        ) s ON true
        WHERE l.rep_id = :rep AND l.stage = ANY(CAST(:stages AS text[]))
        ORDER BY s.due_at NULLS LAST, l.assigned_at
        """,
        rep=rep_id,
        stages=list(SALES_OPEN_STAGES),
    )
    return [
        {
            "lead_id": r[0],
            "stage": r[1],
            "assigned_at": r[2],
            "lead": r[3],
            "contact": r[8],
            "sla": None
            if r[4] is None
            else {"sla_id": r[4], "policy_id": r[5], "due_at": r[6], "warn_at": r[7]},
        }
        for r in rows
    ]


@dataclass
class SlaClockWrites:
    """The SLA clock changes of one consumer batch, in delivery order, written at its flush.

    A status seen before the batch started that clock again only applies to a clock that
    already existed (as the per-event writes did); one seen after its start applies to it."""

    starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_status: dict[str, str] = field(default_factory=dict)
    late_status: dict[str, str] = field(default_factory=dict)

    def start(
        self,
        *,
        sla_id: str,
        lead_id: uuid.UUID,
        policy_id: str,
        rep_id: str | None,
        due_at: datetime,
        warn_at: datetime | None,
    ) -> None:
        self.starts[sla_id] = {
            "lead_id": lead_id,
            "policy_id": policy_id,
            "rep_id": rep_id,
            "due_at": due_at,
            "warn_at": warn_at,
        }

    def status(self, sla_id: str, status: str) -> None:
        if sla_id in self.starts:
            self.late_status[sla_id] = status
        else:
            self.early_status[sla_id] = status


_SLA_STATUS = (
    "UPDATE sla_clocks c SET status = s.status "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS s(sla_id, status) "
    "WHERE c.sla_id = s.sla_id"
)
_SLA_START = """
    INSERT INTO sla_clocks (sla_id, lead_id, policy_id, rep_id, due_at, warn_at)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]),
                         CAST(:policies AS text[]), CAST(:reps AS text[]),
                         CAST(:due AS timestamptz[]), CAST(:warn AS timestamptz[]))
    ON CONFLICT (sla_id) DO UPDATE SET
        due_at = EXCLUDED.due_at, warn_at = EXCLUDED.warn_at, rep_id = EXCLUDED.rep_id
    """


async def write_sla_clocks(tx: Tx, writes: SlaClockWrites) -> None:
    """A batch's clock changes in at most three statements, whatever its size."""
    if writes.early_status:
        await _set_sla_status(tx, writes.early_status)
    if writes.starts:
        rows = writes.starts
        await tx.execute(
            _SLA_START,
            ids=list(rows),
            leads=[r["lead_id"] for r in rows.values()],
            policies=[r["policy_id"] for r in rows.values()],
            reps=[r["rep_id"] for r in rows.values()],
            due=[r["due_at"] for r in rows.values()],
            warn=[r["warn_at"] for r in rows.values()],
        )
    if writes.late_status:
        await _set_sla_status(tx, writes.late_status)


async def _set_sla_status(tx: Tx, statuses: dict[str, str]) -> None:
    await tx.execute(_SLA_STATUS, ids=list(statuses), statuses=list(statuses.values()))
