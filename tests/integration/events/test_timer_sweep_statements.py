"""What a timer sweep costs the database: a poll that finds nothing due is one autocommit
read, not a transaction (BEGIN, a claim FOR UPDATE, COMMIT); a due timer still fires once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leadflow.events.clock import ManualClock
from leadflow.events.envelope import new_id
from leadflow.events.timer_runner import TimerRunner
from leadflow.testing import StatementLog

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]


async def test_an_idle_sweep_is_one_read_and_a_due_timer_still_fires_once(
    settings_for: Any,
) -> None:
    clock = ManualClock()
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False), clock)
    await kit.start()
    runner = TimerRunner(kit.db, kit.timer_handlers, clock, kit._make_uow, service="probe")
    lead = new_id()
    try:
        async with kit.unit_of_work() as uow:
            await uow.timers.schedule(
                "t:later", clock.now() + timedelta(hours=1), "probe", {}, lead
            )

        with StatementLog(kit.db) as idle:
            assert await runner.run_due() == 0
        assert len(idle.statements) == 1
        assert idle.statements[0].lstrip().startswith("SELECT EXISTS")

        clock.advance(timedelta(hours=1))
        with StatementLog(kit.db) as due:
            assert await runner.run_due() == 1
        assert "BEGIN;" in due.statements and "COMMIT;" in due.statements
        assert await runner.run_due() == 0  # fired once: the row is gone
        async with kit.connect() as tx:
            effects = await tx.fetchval("SELECT count(*) FROM effects WHERE lead_id = :l", l=lead)
            left = await tx.fetchval("SELECT count(*) FROM timers")
        assert (effects, left) == (1, 0)
    finally:
        await kit.stop()
