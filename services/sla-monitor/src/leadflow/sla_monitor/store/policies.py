"""The SLA policy set: a kernel versioned document (``sla_policy_sets``, ``POLICIES``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from leadflow.events.catalogue.sla import SlaPolicyPublished
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.envelope import EventPayload
from leadflow.events.sql import Tx
from leadflow.sla_monitor.domain import (
    SlaPolicy,
    default_policies,
)
from leadflow.sla_monitor.store.sla_calendars import calendars

# -- policy sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySet:
    version: int  # 0 = the built-in defaults, nothing published yet
    policies: list[SlaPolicy]
    published_by: str | None = None
    published_at: datetime | None = None

    @property
    def source(self) -> str:
        return "built-in" if self.version == 0 else "published"


class PolicySetDoc(BaseModel):
    """The published document: the whole policy set (editing one policy publishes it all)."""

    model_config = ConfigDict(extra="forbid")
    policies: list[SlaPolicy]


def policy_errors(
    policies: Sequence[SlaPolicy], calendar_ids: set[str], prefix: str
) -> list[dict[str, Any]]:
    """Duplicate policy ids and unknown calendars, each naming its field (``prefix[i].x``)."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, p in enumerate(policies):
        where = f"{prefix}[{i}]" if prefix else ""
        if p.policy_id in seen:
            errors.append({"field": f"{where}.policy_id".lstrip("."), "message": "duplicate id"})
        seen.add(p.policy_id)
        if p.calendar_id is not None and p.calendar_id not in calendar_ids:
            errors.append(
                {
                    "field": f"{where}.calendar_id".lstrip("."),
                    "message": f"unknown calendar {p.calendar_id!r}",
                }
            )
    return errors


async def _check_policy_set(tx: Tx, doc: PolicySetDoc) -> list[dict[str, Any]]:
    return policy_errors(doc.policies, set(await calendars(tx)), "policies")


async def _policies_published(tx: Tx, document: Document[PolicySetDoc]) -> EventPayload:
    """``SlaPolicyPublished`` on ``stream_id("sla-policies")``: subscribers and the audit
    trail see every version. The policy set table's trigger bumps ``sla_config_revision``."""
    return SlaPolicyPublished(
        policies_version=document.version,
        policies=[p.model_dump(mode="json") for p in document.doc.policies],
        published_by=document.published_by,
    )


POLICIES: DocumentKind[PolicySetDoc] = DocumentKind(
    name="sla-policies",
    table="sla_policy_sets",
    model=PolicySetDoc,
    event=_policies_published,
    title="policy set",
    builtin=lambda: PolicySetDoc(policies=default_policies()),
    check=_check_policy_set,
    summary={"policies": "jsonb_array_length(doc->'policies')"},
)


def policy_set_of(document: Document[PolicySetDoc]) -> PolicySet:
    return PolicySet(
        version=document.version,
        policies=document.doc.policies,
        published_by=document.published_by,
        published_at=document.published_at,
    )


async def current_policy_set(tx: Tx) -> PolicySet:
    return policy_set_of(await POLICIES.current(tx))
