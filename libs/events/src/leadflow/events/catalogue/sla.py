"""Events produced by ``services/sla-monitor`` on ``leadflow.sla``: service levels."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from leadflow.events.envelope import EventPayload

EscalationAction = Literal["remind_owner", "notify_manager", "reassign", "return_to_marketing"]


class SlaStarted(EventPayload):
    event_type: ClassVar[str] = "sla.started"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "An SLA clock started on the lead."

    sla_id: str
    policy_id: str
    policy_version: int = 1
    started_by_event: str
    rep_id: str | None = None
    team_id: str | None = None
    started_at: datetime
    warn_at: datetime | None = None
    due_at: datetime
    business_time: bool = True
    calendar_id: str | None = None


class SlaWarning(EventPayload):
    event_type: ClassVar[str] = "sla.warning"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "An SLA passed its warning threshold."

    sla_id: str
    policy_id: str
    due_at: datetime
    rep_id: str | None = None
    team_id: str | None = None


class SlaBreached(EventPayload):
    event_type: ClassVar[str] = "sla.breached"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "An SLA deadline passed unmet."

    sla_id: str
    policy_id: str
    due_at: datetime
    late_by_seconds: float = Field(
        default=0.0, description="how long after due_at the breach was detected (timer delay)"
    )
    rep_id: str | None = None
    team_id: str | None = None


class SlaMet(EventPayload):
    event_type: ClassVar[str] = "sla.met"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "The SLA was satisfied (on time or late)."

    sla_id: str
    policy_id: str
    met_by_event: str
    elapsed_seconds: float
    elapsed_business_seconds: float
    on_time: bool
    late_by_seconds: float = Field(
        default=0.0, description="how long after the deadline it was met (0 when on time)"
    )
    rep_id: str | None = None
    team_id: str | None = None


class SlaStopped(EventPayload):
    """The clock ended without a verdict: the lead was reassigned, recycled, disqualified,
    put on hold or closed while it ran. Neither met nor breached."""

    event_type: ClassVar[str] = "sla.stopped"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "An SLA clock was stopped without being met or breached."

    sla_id: str
    policy_id: str
    stopped_by_event: str
    rep_id: str | None = None
    team_id: str | None = None


class EscalationRaised(EventPayload):
    """One step of a policy's escalation ladder; routing acts on ``reassign``."""

    event_type: ClassVar[str] = "sla.escalation_raised"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "An escalation step was raised for a breached SLA."

    sla_id: str
    policy_id: str
    step: int
    action: EscalationAction
    rep_id: str | None = None
    team_id: str | None = None
    notify: list[str] = []


class SlaPolicyPublished(EventPayload):
    """An SLA policy set version (stream: ``stream_id("sla-policies")``)."""

    event_type: ClassVar[str] = "sla.policies_published"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "Ops published a new SLA policy set version."

    policies_version: int
    policies: list[dict[str, Any]]
    published_by: str | None = None


class ProcessPublished(EventPayload):
    """A version of the lead management process definition (stream:
    ``stream_id("lead-process")``): per stage its agreed definition, entry criteria, owner,
    expected duration and next steps (:class:`leadflow.events.process.ProcessStage`), and
    the SLA policies that held each stage when it was published."""

    event_type: ClassVar[str] = "sla.process_published"
    producer: ClassVar[str] = "sla"
    summary: ClassVar[str] = "Marketing and sales published a new version of their lead process."

    process_version: int
    stages: list[dict[str, Any]]
    sla_policies: dict[str, list[str]] = Field(
        default_factory=dict, description="stage -> ids of the SLA policies that hold it"
    )
    published_by: str | None = None
