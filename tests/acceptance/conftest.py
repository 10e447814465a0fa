"""Acceptance tests: the running platform, driven as its people use it.

Every test here starts the whole platform as real processes (``e2e_stack``: every service on
the test infrastructure, with the built-in scoring model, routing rules, SLA policies and
process) and talks to it only through public HTTP APIs, as marketing ops, reps, managers and
leadership do. Nothing is published to make a test pass: defaults are product. Expected
figures are exact and cross-checked between services.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import e2e_stack

__all__ = ["e2e_stack"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/acceptance/" in str(item.fspath):
            item.add_marker(pytest.mark.acceptance)
