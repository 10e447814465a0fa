"""Routing rules: conditions a lead must meet, the target that takes it, the published
rule set, and the checks that keep a rule set and the roster consistent. Pure values.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal, cast

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.routing.domain.roster import ID_PATTERN, FrozenModel, Roster

_GRADE = re.compile(r"^[A-D][+-]?$")


_TEXT_CONDITIONS = ("country", "region", "industry", "product_interest", "channel", "campaign")


@lru_cache(maxsize=4096)
def _not_in(name: str, actual: str | None, wanted: tuple[str, ...]) -> str:
    # The same few values miss the same rules again and again: word each miss once.
    return f"{name} {actual!r} not in {list(wanted)}"


class Conditions(FrozenModel):
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


class Target(FrozenModel):
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


class Rule(FrozenModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    enabled: bool = True
    when: Conditions = Conditions()
    target: Target
    fallback_queue_id: str | None = Field(
        default=None, description="where a matched lead waits if no rep of the target is free"
    )


class RuleSet(FrozenModel):
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
