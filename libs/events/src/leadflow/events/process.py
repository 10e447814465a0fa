"""The lead management process: what each lifecycle stage means, who owns it, how long it
should take and what comes next — the words marketing and sales agreed.

sla-monitor owns the document (``GET/PUT /v1/process``, versioned like its SLA policy sets,
published as ``sla.process_published``); analytics reads the latest published version from
its log for stuck-lead thresholds, the process map and the audit. Both start from
:func:`built_in_process` (version 0) until someone publishes one, so the built-in text lives
here, in the kernel, beside the lifecycle table it describes.

Stages are :class:`leadflow.events.lifecycle.Stage` values; a definition may leave a stage
out or leave its owner empty — the audit reports that as a gap rather than refusing it, since
an honest incomplete process is what an audit is for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
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


def _d(amount: float, unit: DurationUnit = "days") -> ExpectedDuration:
    return ExpectedDuration(amount=amount, unit=unit)


_BUILT_IN: tuple[ProcessStage, ...] = (
    ProcessStage(
        stage=Stage.INQUIRY,
        definition="A person raised a hand: filled a form, was scanned at an event, was "
        "imported from a list or asked for contact. Not yet judged.",
        entry_criteria=["a form fill, badge scan, import row or API inquiry was captured"],
        owner="marketing_ops",
        expected_duration=_d(7),
        next_steps=[
            "score fit and engagement",
            "qualify as MQL when the score reaches the agreed bar",
            "enrol in nurture when not ready",
            "disqualify junk, competitors and do-not-contact",
        ],
    ),
    ProcessStage(
        stage=Stage.NURTURE,
        definition="Not ready to buy yet: marketing keeps in touch until engagement shows "
        "buying intent again.",
        entry_criteria=[
            "scored below the MQL bar",
            "or rejected / recycled by sales with a reason",
        ],
        owner="marketing_ops",
        expected_duration=_d(90),
        next_steps=["a touch at least every 30 days", "re-qualify as MQL on renewed intent"],
    ),
    ProcessStage(
        stage=Stage.MQL,
        definition="Marketing qualified: meets the agreed fit and engagement bar and is worth "
        "a salesperson's time. This is the sales-ready definition both teams signed.",
        entry_criteria=["score at or above the MQL threshold", "grade A-C fit", "consent"],
        owner="marketing_ops",
        expected_duration=_d(2),
        next_steps=[
            "assign to a rep within 30 minutes",
            "the rep accepts or rejects (with a reason) within 4 business hours",
        ],
    ),
    ProcessStage(
        stage=Stage.SAL,
        definition="Sales accepted: a rep took the lead and commits to work it.",
        entry_criteria=["a rep accepted the assigned MQL"],
        owner="sales_development",
        expected_duration=_d(7),
        next_steps=[
            "first contact within 1 business day",
            "confirm need, authority, budget and timeframe (SQL)",
            "or recycle to nurture with a reason",
        ],
    ),
    ProcessStage(
        stage=Stage.SQL,
        definition="Sales qualified: the rep confirmed need, authority, budget and timeframe.",
        entry_criteria=["BANT confirmed on a call"],
        owner="sales",
        expected_duration=_d(30),
        next_steps=["open an opportunity with an amount", "or recycle with a reason"],
    ),
    ProcessStage(
        stage=Stage.OPPORTUNITY,
        definition="A deal with an amount in the pipeline.",
        entry_criteria=["an opportunity with amount and currency was opened"],
        owner="sales",
        expected_duration=_d(90),
        next_steps=["win or lose the deal", "record the loss reason"],
    ),
    ProcessStage(
        stage=Stage.WON,
        definition="The deal closed won; the person and the account become a customer "
        "(customer.became, at once).",
        entry_criteria=["a signed order"],
        owner="sales",
        next_steps=["hand over to customer success", "new buying cycles are expansion"],
    ),
    ProcessStage(
        stage=Stage.LOST,
        definition="The deal closed lost.",
        entry_criteria=["the buyer chose otherwise or stopped the project"],
        owner="sales",
        next_steps=["recycle to nurture when the reason allows it"],
    ),
    ProcessStage(
        stage=Stage.DISQUALIFIED,
        definition="Not a lead: junk, a competitor, a student, or asked not to be contacted.",
        entry_criteria=["a disqualification reason was recorded"],
        owner="marketing_ops",
        next_steps=["reinstate when the reason no longer holds"],
    ),
    ProcessStage(
        stage=Stage.ON_HOLD,
        definition="Paused on purpose (a budget freeze, a re-organisation), from any open "
        "stage; it resumes where it left off.",
        entry_criteria=["a hold reason and, ideally, a resume date"],
        owner="sales_manager",
        expected_duration=_d(90),
        next_steps=["resume the stage it was held from", "or recycle / disqualify"],
    ),
    ProcessStage(
        stage=Stage.CUSTOMER,
        definition="A won person, and their account, are a customer. A new hand-raise or "
        "engagement past the MQL bar opens an expansion cycle (cross-sell / upsell) that "
        "re-runs the funnel, routed to the account owner and measured apart.",
        entry_criteria=["a deal was won (routing records customer.became)"],
        owner="customer_success",
        next_steps=["adoption and advocacy", "expansion cycles", "record churn from the CRM"],
    ),
    ProcessStage(
        stage=Stage.CHURNED,
        definition="The customer left (the CRM reported churn); customer status ended.",
        entry_criteria=["a churn outcome from the CRM"],
        owner="customer_success",
        next_steps=["win back: a new hand-raise starts a new-business cycle"],
    ),
)


def built_in_process() -> ProcessDefinition:
    """Version 0: what a fresh install runs until someone publishes a definition."""
    return ProcessDefinition(stages=list(_BUILT_IN))


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
