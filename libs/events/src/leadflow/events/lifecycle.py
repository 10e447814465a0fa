"""The lead lifecycle (ARCHITECTURE §2): stages, the one table of allowed moves, and their check.

``inquiry → (nurture ⇄) mql → sal → sql → opportunity → won | lost``, plus ``disqualified``
and ``on_hold`` from any open stage; after ``won`` the person is a ``customer``, a customer's
new buying cycle is an ``expansion`` that re-runs ``inquiry → … → won``, and a customer who
leaves is ``churned``. Every service checks a move here before appending the event that makes
it; a refused move raises :class:`TransitionRefused` (the service kit answers 409), it is
never silently applied.

The table is :data:`MOVES`, keyed by the catalogue event type that moves a lead, with
:data:`EXPANSION_MOVES` overriding a few entries while an expansion cycle runs; events not in
them (``lead.scored``, ``lead.assigned``, ``lead.contacted``, ``sla.*``, ...) never change the
stage. Choices this module makes, and why:

* **inquiry is the start.** ``lead.captured`` / ``inquiry.received`` start an unknown lead
  (``None``) at ``inquiry``. A service that never sees intake's events (routing, sla-monitor)
  starts an unseen lead at ``LeadLifecycle(Stage.INQUIRY)``: every lead was an inquiry first.
* **Hand-raises never fail.** Intake must accept every inquiry ("a lead is never lost"), so
  ``lead.captured`` / ``inquiry.received`` on a known lead leave an open, won or customer
  stage unchanged (a parked lead stays parked; a customer's hand-raise does not move it by
  itself: scoring decides whether it opens an expansion, see below), and re-engage a lost,
  disqualified or churned lead as a new ``inquiry`` of a new-business cycle (a win-back).
* **Same-stage repeats are no-ops** in open stages (a second ``nurture.enrolled`` switching
  track, a double-clicked accept, a hold whose reason changed): harmless, so not refused.
* **lost, disqualified and churned are terminal**: every stage-moving event is refused
  there except re-engagement — back to ``inquiry`` (a hand-raise) or, for lost and
  disqualified, to ``nurture`` (``nurture.enrolled`` or sales recycling the lead).
* **won → customer** (issue 30). ``deal.won`` reaches ``won``; routing records
  ``customer.became`` in the same transaction, which moves ``won → customer``: the person and
  their account are a customer from then on. ``won`` and ``customer`` are the
  :data:`CUSTOMER_STAGES`: a lead won before this rule (or an imported win) stays at ``won``
  and is treated as a customer everywhere, so no stored stage has to be rewritten.
* **Cycles, not new stages.** :class:`LeadLifecycle` carries a :class:`Cycle` besides the
  stage: ``new_business`` until the lead's first ``expansion.opened``. Scoring records
  ``expansion.opened`` when a customer (or a colleague at a customer account, still at
  ``inquiry``) raises a hand again or engages past the model's threshold; it moves the lead to
  ``inquiry`` with cycle ``expansion``, and the cycle re-runs the same stages
  (``mql → sal → sql → opportunity → won → customer``) through the same services: scored and
  qualified, routed (to the account owner), under SLAs, measured apart by the cycle.
  The cycle stays ``expansion`` through the later ``customer`` stage (the last cycle run);
  only a win-back hand-raise from ``lost``/``disqualified``/``churned`` starts a
  ``new_business`` cycle again.
* **An expansion that does not close won leaves a customer a customer**
  (:data:`EXPANSION_MOVES`): ``deal.lost``, ``history.deal_lost`` and ``lead.disqualified``
  during an expansion cycle move the lead back to ``customer`` instead of ``lost`` /
  ``disqualified`` (the lost expansion deal still counts as lost in the expansion funnel).
  A recycled or rejected expansion nurtures within the expansion cycle.
* **customer.churned** comes from the CRM (routing's ``POST /v1/routing/crm/events`` with
  outcome ``churned``): a customer (``won``, ``customer``, or any open stage of an expansion
  cycle) moves to ``churned``, which ends customer status.
* **recycled is a transition, not a stage**: ``lead.recycled`` moves to ``nurture`` from
  ``mql``, ``sal``, ``sql`` or ``opportunity`` (and re-engages lost/disqualified leads);
  ``lead.rejected`` (a rep returns the lead to marketing) moves ``mql``/``sal`` → ``nurture``.
  ``mql`` may be reached again from ``nurture``, and an MQL that cools off may go back to
  ``nurture`` (``nurture.enrolled``).
* **lead.reinstated** (scoring: the disqualification no longer holds, e.g. a do-not-contact
  request was lifted) takes a disqualified lead back to ``inquiry``; from there it
  qualifies, nurtures or waits like any other lead, so every service sees the same stage.
* **deal.won / deal.lost need an opportunity.** A lead that dies before an opportunity is
  recycled or disqualified, which keeps "lost" meaning "lost deal" in the funnel figures.
* **Imported history closes from any open stage** (``history.deal_won`` / ``deal_lost``):
  the lead's sales cycle happened in another system, so there is no opportunity here.
* **on_hold pauses the stage it came from** (kept as ``held_from``): from hold a lead may go
  to ``nurture`` or ``disqualified`` at any time, return to ``held_from`` (the event that
  reaches that stage, e.g. ``lead.accepted`` for ``sal``), or make any move allowed from
  ``held_from`` (a parked opportunity can be won or lost directly). Without a known
  ``held_from`` only ``nurture`` and ``disqualified`` are allowed from hold, so a service that
  stores stages should store ``held_from`` and ``cycle`` too (the columns of
  :class:`LeadLifecycle`).

Cross-topic note: a consumer of several topics (analytics) can see causally later events of
one producer before earlier ones of another; such consumers should treat
``TransitionRefused`` as data to report, not as a poison record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    INQUIRY = "inquiry"
    NURTURE = "nurture"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"
    DISQUALIFIED = "disqualified"
    ON_HOLD = "on_hold"
    CUSTOMER = "customer"
    CHURNED = "churned"


class Cycle(StrEnum):
    """Which buying cycle a lead's stages belong to (measured apart in analytics)."""

    NEW_BUSINESS = "new_business"
    EXPANSION = "expansion"


# Open stages where work is still under way, in funnel order (on_hold pauses one of them).
ACTIVE_STAGES: frozenset[Stage] = frozenset(
    {Stage.INQUIRY, Stage.NURTURE, Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY}
)
OPEN_STAGES: frozenset[Stage] = ACTIVE_STAGES | {Stage.ON_HOLD}
# A won person is a customer: ``won`` until routing's ``customer.became``, ``customer`` after.
CUSTOMER_STAGES: frozenset[Stage] = frozenset({Stage.WON, Stage.CUSTOMER})
TERMINAL_STAGES: frozenset[Stage] = frozenset({Stage.LOST, Stage.DISQUALIFIED, Stage.CHURNED})
REENGAGEABLE_STAGES: frozenset[Stage] = TERMINAL_STAGES
# Funnel order, used to print tables; not a rule.
STAGE_ORDER: tuple[Stage, ...] = (
    Stage.INQUIRY,
    Stage.NURTURE,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.WON,
    Stage.CUSTOMER,
    Stage.LOST,
    Stage.DISQUALIFIED,
    Stage.ON_HOLD,
    Stage.CHURNED,
)


@dataclass(frozen=True, slots=True)
class Move:
    """What one event type does to a lead's stage.

    ``sources``: stages it moves from (``None`` = a lead not seen before). ``keeps``: stages
    where the event is accepted but leaves the stage as it is (hand-raises on known leads).
    ``cycle``: the cycle a move from ``sources`` starts (``None``: the lead's cycle goes on).
    """

    target: Stage
    sources: frozenset[Stage | None]
    keeps: frozenset[Stage] = frozenset()
    cycle: Cycle | None = None


def _from(*stages: Stage | None) -> frozenset[Stage | None]:
    return frozenset(stages)


_HAND_RAISE = Move(
    Stage.INQUIRY,
    sources=_from(None, *REENGAGEABLE_STAGES),
    keeps=OPEN_STAGES | CUSTOMER_STAGES,
    cycle=Cycle.NEW_BUSINESS,  # a win-back after lost / disqualified / churned
)

# THE table of allowed transitions. Everything else in this module derives from it.
MOVES: Mapping[str, Move] = {
    "lead.captured": _HAND_RAISE,
    "inquiry.received": _HAND_RAISE,
    "nurture.enrolled": Move(
        Stage.NURTURE,
        _from(Stage.INQUIRY, Stage.MQL, Stage.ON_HOLD, Stage.LOST, Stage.DISQUALIFIED),
    ),
    "lead.qualified": Move(Stage.MQL, _from(Stage.INQUIRY, Stage.NURTURE)),
    "lead.accepted": Move(Stage.SAL, _from(Stage.MQL)),
    "lead.rejected": Move(Stage.NURTURE, _from(Stage.MQL, Stage.SAL, Stage.ON_HOLD)),
    "lead.recycled": Move(
        Stage.NURTURE,
        _from(
            Stage.MQL,
            Stage.SAL,
            Stage.SQL,
            Stage.OPPORTUNITY,
            Stage.ON_HOLD,
            Stage.LOST,
            Stage.DISQUALIFIED,
        ),
    ),
    "lead.sales_qualified": Move(Stage.SQL, _from(Stage.SAL)),
    "opportunity.opened": Move(Stage.OPPORTUNITY, _from(Stage.SQL)),
    "deal.won": Move(Stage.WON, _from(Stage.OPPORTUNITY)),
    "deal.lost": Move(Stage.LOST, _from(Stage.OPPORTUNITY)),
    "lead.disqualified": Move(Stage.DISQUALIFIED, frozenset(OPEN_STAGES)),
    "lead.reinstated": Move(Stage.INQUIRY, _from(Stage.DISQUALIFIED)),
    # Imported history: a lead from another system closes as it closed there.
    "history.deal_won": Move(Stage.WON, frozenset(OPEN_STAGES)),
    "history.deal_lost": Move(Stage.LOST, frozenset(OPEN_STAGES)),
    "lead.put_on_hold": Move(Stage.ON_HOLD, frozenset(ACTIVE_STAGES)),
    # After the close (issue 30): the customer, its expansion cycles, its churn.
    "customer.became": Move(Stage.CUSTOMER, _from(Stage.WON)),
    "expansion.opened": Move(
        Stage.INQUIRY, _from(*CUSTOMER_STAGES, Stage.INQUIRY), cycle=Cycle.EXPANSION
    ),
    "customer.churned": Move(Stage.CHURNED, frozenset(CUSTOMER_STAGES)),
}

# Where an expansion cycle differs: a customer stays a customer when the cycle ends without a
# win, may churn from any stage of the cycle, and a repeated opening is a no-op.
EXPANSION_MOVES: Mapping[str, Move] = {
    "deal.lost": Move(Stage.CUSTOMER, _from(Stage.OPPORTUNITY)),
    "history.deal_lost": Move(Stage.CUSTOMER, frozenset(OPEN_STAGES)),
    "lead.disqualified": Move(Stage.CUSTOMER, frozenset(OPEN_STAGES)),
    "expansion.opened": Move(Stage.INQUIRY, frozenset(CUSTOMER_STAGES), keeps=OPEN_STAGES),
    "customer.churned": Move(Stage.CHURNED, frozenset(CUSTOMER_STAGES | OPEN_STAGES)),
}

STAGE_CHANGING_EVENTS: frozenset[str] = frozenset(MOVES.keys() | EXPANSION_MOVES.keys())


def _stage_name(stage: Stage | None) -> str:
    return "(new lead)" if stage is None else stage.value


class TransitionRefused(Exception):
    """A stage move the lifecycle does not allow; the service kit answers 409 problem+json."""

    def __init__(
        self,
        current: Stage | None,
        target: Stage | None,
        event_type: str,
        reason: str = "",
        *,
        held_from: Stage | None = None,
    ) -> None:
        message = (
            f"{event_type} cannot move a lead from {_stage_name(current)} "
            f"to {_stage_name(target) if target is not None else '(no stage)'}"
        )
        if reason:
            message = f"{message}: {reason}"
        super().__init__(message)
        self.current = current
        self.target = target
        self.event_type = event_type
        self.reason = reason
        self.held_from = held_from
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_refused,
            (self.current, self.target, self.event_type, self.reason, self.held_from),
        )


def _rebuild_refused(
    current: Stage | None,
    target: Stage | None,
    event_type: str,
    reason: str,
    held_from: Stage | None,
) -> TransitionRefused:
    return TransitionRefused(current, target, event_type, reason, held_from=held_from)


def move_for(event_type: str, cycle: Cycle = Cycle.NEW_BUSINESS) -> Move | None:
    """The table entry for ``event_type`` in ``cycle`` (``None``: it never moves a lead)."""
    if cycle is Cycle.EXPANSION and event_type in EXPANSION_MOVES:
        return EXPANSION_MOVES[event_type]
    return MOVES.get(event_type)


def target_stage(event_type: str, cycle: Cycle = Cycle.NEW_BUSINESS) -> Stage | None:
    """The stage ``event_type`` moves a lead to, or ``None`` if it never changes the stage."""
    move = move_for(event_type, cycle)
    return move.target if move is not None else None


def _allowed_from(move: Move) -> str:
    names = [_stage_name(s) for s in [None, *STAGE_ORDER] if s in move.sources]
    return ", ".join(names)


@dataclass(frozen=True, slots=True)
class LeadLifecycle:
    """A lead's stage plus the history a rule needs: where a held lead came from, and which
    buying cycle (new business or expansion) its stages belong to."""

    stage: Stage | None = None
    held_from: Stage | None = None
    cycle: Cycle = Cycle.NEW_BUSINESS

    def __post_init__(self) -> None:
        if self.stage is not None and not isinstance(self.stage, Stage):
            object.__setattr__(self, "stage", Stage(self.stage))
        if not isinstance(self.cycle, Cycle):
            object.__setattr__(self, "cycle", Cycle(self.cycle or Cycle.NEW_BUSINESS))
        if self.held_from is not None:
            held: Stage | None = Stage(self.held_from)
            if self.stage is not Stage.ON_HOLD:
                held = None  # only a held lead remembers where it came from
            elif held not in ACTIVE_STAGES:
                raise ValueError(f"held_from must be an active stage, not {held}")
            object.__setattr__(self, "held_from", held)

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    @property
    def is_terminal(self) -> bool:
        return self.stage in TERMINAL_STAGES

    @property
    def is_customer(self) -> bool:
        """A customer: won, customer, or in the middle of an expansion cycle."""
        return self.stage in CUSTOMER_STAGES or (
            self.cycle is Cycle.EXPANSION and self.stage in OPEN_STAGES
        )

    def apply(self, event_type: str) -> LeadLifecycle:
        """The lifecycle after ``event_type``; raises :class:`TransitionRefused` if not allowed."""
        move = move_for(event_type, self.cycle)
        if move is None:
            return self
        current = self.stage
        cycle = move.cycle or self.cycle
        repeat = current is not None and current == move.target and current in OPEN_STAGES
        if repeat and cycle is self.cycle:
            return self  # harmless repeat; a held lead keeps its held_from
        if current in move.keeps:
            return self
        if current in move.sources:
            held = current if move.target is Stage.ON_HOLD else None
            return LeadLifecycle(move.target, held, cycle)
        resumable = self.held_from is not None and (
            move.target == self.held_from or self.held_from in move.sources
        )
        if current is Stage.ON_HOLD and resumable:
            return LeadLifecycle(move.target, cycle=cycle)
        raise TransitionRefused(
            current,
            move.target,
            event_type,
            self._refusal_reason(move),
            held_from=self.held_from,
        )

    def _refusal_reason(self, move: Move) -> str:
        if self.stage is Stage.CHURNED:
            return "churned is terminal except for a new hand-raise (inquiry)"
        if self.stage in TERMINAL_STAGES:
            return f"{self.stage} is terminal except for re-engagement (inquiry or nurture)"
        reason = f"allowed only from {_allowed_from(move)}"
        if self.cycle is Cycle.EXPANSION:
            reason += " (in an expansion cycle)"
        if self.stage is Stage.ON_HOLD:
            if self.held_from is None:
                reason += " (the stage the lead was held from is unknown)"
            else:
                reason += f", or from on_hold held from one of them (held from {self.held_from})"
        return reason

    def allowed_events(self) -> list[str]:
        """Stage-changing event types accepted now (including no-op repeats), sorted."""
        allowed = []
        for event_type in sorted(MOVES.keys() | EXPANSION_MOVES.keys()):
            try:
                self.apply(event_type)
            except TransitionRefused:
                continue
            allowed.append(event_type)
        return allowed

    @classmethod
    def replay(
        cls, event_types: Iterable[str], start: LeadLifecycle | None = None
    ) -> LeadLifecycle:
        """Fold a lead's events in order; the first refused one raises."""
        state = start if start is not None else cls()
        for event_type in event_types:
            state = state.apply(event_type)
        return state


def check_transition(
    current: Stage | None,
    target: Stage,
    event_type: str,
    *,
    held_from: Stage | None = None,
    cycle: Cycle = Cycle.NEW_BUSINESS,
) -> None:
    """Raise :class:`TransitionRefused` unless ``event_type`` may take ``current`` to ``target``.

    Accepted no-ops (a repeat, a hand-raise on a known lead) pass: the event is allowed even
    though the stage stays ``current``.
    """
    move = move_for(event_type, cycle)
    if move is None or move.target != target:
        actual = target_stage(event_type, cycle)
        raise TransitionRefused(
            current,
            target,
            event_type,
            f"{event_type} moves a lead to {_stage_name(actual) if actual else 'no other stage'}",
            held_from=held_from,
        )
    LeadLifecycle(current, held_from, cycle).apply(event_type)


def stage_after(
    current: Stage | None,
    event_type: str,
    *,
    held_from: Stage | None = None,
    cycle: Cycle = Cycle.NEW_BUSINESS,
) -> Stage | None:
    """The stage after ``event_type`` (unchanged for events that do not move leads)."""
    return LeadLifecycle(current, held_from, cycle).apply(event_type).stage


def replay(event_types: Iterable[str]) -> Stage | None:
    """The stage of a lead whose events (of all producers, in order) are ``event_types``."""
    return LeadLifecycle.replay(event_types).stage


def transition_table(
    cycle: Cycle = Cycle.NEW_BUSINESS,
) -> dict[Stage | None, dict[Stage, list[str]]]:
    """``{from: {to: [event types]}}`` in ``cycle``, derived from :data:`MOVES` and
    :data:`EXPANSION_MOVES` (no on_hold resumes)."""
    table: dict[Stage | None, dict[Stage, list[str]]] = {}
    for event_type in sorted(MOVES.keys() | EXPANSION_MOVES.keys()):
        move = move_for(event_type, cycle)
        if move is None:
            continue
        for source in move.sources:
            table.setdefault(source, {}).setdefault(move.target, []).append(event_type)
    return table


__all__ = [
    "ACTIVE_STAGES",
    "CUSTOMER_STAGES",
    "EXPANSION_MOVES",
    "MOVES",
    "OPEN_STAGES",
    "REENGAGEABLE_STAGES",
    "STAGE_CHANGING_EVENTS",
    "TERMINAL_STAGES",
    "Cycle",
    "LeadLifecycle",
    "Move",
    "Stage",
    "TransitionRefused",
    "check_transition",
    "move_for",
    "replay",
    "stage_after",
    "target_stage",
    "transition_table",
]
