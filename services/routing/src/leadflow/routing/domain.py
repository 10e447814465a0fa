"""Routing decisions: who gets a qualified lead, and why. Pure: no I/O, no clock.

Everything the decision needs is passed in (the roster of reps/teams/queues/account
owners, the published rule set, the load and round-robin pointer state, ``now``), and
everything it changes comes back in the ``Decision`` (the pointer state to persist), so
two replicas reading the same state from the database make the same choice.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from leadflow.events.catalogue.common import LeadSnapshot

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the roster ------------------------------------------------------------------------


class WorkingWindow(_Model):
    """Hours a rep takes leads on some weekdays, in the rep's own time zone."""

    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="0 = Monday ... 6 = Sunday")
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("days")
    @classmethod
    def _days_in_week(cls, days: list[int]) -> list[int]:
        if not days or any(d < 0 or d > 6 for d in days):
            raise ValueError("days must be weekday numbers 0 (Monday) .. 6 (Sunday)")
        return sorted(set(days))

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingWindow:
        if self.start >= self.end:
            raise ValueError("start must be before end (split overnight shifts in two windows)")
        return self


class OutOfOffice(_Model):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class Rep(_Model):
    """A salesperson who can own leads."""

    id: str = Field(pattern=_ID)
    name: str = ""
    email: str | None = Field(
        default=None,
        pattern=_EMAIL,
        description="where notify tells the rep of a new lead (assignment e-mails, SLA warnings)",
    )
    team_id: str | None = None
    territories: list[str] = Field(
        default=[], description="countries/regions covered; empty = everywhere"
    )
    timezone: str = "UTC"
    working_hours: list[WorkingWindow] = Field(default=[], description="empty = always available")
    out_of_office: list[OutOfOffice] = []
    active: bool = True
    weight: int = Field(default=1, ge=1, le=1000)
    max_open: int | None = Field(default=None, ge=0)
    max_new_per_day: int | None = Field(default=None, ge=0)
    _territories: frozenset[str] | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {tz!r}") from exc
        return tz

    @field_validator("territories")
    @classmethod
    def _norm_territories(cls, values: list[str]) -> list[str]:
        return [v.strip().upper() for v in values if v.strip()]

    def local_day(self, now: datetime) -> date:
        """The rep's calendar day at ``now``: daily caps reset at the rep's midnight."""
        return _local_day(self.timezone, now)

    def model_post_init(self, context: object) -> None:
        everywhere = not self.territories or "*" in self.territories
        self._territories = None if everywhere else frozenset(self.territories)

    def covers(self, lead: LeadSnapshot) -> bool:
        territories = cast(dict[str, Any], self.__pydantic_private__)["_territories"]
        if territories is None:
            return True
        return any(k and k.upper() in territories for k in (lead.country, lead.region))


@lru_cache(maxsize=1024)
def _local_day(timezone: str, now: datetime) -> date:
    # A batch decides at one ``now``: each time zone's day is worked out once, not per rep.
    return now.astimezone(ZoneInfo(timezone)).date()


class Team(_Model):
    id: str = Field(pattern=_ID)
    name: str = ""
    members: list[str] = []
    manager_email: str | None = Field(
        default=None,
        pattern=_EMAIL,
        description="the team's manager: told of SLA breaches and escalations by notify",
    )
    queue_id: str | None = Field(default=None, description="where the team's overflow waits")


class Queue(_Model):
    """A place a lead waits when no rep can take it: it is never dropped."""

    id: str = Field(pattern=_ID)
    name: str = ""
    team_id: str | None = None


@dataclass(frozen=True)
class Roster:
    """Reps, teams, queues and account owners as the admin API configured them."""

    reps: Mapping[str, Rep] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    queues: Mapping[str, Queue] = field(default_factory=dict)
    account_owners: Mapping[str, str] = field(default_factory=dict)  # account id/domain -> rep
    _members: dict[str, list[Rep]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(
        cls,
        reps: Iterable[Rep] = (),
        teams: Iterable[Team] = (),
        queues: Iterable[Queue] = (),
        account_owners: Mapping[str, str] | None = None,
    ) -> Roster:
        return cls(
            reps={r.id: r for r in reps},
            teams={t.id: t for t in teams},
            queues={q.id: q for q in queues},
            account_owners={k.lower(): v for k, v in (account_owners or {}).items()},
        )

    def team_members(self, team_id: str) -> list[Rep]:
        """Members listed on the team plus reps whose ``team_id`` names it, in id order."""
        members = self._members.get(team_id)
        if members is None:  # worked out once per roster (the roster never changes)
            ids = set(self.teams[team_id].members) if team_id in self.teams else set()
            ids |= {r.id for r in self.reps.values() if r.team_id == team_id}
            members = self._members[team_id] = [self.reps[i] for i in sorted(ids) if i in self.reps]
        return list(members)


# -- rules -----------------------------------------------------------------------------

_GRADE = re.compile(r"^[A-D][+-]?$")


_TEXT_CONDITIONS = ("country", "region", "industry", "product_interest", "channel", "campaign")


@lru_cache(maxsize=4096)
def _not_in(name: str, actual: str | None, wanted: tuple[str, ...]) -> str:
    # The same few values miss the same rules again and again: word each miss once.
    return f"{name} {actual!r} not in {list(wanted)}"


class Conditions(_Model):
    """All given conditions must hold (AND); values within one condition are OR-ed.

    String matches are case-insensitive. A grade value of just a letter ("A") matches
    every grade with that letter ("A+", "A", "A-").
    """

    country: list[str] | None = None
    region: list[str] | None = None
    industry: list[str] | None = None
    product_interest: list[str] | None = None
    channel: list[str] | None = None  # the source
    campaign: list[str] | None = None
    grade: list[str] | None = None
    company_size_min: int | None = Field(default=None, ge=0)
    company_size_max: int | None = Field(default=None, ge=0)
    # Derived from the fields only (never from use), so equal models stay equal.
    _folded: list[tuple[str, tuple[str, ...], frozenset[str]]] = PrivateAttr(default_factory=list)
    _grade_sets: tuple[frozenset[str], frozenset[str]] = PrivateAttr(
        default=(frozenset(), frozenset())
    )

    @field_validator("grade")
    @classmethod
    def _grades(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        out = [v.strip().upper() for v in values]
        bad = [v for v in out if not _GRADE.match(v)]
        if bad:
            raise ValueError(f"grades must look like A+, B, C- (got {bad})")
        return out

    def model_post_init(self, context: object) -> None:
        # The case-folded value sets, built once per rule set rather than once per lead.
        self._folded = [
            (name, tuple(wanted), frozenset(w.casefold() for w in wanted))
            for name in _TEXT_CONDITIONS
            if (wanted := getattr(self, name)) is not None
        ]
        grades = self.grade or []
        # "A" covers A+, A and A-; "A+" only itself
        self._grade_sets = (frozenset(grades), frozenset(w for w in grades if len(w) == 1))

    def miss(self, lead: LeadSnapshot) -> str | None:
        """Why the lead does not match, or None when it does."""
        # straight from the private dict: pydantic's attribute fallback is slow on a hot path
        private = cast(dict[str, Any], self.__pydantic_private__)
        for name, wanted, folded in private["_folded"]:
            actual = getattr(lead, name)
            if actual is None or actual.casefold() not in folded:
                return _not_in(name, actual, wanted)
        if self.grade is not None:
            g = (lead.grade or "").upper()
            exact, letters = private["_grade_sets"]
            if g not in exact and g[:1] not in letters:
                return f"grade {lead.grade!r} not in {self.grade}"
        size = lead.company_size
        if self.company_size_min is not None and (size is None or size < self.company_size_min):
            return f"company_size {size!r} below {self.company_size_min}"
        if self.company_size_max is not None and (size is None or size > self.company_size_max):
            return f"company_size {size!r} above {self.company_size_max}"
        return None


class Target(_Model):
    kind: Literal["rep", "team", "queue"]
    rep_id: str | None = None
    team_id: str | None = None
    queue_id: str | None = None
    strategy: Literal["round_robin", "least_loaded"] = "round_robin"
    respect_territories: bool = True

    @model_validator(mode="after")
    def _has_id(self) -> Target:
        needed = {"rep": self.rep_id, "team": self.team_id, "queue": self.queue_id}[self.kind]
        if not needed:
            raise ValueError(f"a {self.kind} target needs {self.kind}_id")
        return self


class Rule(_Model):
    id: str = Field(pattern=_ID)
    name: str = ""
    enabled: bool = True
    when: Conditions = Conditions()
    target: Target
    fallback_queue_id: str | None = Field(
        default=None, description="where a matched lead waits if no rep of the target is free"
    )


class RuleSet(_Model):
    """One published, ordered rule list; the first rule that can place the lead wins."""

    version: int = 0
    rules: list[Rule] = []
    default_queue_id: str = "unassigned"
    account_owner_first: bool = True

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for r in rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id!r} appears twice")
            seen.add(r.id)
        return rules


def check_references(rules: RuleSet, roster: Roster) -> list[dict[str, str]]:
    """Problems (field, message) with a rule set that names reps/teams/queues we don't have."""
    errors: list[dict[str, str]] = []
    for i, r in enumerate(rules.rules):
        t = r.target
        where = f"rules[{i}].target"
        if t.kind == "rep" and t.rep_id not in roster.reps:
            errors.append({"field": f"{where}.rep_id", "message": f"unknown rep {t.rep_id!r}"})
        if t.kind == "team" and t.team_id not in roster.teams:
            errors.append({"field": f"{where}.team_id", "message": f"unknown team {t.team_id!r}"})
        if t.kind == "queue" and t.queue_id not in roster.queues:
            errors.append(
                {"field": f"{where}.queue_id", "message": f"unknown queue {t.queue_id!r}"}
            )
        if r.fallback_queue_id is not None and r.fallback_queue_id not in roster.queues:
            errors.append(
                {
                    "field": f"rules[{i}].fallback_queue_id",
                    "message": f"unknown queue {r.fallback_queue_id!r}",
                }
            )
    return errors


def users_of(kind: str, id_: str, rules: RuleSet, roster: Roster) -> list[dict[str, str]]:
    """What in the configuration in force names the rep, team or queue ``id_`` (field,
    message): deleting it would leave a rule placing leads nowhere, a team without its
    overflow queue or an account owned by nobody, so a delete is refused while any remain."""
    uses: list[dict[str, str]] = []
    for i, r in enumerate(rules.rules):
        if getattr(r.target, f"{kind}_id") == id_ and r.target.kind == kind:
            uses.append({"field": f"rules[{i}].target", "message": f"rule {r.id!r} targets it"})
        if kind == "queue" and r.fallback_queue_id == id_:
            uses.append(
                {
                    "field": f"rules[{i}].fallback_queue_id",
                    "message": f"rule {r.id!r} falls back to it",
                }
            )
    if kind == "queue" and rules.default_queue_id == id_:
        uses.append({"field": "default_queue_id", "message": "the rule set's default queue"})
    if kind == "queue":
        uses += [
            {"field": f"teams[{t.id}].queue_id", "message": f"team {t.id!r} overflows to it"}
            for t in roster.teams.values()
            if t.queue_id == id_
        ]
    if kind == "team":
        uses += [
            {"field": f"reps[{r.id}].team_id", "message": f"rep {r.id!r} is in it"}
            for r in roster.reps.values()
            if r.team_id == id_
        ]
        uses += [
            {"field": f"queues[{q.id}].team_id", "message": f"queue {q.id!r} belongs to it"}
            for q in roster.queues.values()
            if q.team_id == id_
        ]
    if kind == "rep":
        uses += [
            {"field": f"accounts[{key}]", "message": f"owns account {key!r}"}
            for key, owner in sorted(roster.account_owners.items())
            if owner == id_
        ]
    return uses


# -- state -----------------------------------------------------------------------------


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
        decision: Decision,
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
    if rep.working_hours:
        local = now.astimezone(ZoneInfo(rep.timezone))
        t = local.time().replace(tzinfo=None)
        if not any(local.weekday() in w.days and w.start <= t < w.end for w in rep.working_hours):
            return f"outside working hours ({local.strftime('%a %H:%M')} {rep.timezone})"
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


# -- the decision ----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleMissed:
    rule_id: str
    reason: str


@dataclass(frozen=True)
class RepSkipped:
    rep_id: str
    reason: str


@dataclass(frozen=True)
class Decision:
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


def pool_key(team_id: str) -> str:
    return f"team:{team_id}"


def lead_for_rules(lead: LeadSnapshot, grade: str | None = None) -> LeadSnapshot:
    """The snapshot rules match on, with the qualifying event's grade when it has none."""
    if grade and not lead.grade:
        return lead.model_copy(update={"grade": grade})
    return lead


class _Explain:
    """Collects the explanation while rules are tried, then seals it into a Decision."""

    def __init__(self, rules: RuleSet) -> None:
        self.version = rules.version
        self.missed: list[RuleMissed] = []
        self.skipped: list[RepSkipped] = []
        self._seen: set[str] = set()

    def skip(self, rep_id: str, reason: str) -> None:
        if rep_id not in self._seen:
            self._seen.add(rep_id)
            self.skipped.append(RepSkipped(rep_id, reason))

    def to_rep(
        self,
        rep: Rep,
        *,
        team_id: str | None,
        rule_id: str | None,
        method: str,
        reason: str,
        pool: str | None = None,
        pointer: Mapping[str, int] | None = None,
    ) -> Decision:
        return Decision(
            "rep",
            rep.id,
            team_id,
            None,
            rule_id,
            self.version,
            method,
            reason,
            tuple(self.missed),
            tuple(self.skipped),
            pool,
            pointer,
        )

    def to_queue(
        self,
        queue_id: str,
        *,
        team_id: str | None,
        rule_id: str | None,
        method: str,
        reason: str,
    ) -> Decision:
        return Decision(
            "queue",
            None,
            team_id,
            queue_id,
            rule_id,
            self.version,
            method,
            reason,
            tuple(self.missed),
            tuple(self.skipped),
        )


def choose_assignee(
    lead: LeadSnapshot,
    rules: RuleSet,
    roster: Roster,
    state: RoutingState,
    now: datetime,
    *,
    exclude: Iterable[str] = (),
) -> Decision:
    """Pick the owner of ``lead``: account owner, then the first rule that can place it,
    then the rule set's default queue. Never returns "nobody".

    ``exclude`` names reps that must not get it (the one who breached the SLA).
    """
    excluded = frozenset(exclude)
    ex = _Explain(rules)

    if rules.account_owner_first:
        for key in (lead.account_id, lead.account_domain):
            owner_id = roster.account_owners.get(key.lower()) if key else None
            if owner_id is None:
                continue
            owner = roster.reps.get(owner_id)
            if owner is None:
                ex.skip(owner_id, f"owner of account {key} is not a known rep")
                break
            why = unavailable_reason(owner, state, now, exclude=excluded)
            if why is None:
                return ex.to_rep(
                    owner,
                    team_id=owner.team_id,
                    rule_id=None,
                    method="account_owner",
                    reason=f"owner of account {key}",
                )
            ex.skip(owner.id, f"account owner {why}")
            break

    for rule in rules.rules:
        if not rule.enabled:
            ex.missed.append(RuleMissed(rule.id, "disabled"))
            continue
        why_not = rule.when.miss(lead)
        if why_not is not None:
            ex.missed.append(RuleMissed(rule.id, why_not))
            continue
        t = rule.target
        if t.kind == "queue":
            assert t.queue_id is not None
            q = roster.queues.get(t.queue_id)
            return ex.to_queue(
                t.queue_id,
                team_id=q.team_id if q else None,
                rule_id=rule.id,
                method="queue",
                reason=f"rule {rule.id} sends matching leads to queue {t.queue_id}",
            )
        if t.kind == "rep":
            assert t.rep_id is not None
            rep = roster.reps.get(t.rep_id)
            why = (
                "is not a known rep"
                if rep is None
                else unavailable_reason(rep, state, now, exclude=excluded)
            )
            if rep is not None and why is None:
                return ex.to_rep(
                    rep,
                    team_id=rep.team_id,
                    rule_id=rule.id,
                    method="direct",
                    reason=f"rule {rule.id} names rep {rep.id}",
                )
            ex.skip(t.rep_id, why or "unavailable")
            if rule.fallback_queue_id:
                return ex.to_queue(
                    rule.fallback_queue_id,
                    team_id=rep.team_id if rep else None,
                    rule_id=rule.id,
                    method="queue",
                    reason=f"rule {rule.id} matched but rep {t.rep_id} is unavailable ({why}): "
                    f"waiting in queue {rule.fallback_queue_id}",
                )
            ex.missed.append(RuleMissed(rule.id, f"matched, but rep {t.rep_id}: {why}"))
            continue
        # a team pool
        assert t.team_id is not None
        eligible: list[Rep] = []
        for rep in roster.team_members(t.team_id):
            if t.respect_territories and not rep.covers(lead):
                ex.skip(rep.id, f"territories {rep.territories} do not cover the lead")
                continue
            why = unavailable_reason(rep, state, now, exclude=excluded)
            if why is not None:
                ex.skip(rep.id, why)
                continue
            eligible.append(rep)
        if eligible:
            if t.strategy == "least_loaded":
                chosen = least_loaded(eligible, state, now)
                return ex.to_rep(
                    chosen,
                    team_id=t.team_id,
                    rule_id=rule.id,
                    method="least_loaded",
                    reason=f"rule {rule.id}: least loaded of {len(eligible)} eligible in team "
                    f"{t.team_id}",
                )
            key = pool_key(t.team_id)
            chosen, credits = smooth_wrr(eligible, state.pointers.get(key, {}))
            return ex.to_rep(
                chosen,
                team_id=t.team_id,
                rule_id=rule.id,
                method="round_robin",
                reason=f"rule {rule.id}: weighted round-robin over {len(eligible)} eligible "
                f"in team {t.team_id}",
                pool=key,
                pointer=credits,
            )
        team = roster.teams.get(t.team_id)
        queue_id = rule.fallback_queue_id or (team.queue_id if team else None)
        if queue_id:
            return ex.to_queue(
                queue_id,
                team_id=t.team_id,
                rule_id=rule.id,
                method="queue",
                reason=f"rule {rule.id} matched but no rep in team {t.team_id} is eligible: "
                f"waiting in queue {queue_id}",
            )
        ex.missed.append(RuleMissed(rule.id, f"matched, but no eligible rep in team {t.team_id}"))

    return ex.to_queue(
        rules.default_queue_id,
        team_id=None,
        rule_id=None,
        method="fallback",
        reason="no rule placed the lead with an available rep: default queue",
    )


# -- a manager's reassignment ------------------------------------------------------------


class ReassignRefused(Exception):
    """Why a manager's reassignment cannot happen: the field to blame and the HTTP status
    (422 the request names something that does not exist, 409 the lead's or rep's state
    forbids it now)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def manual_reassignment(
    *,
    in_sales: bool,
    stage: str | None,
    current_rep_id: str | None,
    rep_id: str,
    reason: str,
    roster: Roster,
    rules: RuleSet,
    state: RoutingState,
    now: datetime,
) -> Decision:
    """A sales manager hands an open lead to ``rep_id``.

    The manager names the rep, so no rule is consulted; but the rep must exist and be able
    to take a lead now (active, at work, not out of office, under their caps), the lead
    must still be with sales, and the new owner must differ from the old one, else the
    decision would record a move that did not happen. A rep the SLA excluded may be chosen:
    the manager's word overrides the automatic exclusion.
    """
    rep = roster.reps.get(rep_id)
    if rep is None:
        raise ReassignRefused(422, "rep_id", f"unknown rep {rep_id!r}")
    if not in_sales:
        raise ReassignRefused(
            409, "lead_id", f"the lead is not open with sales (stage {stage or 'unknown'})"
        )
    if current_rep_id == rep_id:
        raise ReassignRefused(409, "rep_id", f"the lead is already owned by {rep_id!r}")
    why = unavailable_reason(rep, state, now)
    if why is not None:
        raise ReassignRefused(409, "rep_id", f"rep {rep_id!r} is unavailable: {why}")
    return Decision(
        assignee_kind="rep",
        rep_id=rep.id,
        team_id=rep.team_id,
        queue_id=None,
        rule_id=None,
        rules_version=rules.version,
        method="manual",
        reason=f"reassigned by a sales manager: {reason}",
    )


# -- rep tokens --------------------------------------------------------------------------

REP_TOKEN_PREFIX = "lfr_"


def new_rep_token() -> tuple[str, str]:
    """(token_id, token): ``lfr_<id>_<secret>``. The id names the token in lists and
    revocations without revealing it; the secret is 256 random bits."""
    token_id = secrets.token_hex(6)
    return token_id, f"{REP_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def rep_token_digest(token: str) -> bytes:
    """What is stored of a token: its SHA-256 (a leaked table lets nobody act as a rep)."""
    return hashlib.sha256(token.encode()).digest()


def looks_like_rep_token(token: str) -> bool:
    return token.startswith(REP_TOKEN_PREFIX) and token.count("_") >= 2
