"""``UnitOfWork.on_flush``: deferred handler work runs once, inside the transaction, before
the buffered events are written — so what it appends is committed (or rolled back) with them."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.events.catalogue.intake import ConsentChanged
from leadflow.events.envelope import new_id

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]


async def test_on_flush_callback_runs_once_before_events_are_written(
    settings_for: Any, isolation: Any
) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    lead = new_id()
    calls: list[int] = []
    try:
        async with kit.unit_of_work() as uow:
            await uow.append(lead, ConsentChanged(marketing_opt_in=True))

            async def deferred() -> None:
                calls.append(len(uow.appended))  # nothing written yet when it runs
                await uow.append(lead, ConsentChanged(marketing_opt_in=False))

            uow.on_flush(deferred)
            written = await uow.flush()
            assert calls == [0]
            assert [e.stream_version for e in written] == [1, 2]
            await uow.flush()  # a second flush does not run it again
            assert calls == [0]
        async with kit.connect() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 2

        with pytest.raises(RuntimeError):
            async with kit.unit_of_work() as uow:

                async def failing() -> None:
                    await uow.append(lead, ConsentChanged(marketing_opt_in=True))
                    raise RuntimeError("deferred work failed")

                uow.on_flush(failing)
        async with kit.connect() as conn:
            # the failing callback rolled the whole transaction back
            assert await conn.fetchval("SELECT count(*) FROM event_log") == 2
    finally:
        await kit.stop()
