"""The kit's typed state: what a service keeps besides the kit, set once, read typed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from leadflow.events.kit import ServiceKit
from leadflow.events.settings import ServiceSettings


class QuietSettings(ServiceSettings):
    service_name: str = "routing"


@dataclass
class Caches:
    rules: dict[str, int]


def test_state_given_at_construction_is_the_state() -> None:
    caches = Caches({"default": 1})
    kit: ServiceKit[Caches] = ServiceKit(QuietSettings(log_json=False), state=caches)
    assert kit.state is caches
    assert kit.state.rules == {"default": 1}


def test_state_assigned_after_construction_replaces_none() -> None:
    kit: ServiceKit[Caches] = ServiceKit(QuietSettings(log_json=False))
    kit.state = Caches({})
    assert kit.state.rules == {}


def test_a_kit_without_state_says_so() -> None:
    kit: ServiceKit[Caches] = ServiceKit(QuietSettings(log_json=False))
    with pytest.raises(RuntimeError, match="routing's kit was built without a state"):
        _ = kit.state
