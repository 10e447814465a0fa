"""A task still running when the grace period ends is cancelled, and the log says where it
was waiting (an SRE's only clue to a shutdown that took the whole grace period)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from leadflow.events.kit import ServiceKit
from leadflow.events.settings import ServiceSettings


class QuietSettings(ServiceSettings):
    service_name: str = "scoring"


async def waits_for_an_ack_that_never_comes(never: asyncio.Future[None]) -> None:
    await never


async def test_stop_names_the_task_and_where_it_waited(caplog: pytest.LogCaptureFixture) -> None:
    kit = ServiceKit(
        QuietSettings(shutdown_grace_seconds=0.05, log_json=False, run_consumers=False)
    )
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    kit._spawn(waits_for_an_ack_that_never_comes(never), "relay")
    with caplog.at_level(logging.WARNING, logger="leadflow.service"):
        await kit.stop()
    [record] = [r for r in caplog.records if "grace period" in r.getMessage()]
    message = record.getMessage()
    assert "scoring-relay still running after the 0.05s grace period" in message
    assert "test_stop_reports_stuck_tasks.py" in message
    assert "in waits_for_an_ack_that_never_comes" in message
    assert never.cancelled()  # the task was cancelled, and with it what it awaited
