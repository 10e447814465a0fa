"""Decision state (open loads, today's counts, round-robin credits) and the pure
availability and pick functions that read it: who can take a lead now, and which of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from leadflow.routing.domain.explain import Placement
from leadflow.routing.domain.roster import Rep, Roster


@dataclass(frozen=True)
class RoutingState:
    """What the database knows at decision time.

    ``pointers[pool][rep]`` is the smooth weighted round-robin credit of each rep in a
    pool; ``new_counts[(rep, rep_local_day)]`` counts today's new assignments.
    """

    open_counts: Mapping[str, int] = field(default_factory=dict)
    new_counts: Mapping[tuple[str, date], int] = field(default_factory=dict)
    pointers: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def open_of(self, rep_id: str) -> int:
        return self.open_counts.get(rep_id, 0)

    def new_today(self, rep: Rep, now: datetime) -> int:
        return self.new_counts.get((rep.id, rep.local_day(now)), 0)


@dataclass
class LiveState:
    """Decision state that moves as a batch's decisions are made one after another in memory.

    Deciding N leads against a ``LiveState`` gives exactly the choices N sequential
    decisions would (each sees the counts and credits the previous one left), while the
    database is read once before and written once after. ``new_delta`` and ``dirty_pools``
    say what to write back.
    """

    open_counts: dict[str, int] = field(default_factory=dict)
    new_counts: dict[tuple[str, date], int] = field(default_factory=dict)
    pointers: dict[str, Mapping[str, int]] = field(default_factory=dict)
    new_delta: dict[tuple[str, date], int] = field(default_factory=dict)
    dirty_pools: set[str] = field(default_factory=set)

    def view(self) -> RoutingState:
        """A read-only view sharing these dicts: later records show through it."""
        return RoutingState(self.open_counts, self.new_counts, self.pointers)

    def release(self, rep_id: str) -> None:
        """One of ``rep_id``'s open leads left (it left sales, or got another owner)."""
        self.open_counts[rep_id] = self.open_counts.get(rep_id, 0) - 1

    def record(
        self,
        decision: Placement,
        roster: Roster,
        now: datetime,
        *,
        released: str | None = None,
    ) -> None:
        """Account for ``decision``: the chosen rep's open load and day count grow,
        ``released`` (the rep who held the lead open before) drops one, the pool's credits
        move on."""
        if released is not None:
            self.release(released)
        if decision.rep_id is not None:
            self.open_counts[decision.rep_id] = self.open_counts.get(decision.rep_id, 0) + 1
            rep = roster.reps.get(decision.rep_id)
            if rep is not None:
                key = (rep.id, rep.local_day(now))
                self.new_counts[key] = self.new_counts.get(key, 0) + 1
                self.new_delta[key] = self.new_delta.get(key, 0) + 1
        if decision.pool is not None and decision.pointer is not None:
            self.pointers[decision.pool] = dict(decision.pointer)
            self.dirty_pools.add(decision.pool)


def unavailable_reason(
    rep: Rep, state: RoutingState, now: datetime, *, exclude: Iterable[str] = ()
) -> str | None:
    """Why ``rep`` cannot take a new lead at ``now``, or None when they can."""
    if rep.id in (exclude if isinstance(exclude, frozenset | set) else set(exclude)):
        return "excluded (breached the SLA on this lead)"
    if not rep.active:
        return "paused"
    for ooo in rep.out_of_office:
        if ooo.start <= now < ooo.end:
            return f"out of office until {ooo.end.isoformat()}"
    hours = rep.working_hours
    if hours is not None and not hours.is_open(now):
        local = now.astimezone(hours.zone)
        return f"outside working hours ({local.strftime('%a %H:%M')} {hours.timezone})"
    if rep.max_open is not None and state.open_of(rep.id) >= rep.max_open:
        return f"at open-lead cap ({state.open_of(rep.id)}/{rep.max_open})"
    if rep.max_new_per_day is not None and state.new_today(rep, now) >= rep.max_new_per_day:
        return f"at daily cap ({state.new_today(rep, now)}/{rep.max_new_per_day})"
    return None


def smooth_wrr(eligible: Sequence[Rep], credits: Mapping[str, int]) -> tuple[Rep, dict[str, int]]:
    """Smooth weighted round-robin (nginx): a deterministic function of the credits.

    Every eligible rep earns its weight; the richest (ties: lowest id) is chosen and pays
    the total. Over any run of ``sum(weights)`` picks each rep is chosen exactly
    ``weight`` times, and picks are spread out rather than bunched. Reps not eligible this
    time neither earn nor pay, so a rep back from a break does not get a burst.
    """
    if not eligible:
        raise ValueError("no eligible rep")
    new = dict(credits)
    total = 0
    for rep in eligible:
        new[rep.id] = new.get(rep.id, 0) + rep.weight
        total += rep.weight
    chosen = min(eligible, key=lambda r: (-new[r.id], r.id))
    new[chosen.id] -= total
    return chosen, new


def least_loaded(eligible: Sequence[Rep], state: RoutingState, now: datetime) -> Rep:
    """Fewest open leads per unit of weight; ties go to fewer new today, then id."""
    if not eligible:
        raise ValueError("no eligible rep")
    return min(
        eligible,
        key=lambda r: (
            Decimal(state.open_of(r.id)) / Decimal(r.weight),
            state.new_today(r, now),
            r.id,
        ),
    )
