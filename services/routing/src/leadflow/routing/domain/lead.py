"""A lead as routing knows it (stage, owner, the snapshot rules match on): the value
handlers and commands decide on. Pure: the store reads and writes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.lifecycle import Cycle, LeadLifecycle, Stage

# Stages in which a lead is in sales' hands and counts against its owner's open cap.
SALES_OPEN_STAGES: tuple[str, ...] = (
    Stage.MQL.value,
    Stage.SAL.value,
    Stage.SQL.value,
    Stage.OPPORTUNITY.value,
    Stage.ON_HOLD.value,
)


@dataclass(frozen=True)
class LeadRow:
    lead_id: uuid.UUID
    stage: Stage | None
    held_from: Stage | None
    cycle: int
    snapshot: LeadSnapshot
    assignee_kind: str | None
    rep_id: str | None
    team_id: str | None
    queue_id: str | None
    excluded_reps: list[str]
    assigned_at: datetime | None
    opportunity_id: str | None
    amount: Decimal | None
    currency: str | None
    # The buying cycle (the lifecycle's: new business or a customer's expansion); ``cycle``
    # above counts qualification cycles (one assignment each).
    buying_cycle: Cycle = Cycle.NEW_BUSINESS
    # The qualification cycles the lead was already assigned in (read when the row is locked
    # for a batch's decisions): a repeated qualification does not assign twice.
    assigned_cycles: frozenset[int] = frozenset()

    @property
    def lifecycle(self) -> LeadLifecycle:
        """Routing never sees intake's events: a lead it has not seen was an inquiry."""
        return LeadLifecycle(self.stage or Stage.INQUIRY, self.held_from, self.buying_cycle)

    @property
    def in_sales(self) -> bool:
        return self.stage is not None and self.stage.value in SALES_OPEN_STAGES
