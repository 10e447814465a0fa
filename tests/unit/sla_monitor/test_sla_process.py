"""The process document's pure rules in sla-monitor: which policies hold which stage, and
that the kernel's record of the built-in policies' stages (analytics' fallback) is true."""

from __future__ import annotations

import pytest

from leadflow.events.errors import Problem
from leadflow.events.lifecycle import ACTIVE_STAGES
from leadflow.events.process import BUILT_IN_SLA_STAGES, ProcessStage, built_in_process
from leadflow.sla_monitor.domain import default_policies
from leadflow.sla_monitor.process import check_definition, sla_coverage


def test_the_kernel_knows_which_stage_each_built_in_policy_holds() -> None:
    assert {p.policy_id: p.stage for p in default_policies()} == BUILT_IN_SLA_STAGES


def test_coverage_lists_enabled_policies_per_stage() -> None:
    policies = default_policies()
    disabled = [
        p.model_copy(update={"enabled": False}) if p.policy_id == "contact-1bd" else p
        for p in policies
    ]
    assert sla_coverage(policies) == {
        "mql": ["accept-4bh", "mql-assigned-30m"],
        "sal": ["contact-1bd", "sal-max-14d"],
        "nurture": ["nurture-touch-30d"],
    }
    assert sla_coverage(disabled)["sal"] == ["sal-max-14d"]


def test_the_built_in_process_gives_every_open_stage_an_owner_and_a_duration() -> None:
    process = built_in_process()
    for stage in ACTIVE_STAGES:
        defined = process.stage(stage.value)
        assert defined is not None and defined.owner and defined.expected_duration, stage
        assert defined.definition and defined.entry_criteria and defined.next_steps, stage
    assert process.expected_days() == {
        "inquiry": 7,
        "nurture": 90,
        "mql": 2,
        "sal": 7,
        "sql": 30,
        "opportunity": 90,
        "on_hold": 90,
    }


def test_a_stage_defined_twice_is_refused_naming_the_entry() -> None:
    stages = [ProcessStage(stage="mql"), ProcessStage(stage="sal"), ProcessStage(stage="mql")]  # type: ignore[arg-type]
    with pytest.raises(Problem) as refused:
        check_definition(stages)
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors] == ["stages[2].stage"]
