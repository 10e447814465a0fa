"""The built-in SLA policies (``sla_monitor/policies.json``) and process definition
(``leadflow/events/process.json``) are data shipped in the packages: they parse as a publish
would, and a broken file fails loudly, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from leadflow.events.lifecycle import STAGE_ORDER
from leadflow.events.process import BUILT_IN_SLA_STAGES, built_in_process, load_process
from leadflow.sla_monitor.domain import default_policies, load_policies


def test_the_shipped_policies_and_process_parse() -> None:
    policies = default_policies()
    assert {p.policy_id: p.stage.value for p in policies if p.stage} == dict(BUILT_IN_SLA_STAGES)
    assert [s.stage for s in built_in_process().ordered()] == list(STAGE_ORDER)


def test_a_broken_policy_file_names_the_field(tmp_path: Path) -> None:
    data = [p.model_dump(mode="json") for p in default_policies()]
    data[1]["duration"]["unit"] = "fortnights"
    broken = tmp_path / "policies.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(ValidationError) as err:
        load_policies(broken)
    assert [e["loc"][:3] for e in err.value.errors()] == [(1, "duration", "unit")]


def test_a_broken_process_file_names_the_field(tmp_path: Path) -> None:
    stages = [s.model_dump(mode="json") for s in built_in_process().stages]
    stages[0]["owner"] = 42
    broken = tmp_path / "process.json"
    broken.write_text(json.dumps({"stages": stages}))
    with pytest.raises(ValidationError) as err:
        load_process(broken)
    assert err.value.errors()[0]["loc"] == ("stages", 0, "owner")
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"stages": [stages[1], stages[1]]}))
    with pytest.raises(ValueError, match=r"stages\[1\]\.stage"):
        load_process(twice)
