"""HTTP API: admin CRUD of versioned policies and calendars; breaches, lead SLAs, compliance.

The write routes parse the request into a command (``commands``), run it in a unit of work and
answer its refusal as problem+json. Policies are published as whole versioned sets (editing one policy publishes the next set
version), and each publication appends ``SlaPolicyPublished`` on ``stream_id("sla-policies")``
so subscribers and the audit trail see every version. Running SLAs keep the deadline they
started with; a new version applies to clocks started after it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.calendar import BusinessCalendar
from leadflow.events.document_routes import document_router
from leadflow.events.errors import Problem
from leadflow.events.guards import INT64_MAX
from leadflow.sla_monitor import commands, store
from leadflow.sla_monitor.domain import (
    SlaPolicy,
    compliance,
)
from leadflow.sla_monitor.process import router as process_router

router = APIRouter()
admin = APIRouter(dependencies=[requires(Permission.SLA_POLICIES)], tags=["admin"])
reads = APIRouter(dependencies=[requires(Permission.SLA_READ)], tags=["sla"])

PolicyId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
CalendarId = Annotated[str, Path(min_length=1, max_length=100)]


class PolicySetOut(BaseModel):
    version: int
    source: str
    published_by: str | None = None
    published_at: datetime | None = None
    note: str | None = None
    policies: list[SlaPolicy]


async def _run(kit: KitDep, cmd: commands.Command) -> commands.Done:
    """One command in its own unit of work; a refusal is its problem+json."""
    try:
        async with kit.unit_of_work() as uow:
            return await commands.run(uow, cmd)
    except commands.CommandRefused as refused:
        raise refused.problem() from None


def _published(done: commands.Done) -> PolicySetOut:
    assert done.published is not None
    return PolicySetOut.model_validate(done.published.body())


# GET /v1/sla/policies, /versions, /versions/{n}; POST publishes a whole set. Included before
# ``admin``: its ``/v1/sla/policies/{policy_id}`` would otherwise take ``versions``.
policies_router = document_router(
    store.POLICIES,
    path="/v1/sla/policies",
    read=Permission.SLA_POLICIES,
    publish=Permission.SLA_POLICIES,
    method="POST",
    tags=["admin"],
)


@admin.get("/v1/sla/policies/{policy_id}", summary="One policy of the current set")
async def get_policy(policy_id: PolicyId, kit: KitDep) -> SlaPolicy:
    async with kit.connect() as tx:
        ps = await store.current_policy_set(tx)
    for p in ps.policies:
        if p.policy_id == policy_id:
            return p
    raise Problem(404, "Not Found", f"no policy {policy_id!r} in version {ps.version}")


@admin.put(
    "/v1/sla/policies/{policy_id}",
    summary="Create or replace one policy (new version)",
    responses={201: {"description": "Created", "model": PolicySetOut}},
)
async def put_policy(
    policy_id: PolicyId,
    body: SlaPolicy,
    kit: KitDep,
    response: Response,
    published_by: Annotated[str | None, Query(max_length=200)] = None,
) -> PolicySetOut:
    done = await _run(kit, commands.PutPolicy(policy_id, body, published_by))
    response.status_code = 201 if done.created else 200
    return _published(done)


@admin.delete("/v1/sla/policies/{policy_id}", summary="Remove one policy (new version)")
async def delete_policy(
    policy_id: PolicyId,
    kit: KitDep,
    published_by: Annotated[str | None, Query(max_length=200)] = None,
) -> PolicySetOut:
    return _published(await _run(kit, commands.DeletePolicy(policy_id, published_by)))


@admin.get("/v1/sla/calendars", summary="Business calendars")
async def list_calendars(kit: KitDep) -> dict[str, list[BusinessCalendar]]:
    async with kit.connect() as tx:
        return {"calendars": list((await store.calendars(tx)).values())}


@admin.get("/v1/sla/calendars/{calendar_id}", summary="One business calendar")
async def get_calendar(calendar_id: CalendarId, kit: KitDep) -> BusinessCalendar:
    async with kit.connect() as tx:
        cal = await store.get_calendar(tx, calendar_id)
    if cal is None:
        raise Problem(404, "Not Found", f"no calendar {calendar_id!r}")
    return cal


@admin.put(
    "/v1/sla/calendars/{calendar_id}",
    summary="Create or replace a business calendar",
    responses={201: {"description": "Created", "model": BusinessCalendar}},
)
async def put_calendar(
    calendar_id: CalendarId, body: BusinessCalendar, kit: KitDep, response: Response
) -> BusinessCalendar:
    done = await _run(kit, commands.PutCalendar(calendar_id, body))
    response.status_code = 201 if done.created else 200
    return body


@admin.delete("/v1/sla/calendars/{calendar_id}", status_code=204, summary="Delete a calendar")
async def delete_calendar(calendar_id: CalendarId, kit: KitDep) -> Response:
    await _run(kit, commands.DeleteCalendar(calendar_id))
    return Response(status_code=204)


# -- reads ----------------------------------------------------------------------------


@reads.get("/v1/sla/breaches", summary="Open breaches (breached and not yet met)")
async def breaches(
    kit: KitDep,
    rep_id: Annotated[str | None, Query(max_length=200)] = None,
    team_id: Annotated[str | None, Query(max_length=200)] = None,
    policy_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> dict[str, Any]:
    async with kit.connect() as tx:
        items = await store.open_breaches(
            tx,
            rep_id=rep_id,
            team_id=team_id,
            policy_id=policy_id,
            limit=limit,
            offset=offset,
            now=kit.clock.now(),
        )
    return {"items": items, "count": len(items), "limit": limit, "offset": offset}


@reads.get("/v1/leads/{lead_id}/sla", summary="Every SLA on a lead: due, met, breached, stopped")
async def lead_sla(lead_id: uuid.UUID, kit: KitDep) -> dict[str, Any]:
    async with kit.snapshot() as tx:
        slas = await store.lead_slas(tx, lead_id, kit.clock.now())
        if not slas and not await store.lead_known(tx, lead_id):
            raise Problem(404, "Not Found", f"no SLA was ever started for lead {lead_id}")
    return {"lead_id": lead_id, "slas": slas}


GroupBy = Literal["policy", "team", "rep"]
_GROUP_COLUMN = {"policy": "policy_id", "team": "team_id", "rep": "rep_id"}


@reads.get("/v1/sla/compliance", summary="Met-on-time % and median times per policy/team/rep")
async def sla_compliance(
    kit: KitDep,
    group_by: Annotated[list[GroupBy] | None, Query()] = None,
    policy_id: Annotated[str | None, Query(max_length=100)] = None,
    team_id: Annotated[str | None, Query(max_length=200)] = None,
    rep_id: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise Problem(
                422,
                "Invalid query",
                "times need a UTC offset",
                errors=[{"field": name, "message": "must include a time zone offset"}],
            )
    keys = list(dict.fromkeys(group_by or ["policy"]))
    async with kit.connect() as tx:
        rows = await store.outcomes(
            tx, policy_id=policy_id, team_id=team_id, rep_id=rep_id, since=since, until=until
        )
    groups: dict[tuple[str | None, ...], list[store.OutcomeRow]] = {}
    for row in rows:
        key = tuple(getattr(row, _GROUP_COLUMN[k]) for k in keys)
        groups.setdefault(key, []).append(row)
    out_groups = [
        {
            **{_GROUP_COLUMN[k]: v for k, v in zip(keys, key, strict=True)},
            **compliance([r.outcome for r in members]),
        }
        for key, members in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0]))
    ]

    def median_of(measure: str) -> dict[str, Any]:
        stats = compliance([r.outcome for r in rows if r.measures == measure])
        return {
            "median_seconds": stats["median_elapsed_seconds"],
            "median_business_seconds": stats["median_elapsed_business_seconds"],
            "met_on_time_pct": stats["met_on_time_pct"],
        }

    return {
        "group_by": keys,
        "overall": compliance([r.outcome for r in rows]),
        "time_to_accept": median_of("accept"),
        "time_to_contact": median_of("contact"),
        "groups": out_groups,
    }


router.include_router(policies_router)
router.include_router(admin)
router.include_router(reads)
router.include_router(process_router)
