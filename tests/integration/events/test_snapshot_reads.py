"""``ServiceKit.snapshot``: a view read with several statements sees one moment, even when
a writer commits between them, and cannot write."""

from __future__ import annotations

import uuid

import pytest

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]

_COUNT = "SELECT count(*) FROM effects"


async def test_statements_of_a_snapshot_see_the_same_moment(settings_for) -> None:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    try:
        async with kit.snapshot() as view:
            before = await view.fetchval(_COUNT)
            async with kit.unit_of_work() as uow:  # a writer commits in between
                await uow.tx.execute(
                    "INSERT INTO effects (event_id, lead_id, seq) VALUES (:e, :l, 1)",
                    e=uuid.uuid4(),
                    l=uuid.uuid4(),
                )
            again = await view.fetchval(_COUNT)
            assert before == again == 0
            with pytest.raises(Exception, match="read-only"):
                await view.execute("DELETE FROM effects")
        async with kit.connect() as conn:  # and outside it, the writer's row is there
            assert await conn.fetchval(_COUNT) == 1
    finally:
        await kit.stop()
