"""The lead management process: what each lifecycle stage means, who owns it, how long it
should take and what comes next — the words marketing and sales agreed.

sla-monitor owns the document (``GET/PUT /v1/process``, versioned like its SLA policy sets,
published as ``sla.process_published``); analytics reads the latest published version from
its log for stuck-lead thresholds, the process map and the audit. Both start from
:func:`built_in_process` (version 0) until someone publishes one, so the built-in text lives
here, in the kernel, beside the lifecycle table it describes (``process.json``).

Stages are :class:`leadflow.events.lifecycle.Stage` values; a definition may leave a stage
out or leave its owner empty — the audit reports that as a gap rather than refusing it, since
an honest incomplete process is what an audit is for.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.events.lifecycle import STAGE_ORDER, TERMINAL_STAGES, Stage

DurationUnit = Literal["minutes", "hours", "days"]
_UNIT_SECONDS: dict[str, int] = {"minutes": 60, "hours": 3600, "days": 86400}


class ExpectedDuration(BaseModel):
    """How long a lead should sit in a stage (calendar time: it is a planning figure; the
    business-hours promises are SLA policies)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: float = Field(gt=0, le=100_000)
    unit: DurationUnit = "days"

    @property
    def seconds(self) -> float:
        return self.amount * _UNIT_SECONDS[self.unit]

    @property
    def days(self) -> float:
        return self.seconds / 86400

    def as_timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)


class ProcessStage(BaseModel):
    """One step of the process. ``owner`` is a team or role (``marketing_ops``, ``sdr``...);
    ``expected_duration`` is empty for stages a lead does not wait in (won, lost, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    definition: str = Field(default="", max_length=2000)
    entry_criteria: list[str] = Field(default_factory=list, max_length=50)
    owner: str | None = Field(default=None, max_length=200)
    expected_duration: ExpectedDuration | None = None
    next_steps: list[str] = Field(default_factory=list, max_length=50)


class ProcessDefinition(BaseModel):
    """A whole process definition: one entry per stage, in any order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: list[ProcessStage] = Field(min_length=1, max_length=len(Stage))

    def stage(self, stage: str) -> ProcessStage | None:
        for s in self.stages:
            if s.stage == stage:
                return s
        return None

    def ordered(self) -> list[ProcessStage]:
        """The stages in lifecycle order (the order maps and tables print them)."""
        rank = {s: i for i, s in enumerate(STAGE_ORDER)}
        return sorted(self.stages, key=lambda s: rank[s.stage])

    def expected_days(self) -> dict[str, float]:
        """Stage -> days before a lead there counts as stuck (stages with a duration only)."""
        return {
            s.stage.value: s.expected_duration.days
            for s in self.stages
            if s.expected_duration is not None and s.stage not in TERMINAL_STAGES
        }


def duplicate_stages(stages: Sequence[ProcessStage]) -> list[int]:
    """Indexes of entries naming a stage an earlier entry already defined."""
    seen: set[Stage] = set()
    dupes = []
    for i, s in enumerate(stages):
        if s.stage in seen:
            dupes.append(i)
        seen.add(s.stage)
    return dupes


def load_process(source: Traversable) -> ProcessDefinition:
    """A process definition file, parsed and checked as a publish is (pydantic's errors
    name the field; a stage defined twice is refused too)."""
    definition = ProcessDefinition.model_validate_json(source.read_bytes())
    dupes = duplicate_stages(definition.stages)
    if dupes:
        raise ValueError(f"{source}: stages[{dupes[0]}].stage is defined twice")
    return definition


@functools.cache
def built_in_process() -> ProcessDefinition:
    """Version 0: what a fresh install runs until someone publishes a definition. Data, not
    code: ``process.json`` beside this module, shipped in the wheel, parsed once per process
    (the services call this when their kit is built, so a broken file stops them there)."""
    return load_process(resources.files(__package__).joinpath("process.json"))


# Which built-in SLA policies (sla-monitor's defaults) hold which stage. sla-monitor's unit
# tests check this against its own defaults; analytics uses it until policies are published.
BUILT_IN_SLA_STAGES: Mapping[str, str] = {
    "mql-assigned-30m": "mql",
    "accept-4bh": "mql",
    "contact-1bd": "sal",
    "sal-max-14d": "sal",
    "nurture-touch-30d": "nurture",
}

__all__ = [
    "BUILT_IN_SLA_STAGES",
    "ExpectedDuration",
    "ProcessDefinition",
    "ProcessStage",
    "built_in_process",
    "duplicate_stages",
]
