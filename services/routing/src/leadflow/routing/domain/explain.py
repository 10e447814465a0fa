"""What a routing decision is and how it explains itself: the owner chosen, the rules
that did not match and the reps skipped, each with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RuleMissed:
    rule_id: str
    reason: str


@dataclass(frozen=True)
class RepSkipped:
    rep_id: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """Exactly one owner: a rep, or a queue when no rep qualifies."""

    assignee_kind: Literal["rep", "queue"]
    rep_id: str | None
    team_id: str | None
    queue_id: str | None
    rule_id: str | None
    rules_version: int
    method: str  # account_owner, direct, round_robin, least_loaded, queue, fallback
    reason: str
    missed: tuple[RuleMissed, ...] = ()
    skipped_reps: tuple[RepSkipped, ...] = ()
    pool: str | None = None
    pointer: Mapping[str, int] | None = None  # new round-robin credits of ``pool``

    def explanation(self) -> dict[str, object]:
        return {
            "assignee_kind": self.assignee_kind,
            "rep_id": self.rep_id,
            "team_id": self.team_id,
            "queue_id": self.queue_id,
            "rule_id": self.rule_id,
            "rules_version": self.rules_version,
            "method": self.method,
            "reason": self.reason,
            "rules_not_matched": [{"rule_id": m.rule_id, "reason": m.reason} for m in self.missed],
            "reps_skipped": [{"rep_id": s.rep_id, "reason": s.reason} for s in self.skipped_reps],
        }
