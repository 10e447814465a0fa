"""The lead management process document: versions in ``sla_process_versions`` (version 0 is
the kernel's built-in definition), ``GET/PUT /v1/process``, and the pure rules around it.

Publishing works like an SLA policy set: a whole new version is stored and
``sla.process_published`` is appended on ``stream_id("lead-process")`` in the same
transaction, so analytics (stuck thresholds, process map, audit) follows every version.
SLA policies refer to a process stage (``SlaPolicy.stage``); the published event carries
which policies hold which stage at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.catalogue.sla import ProcessPublished
from leadflow.events.db import json_text
from leadflow.events.envelope import stream_id
from leadflow.events.errors import Problem
from leadflow.events.guards import INT32_MAX
from leadflow.events.process import (
    ProcessDefinition,
    ProcessStage,
    built_in_process,
    duplicate_stages,
)
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import SlaPolicy

PROCESS_STREAM = "lead-process"

# -- pure -----------------------------------------------------------------------------


def sla_coverage(policies: Sequence[SlaPolicy]) -> dict[str, list[str]]:
    """Stage -> ids of the enabled policies that hold it (policies without a stage: none)."""
    out: dict[str, list[str]] = {}
    for p in policies:
        if p.enabled and p.stage is not None:
            out.setdefault(p.stage.value, []).append(p.policy_id)
    return out


def check_definition(stages: Sequence[ProcessStage]) -> None:
    """A stage defined twice is ambiguous: refuse it, naming the field."""
    dupes = duplicate_stages(stages)
    if dupes:
        raise Problem(
            422,
            "Invalid process",
            "each stage may be defined once",
            errors=[{"field": f"stages[{i}].stage", "message": "duplicate stage"} for i in dupes],
        )


# -- storage --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessVersion:
    version: int  # 0 = the built-in definition, nothing published yet
    definition: ProcessDefinition
    published_by: str | None = None
    published_at: datetime | None = None


async def current(conn: AsyncConnection) -> ProcessVersion:
    row = (
        await conn.execute(
            text(
                "SELECT version, stages, published_by, published_at FROM sla_process_versions "
                "ORDER BY version DESC LIMIT 1"
            )
        )
    ).first()
    return _version(row) if row else ProcessVersion(0, built_in_process())


async def version(conn: AsyncConnection, number: int) -> ProcessVersion | None:
    if number == 0:
        return ProcessVersion(0, built_in_process())
    row = (
        await conn.execute(
            text(
                "SELECT version, stages, published_by, published_at FROM sla_process_versions "
                "WHERE version = :v"
            ),
            {"v": number},
        )
    ).first()
    return _version(row) if row else None


async def versions(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT version, published_by, published_at FROM sla_process_versions "
            "ORDER BY version DESC"
        )
    )
    return [
        {"version": r.version, "published_by": r.published_by, "published_at": r.published_at}
        for r in rows
    ]


def _version(row: Any) -> ProcessVersion:
    return ProcessVersion(
        row.version,
        ProcessDefinition.model_validate({"stages": row.stages}),
        row.published_by,
        row.published_at,
    )


async def insert(conn: AsyncConnection, definition: ProcessDefinition, by: str | None) -> int:
    """Store the next version; serialised so two editors never get the same number."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sla_process_versions'))"))
    number = int(
        await conn.scalar(text("SELECT coalesce(max(version), 0) + 1 FROM sla_process_versions"))
        or 1
    )
    await conn.execute(
        text(
            "INSERT INTO sla_process_versions (version, stages, published_by) "
            "VALUES (:v, CAST(:s AS jsonb), :by)"
        ),
        {"v": number, "s": json_text(_stages_json(definition)), "by": by},
    )
    return number


def _stages_json(definition: ProcessDefinition) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in definition.ordered()]


# -- HTTP -----------------------------------------------------------------------------

router = APIRouter(tags=["process"])


class ProcessIn(BaseModel):
    stages: list[ProcessStage] = Field(min_length=1, max_length=20)
    published_by: str | None = Field(default=None, max_length=200)


class ProcessOut(BaseModel):
    version: int
    source: str
    published_by: str | None = None
    published_at: datetime | None = None
    stages: list[dict[str, Any]]


async def _out(conn: AsyncConnection, pv: ProcessVersion) -> ProcessOut:
    coverage = sla_coverage((await store.current_policy_set(conn)).policies)
    return ProcessOut(
        version=pv.version,
        source="built-in" if pv.version == 0 else "published",
        published_by=pv.published_by,
        published_at=pv.published_at,
        stages=[
            {**s, "sla_policies": coverage.get(s["stage"], [])} for s in _stages_json(pv.definition)
        ],
    )


@router.get("/v1/process", summary="The current lead process definition, stage by stage")
async def get_process(kit: KitDep, _: Any = requires(Permission.REPORTS)) -> ProcessOut:
    async with kit.connect() as conn:
        return await _out(conn, await current(conn))


@router.put("/v1/process", summary="Publish a new version of the lead process definition")
async def put_process(
    body: ProcessIn, kit: KitDep, _: Any = requires(Permission.PROCESS)
) -> ProcessOut:
    check_definition(body.stages)
    definition = ProcessDefinition(stages=body.stages)
    async with kit.unit_of_work() as uow:
        number = await insert(uow.conn, definition, body.published_by)
        coverage = sla_coverage((await store.current_policy_set(uow.conn)).policies)
        await uow.append(
            stream_id(PROCESS_STREAM),
            ProcessPublished(
                process_version=number,
                stages=_stages_json(definition),
                sla_policies=coverage,
                published_by=body.published_by,
            ),
        )
        published = await version(uow.conn, number)
        assert published is not None
        return await _out(uow.conn, published)


@router.get("/v1/process/versions", summary="Every published process version")
async def list_versions(kit: KitDep, _: Any = requires(Permission.REPORTS)) -> dict[str, Any]:
    async with kit.connect() as conn:
        return {"versions": await versions(conn)}


@router.get("/v1/process/versions/{number}", summary="One process version (0: built-in)")
async def get_version(
    number: Annotated[int, Path(ge=0, le=INT32_MAX)],
    kit: KitDep,
    _: Any = requires(Permission.REPORTS),
) -> ProcessOut:
    async with kit.connect() as conn:
        pv = await version(conn, number)
        if pv is None:
            raise Problem(404, "Not Found", f"no process version {number}")
        return await _out(conn, pv)
