"""What scoring decides with: a lead's state (its row and its activities in the decay window)
and a batch's context (the model, tracks, predictive model and clock it is decided with).

Plain values, no I/O: ``decisions`` changes copies of them, ``batch`` loads and saves them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self, overload

from leadflow.events.lifecycle import (
    CUSTOMER_STAGES,
    TERMINAL_STAGES,
    Cycle,
    LeadLifecycle,
    Stage,
    TransitionRefused,
    move_for,
)
from leadflow.scoring.domain import Activity, LeadProfile, NurtureTrack, ScoringModel
from leadflow.scoring.predictive import LinearModel

# A stored stage or cycle to its enum member by a dict read, not an enum call: every stage
# move reads the lifecycle twice.
_STAGES = {stage.value: stage for stage in Stage}
_CYCLES = {cycle.value: cycle for cycle in Cycle}
# The stages of a lead marketing has handed over (its MQL counts): ``qualified``.
QUALIFIED_STAGES = frozenset({Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY})
# Stages that start afresh or leave sales: reaching one ends ``with_sales``.
_AWAY_FROM_SALES = frozenset({Stage.INQUIRY, Stage.NURTURE}) | TERMINAL_STAGES | CUSTOMER_STAGES
# Statuses that are scoring's own, not the lifecycle's: an imported history lead (never
# open here), a merged duplicate, an erased person.
HISTORY, MERGED, ERASED = "history", "merged", "erased"


def status_of(lifecycle: LeadLifecycle) -> str:
    """Scoring's lead status for a stage: ``open`` while a cycle runs (disqualified leads
    included: lifting the reason reinstates them), ``won`` for a customer, ``lost``,
    ``churned``."""
    if lifecycle.stage in CUSTOMER_STAGES:
        return "won"
    if lifecycle.stage is Stage.LOST:
        return "lost"
    if lifecycle.stage is Stage.CHURNED:
        return "churned"
    return "open"


class _Profile:
    """``LeadRow.profile``: a row's profile is kept as the JSON object it was read as and
    validated into a ``LeadProfile`` on first read. Most batches never read the profile of
    most of their leads (sales feedback on a qualified lead, a capture that replaces it);
    validating every loaded row's profile was a tenth of loading a batch."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    @overload
    def __get__(self, row: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, row: LeadRow, owner: type | None = None) -> LeadProfile: ...
    def __get__(self, row: LeadRow | None, owner: type | None = None) -> LeadProfile | Self:
        if row is None:
            # no default: the dataclass asks the class for one
            raise AttributeError(self.key)
        value = row.__dict__[self.key]
        if not isinstance(value, LeadProfile):
            value = row.__dict__[self.key] = LeadProfile.model_validate(value or {})
        return value

    def __set__(self, row: LeadRow, value: LeadProfile | Mapping[str, Any] | None) -> None:
        row.__dict__[self.key] = value


@dataclass
class LeadRow:
    """A lead's scoring row; a decision changes it through ``set``, which remembers the
    changed columns (``dirty``) so that saving writes only those.

    The lead's stage is the kernel's ``LeadLifecycle`` (``stage``, ``held_from``,
    ``cycle``), moved only by ``move``; ``status``, ``qualified``, ``disqualified`` and the
    end of ``with_sales`` are written from it (columns kept as a projection for indexes and
    readers)."""

    lead_id: uuid.UUID
    profile: _Profile = _Profile()
    status: str = "open"
    with_sales: bool = False
    qualified: bool = False
    qualified_at: datetime | None = None
    disqualified: bool = False
    disqualify_reason: str | None = None
    engagement_since: datetime | None = None
    score: dict[str, Any] | None = None
    scored_at: datetime | None = None
    reeval_at: datetime | None = None
    nurture_status: str = "none"
    track_id: str | None = None
    track_version: int | None = None
    nurture_step: int = 0
    nurture_reason: str | None = None
    nurture_next_due_at: datetime | None = None
    enrolled_at: datetime | None = None
    outcome: str | None = None
    # Predictive features and rule score frozen at qualification (or when sales took the
    # lead); None while the lead is in marketing's hands.
    snapshot: dict[str, Any] | None = None
    snapshot_at: datetime | None = None
    # The lifecycle's buying cycle (new_business | expansion) and the expansions opened.
    cycle: str = "new_business"
    expansions: int = 0
    # The lifecycle's stage (None: not seen yet) and, for a held lead, where it came from.
    stage: str | None = None
    held_from: str | None = None
    dirty: set[str] = field(default_factory=set)

    @property
    def lifecycle(self) -> LeadLifecycle:
        return LeadLifecycle(
            _STAGES[self.stage] if self.stage else None,
            _STAGES[self.held_from] if self.held_from else None,
            _CYCLES[self.cycle],
        )

    def move(self, event_type: str) -> None:
        """The stage move ``event_type`` makes (``leadflow.events.lifecycle``), and the
        stage flags written from it. Scoring's own events only move where the table allows
        (its decisions check the same conditions first). Another service's event that the
        table refuses from the stage scoring knows is taken as its producer recorded it
        (the producer's lifecycle checked it; scoring may not have seen every step, e.g. a
        lead it never scored): the lead is put at that event's stage."""
        current = self.lifecycle
        try:
            after = current.apply(event_type)
        except TransitionRefused:
            found = move_for(event_type, current.cycle)
            assert found is not None
            after = LeadLifecycle(found.target, cycle=found.cycle or current.cycle)
        self.adopt(after)

    def adopt(self, after: LeadLifecycle) -> None:
        """Take ``after`` as the lead's lifecycle and write the stage flags from it."""
        before = self.lifecycle
        self.set(
            stage=after.stage.value if after.stage else None,
            held_from=after.held_from.value if after.held_from else None,
            cycle=after.cycle.value,
        )
        stage = after.stage
        held = after.held_from
        self.set(
            qualified=stage in QUALIFIED_STAGES or held in QUALIFIED_STAGES,
            disqualified=stage is Stage.DISQUALIFIED,
        )
        if stage != before.stage and stage in _AWAY_FROM_SALES:
            self.set(with_sales=False)
        if self.status in (MERGED, ERASED):
            return
        status = status_of(after)
        if self.status != HISTORY or status != "open":
            self.set(status=status)

    def set(self, **changes: Any) -> None:
        for name, value in changes.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
                self.dirty.add(name)

    def copy(self) -> LeadRow:
        """A copy to change (the changed columns so far included). Every decision copies
        its lead's row: ``__dict__`` is copied directly, five times faster than
        ``dataclasses.replace`` (which re-runs ``__init__``)."""
        new = object.__new__(LeadRow)
        new.__dict__.update(self.__dict__)
        new.dirty = set(self.dirty)
        return new

    @classmethod
    def from_row(cls, row: Any) -> LeadRow:
        """From a row holding the lead's columns (other columns of the row are ignored)."""
        # by key (a Row's attribute read is a Python __getattr__); the profile as read
        return cls(**{name: row[name] for name in _ROW_FIELDS})


_ROW_FIELDS = tuple(f.name for f in fields(LeadRow) if f.name != "dirty")


@dataclass(frozen=True)
class OutcomeRecord:
    """A training example: an outcome with the snapshot of its sales cycle."""

    event_id: uuid.UUID
    lead_id: uuid.UUID
    outcome: str
    reason_code: str | None
    occurred_at: datetime
    snapshot: dict[str, Any]
    snapshot_at: datetime


@dataclass
class ScoredLead:
    """A lead as a decision sees it: its row, and its stored activities in the decay window
    (``activities_read`` False: not read, because nothing of the batch scores the lead) plus
    those the batch added. ``added`` and ``outcomes`` are what saving inserts;
    ``account_moved``: the published score moved, so the lead's account may have qualified."""

    row: LeadRow
    activities: list[Activity] = field(default_factory=list)
    activities_read: bool = True
    added: list[Activity] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    account_moved: bool = False

    @classmethod
    def new(cls, lead_id: uuid.UUID) -> ScoredLead:
        return cls(LeadRow(lead_id, LeadProfile()))

    @property
    def lead_id(self) -> uuid.UUID:
        return self.row.lead_id

    def copy(self) -> ScoredLead:
        return ScoredLead(
            row=self.row.copy(),
            activities=list(self.activities),
            activities_read=self.activities_read,
            added=list(self.added),
            outcomes=list(self.outcomes),
            account_moved=self.account_moved,
        )

    def add_activity(self, activity: Activity) -> bool:
        """Count ``activity`` unless the lead already has it (a redelivery): True if new."""
        key = activity.activity_id
        if key is not None and any(a.activity_id == key for a in self.activities):
            return False
        self.activities.append(activity)
        self.added.append(activity)
        return True


@dataclass(frozen=True)
class ScoringContext:
    """What every decision of a batch reads, fixed for the batch: the time it is decided
    at, the scoring model, the active nurture tracks, the promoted predictive model, and the
    customers (lead ids) of the accounts the batch's new people belong to."""

    now: datetime
    model: ScoringModel
    tracks: Sequence[NurtureTrack] = ()
    predictive: LinearModel | None = None
    customers: Mapping[str, frozenset[uuid.UUID]] = field(default_factory=dict)
    # Leads whose events in the batch are all sales feedback: their activities are read only
    # if they have no snapshot yet (nothing else of theirs is scored).
    sales_only: frozenset[uuid.UUID] = frozenset()

    def track(self, track_id: str | None) -> NurtureTrack | None:
        """An active track by id (None: unknown or retired)."""
        return next((t for t in self.tracks if t.id == track_id), None)
