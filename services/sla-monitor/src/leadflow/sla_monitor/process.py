"""The lead management process document: a kernel versioned document (``PROCESS``) in
``sla_process_versions`` (version 0 is the kernel's built-in definition), ``GET/PUT
/v1/process``, and the pure rules around it.

Publishing works like an SLA policy set: a whole new version is stored and
``sla.process_published`` is appended on ``stream_id("lead-process")`` in the same
transaction, so analytics (stuck thresholds, process map, audit) follows every version.
SLA policies refer to a process stage (``SlaPolicy.stage``); the published event carries
which policies hold which stage at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.events.access import Permission
from leadflow.events.catalogue.sla import ProcessPublished
from leadflow.events.document_routes import document_router
from leadflow.events.documents import Document, DocumentKind, field_errors
from leadflow.events.envelope import EventPayload
from leadflow.events.errors import Problem
from leadflow.events.process import (
    ProcessDefinition,
    ProcessStage,
    built_in_process,
    duplicate_stages,
)
from leadflow.events.sql import Tx
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import SlaPolicy

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


# -- the document ---------------------------------------------------------------------


class _Draft(BaseModel):
    """What a publisher sends: room for a stage given twice, so that is refused by name."""

    model_config = ConfigDict(extra="forbid")
    stages: list[ProcessStage] = Field(min_length=1, max_length=20)


def parse_definition(data: Mapping[str, Any]) -> ProcessDefinition:
    """A publisher's definition: each stage once, stored in lifecycle order."""
    try:
        draft = _Draft.model_validate(data)
    except ValidationError as exc:
        raise Problem.invalid_fields(field_errors(exc), "Invalid process") from exc
    check_definition(draft.stages)
    return ProcessDefinition(stages=ProcessDefinition(stages=draft.stages).ordered())


async def _coverage(tx: Tx) -> dict[str, list[str]]:
    return sla_coverage((await store.current_policy_set(tx)).policies)


async def _process_published(tx: Tx, document: Document[ProcessDefinition]) -> EventPayload:
    """``sla.process_published`` carries which policies hold which stage at that moment."""
    return ProcessPublished(
        process_version=document.version,
        stages=[s.model_dump(mode="json") for s in document.doc.ordered()],
        sla_policies=await _coverage(tx),
        published_by=document.published_by,
    )


PROCESS: DocumentKind[ProcessDefinition] = DocumentKind(
    name="lead-process",
    table="sla_process_versions",
    model=ProcessDefinition,
    event=_process_published,
    title="process definition",
    builtin=built_in_process,
    parse=parse_definition,
)


async def _view(tx: Tx, document: Document[ProcessDefinition]) -> dict[str, Any]:
    """A version's body, each stage with the ids of the SLA policies that hold it now."""
    coverage = await _coverage(tx)
    body = document.body()
    body["stages"] = [
        {**s.model_dump(mode="json"), "sla_policies": coverage.get(s.stage.value, [])}
        for s in document.doc.ordered()
    ]
    return body


# GET /v1/process (reports), /versions, /versions/{n} (0: built-in); PUT publishes (process).
router = document_router(
    PROCESS,
    path="/v1/process",
    read=Permission.REPORTS,
    publish=Permission.PROCESS,
    method="PUT",
    tags=["process"],
    view=_view,
)
