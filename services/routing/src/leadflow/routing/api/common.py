"""What every route module of routing's API shares: path types, document validation with
problems naming the field, and who the caller of a sales route is (admin or one rep).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path
from pydantic import BaseModel, ValidationError

from leadflow.events import ServiceKit
from leadflow.events.access import Permission, Principal, requires
from leadflow.events.errors import Problem
from leadflow.routing.commands import CommandRefused
from leadflow.routing.store import ConfigCache

M = TypeVar("M", bound=BaseModel)
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
IdPath = Annotated[str, Path(pattern=SLUG)]


def config_cache(kit: ServiceKit[ConfigCache]) -> ConfigCache:
    return kit.state


def validated(cls: type[M], data: dict[str, Any]) -> M:
    """Validate a document whose id comes from the path: errors as 422 naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise Problem.invalid_fields(errors) from exc


def not_found(kind: str, id_: str) -> Problem:
    return Problem(404, f"Unknown {kind}", f"no {kind} {id_!r}")


Doc = dict[str, Any]


class Caller(BaseModel):
    """Who calls a sales route: the admin token (``rep_id`` None) or one rep's token."""

    rep_id: str | None = None

    def acting_as(self, requested: str | None) -> str | None:
        """The rep an action is taken as: a rep's token acts as that rep only."""
        if self.rep_id is None or requested in (None, self.rep_id):
            return self.rep_id if self.rep_id is not None else requested
        raise Problem(
            403,
            "Forbidden",
            f"a rep's token acts as {self.rep_id} only",
            errors=[{"field": "rep_id", "message": f"must be {self.rep_id} or omitted"}],
        )

    def may_see(self, rep_id: str | None) -> None:
        if self.rep_id is not None and rep_id != self.rep_id:
            raise Problem(403, "Forbidden", f"a rep's token sees {self.rep_id}'s leads only")


def _caller(who: Principal, permission: Permission) -> Caller:
    rep_id = who.own_leads(permission)
    if rep_id == "":
        raise Problem(403, "Forbidden", "a rep without a rep id owns no leads")
    return Caller(rep_id=rep_id)


async def acting(who: Annotated[Principal, requires(Permission.HANDOFF)]) -> Caller:
    return _caller(who, Permission.HANDOFF)


async def reading(who: Annotated[Principal, requires(Permission.HANDOFF_READ)]) -> Caller:
    return _caller(who, Permission.HANDOFF_READ)


CallerDep = Annotated[Caller, Depends(acting)]
ReaderDep = Annotated[Caller, Depends(reading)]

LeadId = Annotated[uuid.UUID, Path()]


def refused(refusal: CommandRefused) -> Problem:
    """A command's refusal as the problem+json the API answers."""
    return refusal.problem()
