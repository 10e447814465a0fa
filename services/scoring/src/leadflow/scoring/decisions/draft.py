"""A decision in the making: the copy of the lead's state it changes, the events it appends
and the timers it moves, turned into the kernel's ``Decision`` at the end.

Also the names every decision shares: the timer kinds and keys scoring schedules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.events.batch import Decision
from leadflow.events.envelope import EventPayload
from leadflow.events.timers import Timer
from leadflow.scoring.state import LeadRow, ScoredLead

REEVALUATE = "scoring.reevaluate"
NURTURE_TOUCH = "scoring.nurture_touch"
RESCORE_BATCH = "scoring.rescore_batch"


def reevaluate_key(lead_id: uuid.UUID) -> str:
    return f"reevaluate:{lead_id}"


def nurture_key(lead_id: uuid.UUID) -> str:
    return f"nurture:{lead_id}"


def job_key(job_id: uuid.UUID, batch: int = 0) -> str:
    return f"rescore-job:{job_id}:{batch}"


@dataclass
class Draft:
    """What one decision has decided so far. ``state`` is the decision's own copy of the
    lead's state; timers keep the last word per key (a cancel after a schedule cancels)."""

    state: ScoredLead
    events: list[EventPayload] = field(default_factory=list)
    timers: dict[str, Timer | None] = field(default_factory=dict)

    @classmethod
    def of(cls, state: ScoredLead) -> Draft:
        return cls(state.copy())

    @property
    def lead(self) -> LeadRow:
        return self.state.row

    def append(self, *payloads: EventPayload) -> None:
        self.events.extend(payloads)

    def schedule(self, key: str, due: datetime, kind: str, payload: dict[str, Any]) -> None:
        self.timers[key] = Timer(key, kind, due, payload, self.lead.lead_id)

    def cancel(self, key: str) -> None:
        self.timers[key] = None

    def decision(self) -> Decision[ScoredLead]:
        return Decision(
            state=self.state,
            events=tuple(self.events),
            schedule=tuple(t for t in self.timers.values() if t is not None),
            cancel=tuple(k for k, t in self.timers.items() if t is None),
        )
