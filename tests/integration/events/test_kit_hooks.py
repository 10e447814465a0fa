"""Background work and shutdown hooks of a running service (``kit.spawn``, ``on_shutdown``):
a probe service on real Postgres and Kafka, started and stopped through its app's lifespan.

What a route spawns (an import, a rebuild) is tracked by the kit: at shutdown it is
cancelled and awaited while the database is still there (so it can record that it was
interrupted), then the ``on_shutdown`` hooks run, last registered first, and only then is
the engine closed. A background failure is logged and counted, never lost with its task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fastapi import APIRouter, Request
from prometheus_client import REGISTRY

from leadflow.events.deps import kit_of
from leadflow.events.kit import ServiceKit
from leadflow.events.service import create_service_app
from leadflow.testing import app_client

from .probe import MIGRATIONS, ProbeSettings, on_activity

TIMEOUT = 30.0


def probe_kit(settings_for: Any, **kwargs: Any) -> ServiceKit[Any]:
    from leadflow.events.catalogue.intake import ActivityRecorded

    return ServiceKit(
        settings_for(ProbeSettings),
        consumes=("intake",),
        handlers={ActivityRecorded: on_activity},
        migrations_dir=MIGRATIONS,
        **kwargs,
    )


async def test_spawned_work_is_cancelled_and_awaited_then_hooks_run_last_first_with_the_database(
    settings_for: Any,
) -> None:
    ran: list[tuple[str, int]] = []

    async def first(kit: ServiceKit[Any]) -> None:
        async with kit.connect() as conn:
            ran.append(("first", int(await conn.fetchval("SELECT 1"))))

    async def second(kit: ServiceKit[Any]) -> None:
        async with kit.connect() as conn:
            ran.append(("second", int(await conn.fetchval("SELECT 2"))))

    kit = probe_kit(settings_for, on_shutdown=[first, second])
    started = asyncio.Event()
    unwound: list[object] = []
    tasks: list[asyncio.Task[Any]] = []

    async def long_import() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # runs until the service stops
        finally:
            # As intake's import does: record the interruption while unwinding.
            async with kit.connect() as conn:
                unwound.append(await conn.fetchval("SELECT 'interrupted'"))
                unwound.append(ran.copy())  # no hook has run yet

    router = APIRouter()

    @router.post("/probe/work", status_code=202)
    async def work(request: Request) -> dict[str, str]:
        tasks.append(kit_of(request).spawn(long_import(), name="import"))
        return {"state": "running"}

    app = create_service_app(kit, router, title="probe")
    async with app_client(app) as client:
        r = await client.post("/probe/work")
        assert r.status_code == 202, r.text
        await asyncio.wait_for(started.wait(), TIMEOUT)
        assert kit.consumer is not None  # a whole service: consumer, relay, timers
        assert not tasks[0].done()
    # The lifespan has ended: kit.stop() was awaited.
    [task] = tasks
    assert task.cancelled()
    assert unwound == ["interrupted", []]
    assert ran == [("second", 2), ("first", 1)]
    assert kit._db is None  # closed after the hooks, which still used it


async def test_a_failing_background_task_is_logged_and_counted_and_the_service_goes_on(
    settings_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kit = probe_kit(settings_for)
    labels = {"service": "scoring", "task": "rebuild"}
    before = REGISTRY.get_sample_value("leadflow_background_task_failures_total", labels) or 0.0

    async def rebuild() -> None:
        raise ValueError("the log could not be read")

    async def answer() -> int:
        async with kit.connect() as conn:
            return int(await conn.fetchval("SELECT 42"))

    app = create_service_app(kit, title="probe")
    async with app_client(app) as client:
        with caplog.at_level(logging.ERROR, logger="leadflow.service"):
            failed = kit.spawn(rebuild(), name="rebuild")
            await asyncio.wait_for(failed, TIMEOUT)
        assert failed.result() is None  # the exception did not escape into the loop
        [record] = [r for r in caplog.records if "background task rebuild failed" in r.message]
        assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
        after = REGISTRY.get_sample_value("leadflow_background_task_failures_total", labels)
        assert after == before + 1
        # The service is unaffected: more work runs, and it still answers.
        assert await asyncio.wait_for(kit.spawn(answer(), name="answer"), TIMEOUT) == 42
        assert (await client.get("/healthz")).status_code == 200


async def test_a_failing_hook_does_not_stop_the_others_or_the_engine_from_closing(
    settings_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def closes(kit: ServiceKit[Any]) -> None:
        ran.append("closes")

    async def breaks(kit: ServiceKit[Any]) -> None:
        raise RuntimeError("the SMTP server hung up")

    kit = probe_kit(settings_for, on_shutdown=[closes, breaks])
    app = create_service_app(kit, title="probe")
    with caplog.at_level(logging.ERROR, logger="leadflow.service"):
        async with app_client(app):
            pass
    assert ran == ["closes"]
    assert any("on_shutdown hook failed" in r.message for r in caplog.records)
    assert kit._db is None
