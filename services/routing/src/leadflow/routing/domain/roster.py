"""The roster: reps (their hours, absences, caps and territories), teams, queues and
account owners, as the admin API configured them. Pure values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from leadflow.events.calendar import WorkingHours
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.routing.domain.hours import working_hours_of

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$"


class FrozenModel(BaseModel):
    """Configuration values: unknown fields are refused, and a parsed roster never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OutOfOffice(FrozenModel):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class Rep(FrozenModel):
    """A salesperson who can own leads."""

    id: str = Field(pattern=ID_PATTERN)
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
    working_hours: WorkingHours | None = Field(
        default=None,
        description="when the rep takes leads (the kernel's working hours: timezone, hours per "
        "weekday, holidays; the rep's timezone when none is given); none = always. The older "
        "list of windows [{days, start, end}] is accepted and read as the same hours",
    )
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

    @field_validator("working_hours", mode="before")
    @classmethod
    def _hours_of_either_shape(cls, value: Any, info: ValidationInfo) -> Any:
        return working_hours_of(value, info.data.get("timezone") or "UTC")

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


class Team(FrozenModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    members: list[str] = []
    manager_email: str | None = Field(
        default=None,
        pattern=_EMAIL,
        description="the team's manager: told of SLA breaches and escalations by notify",
    )
    queue_id: str | None = Field(default=None, description="where the team's overflow waits")


class Queue(FrozenModel):
    """A place a lead waits when no rep can take it: it is never dropped."""

    id: str = Field(pattern=ID_PATTERN)
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


def team_queue_ids(rep: Rep, teams: list[Team], queues: list[Queue]) -> list[str]:
    """The queues of the rep's team: the team's overflow queue and every queue naming the
    team (a rep listed as a member of a team counts as in it)."""
    mine = {t.id for t in teams if t.id == rep.team_id or rep.id in t.members}
    ids = {t.queue_id for t in teams if t.id in mine and t.queue_id}
    ids |= {q.id for q in queues if q.team_id in mine}
    return sorted(i for i in ids if i)
