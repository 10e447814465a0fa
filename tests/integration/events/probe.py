"""A minimal service built on the kernel, used to prove the kernel's guarantees.

It consumes ``leadflow.intake``; every ``activity.recorded`` becomes one row in ``effects``
and one ``lead.scored`` event of its own (so the outbox path is exercised too). Like the
services' handlers, it collects its rows for the unit of work and writes them with one
statement when it flushes (``UnitOfWork.batch``), inside the batch's transaction. An
activity whose type is ``poison`` always fails; ``flaky`` fails on its first attempt only.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.catalogue.scoring import LeadScored
from leadflow.events.clock import Clock
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.settings import ServiceSettings
from leadflow.events.sql import Tx
from leadflow.events.store import StoredEvent
from leadflow.events.timers import Timer
from leadflow.events.uow import UnitOfWork

MIGRATIONS = Path(__file__).parent / "probe_migrations"
_flaky_seen: set[uuid.UUID] = set()


class ProbeSettings(ServiceSettings):
    service_name: str = "scoring"


async def on_activity(event: Envelope, uow: UnitOfWork) -> None:
    payload = event.payload
    assert isinstance(payload, ActivityRecorded)
    if payload.activity_type == "poison":
        raise ValueError("this record can never be handled")
    if payload.activity_type == "flaky" and event.event_id not in _flaky_seen:
        _flaky_seen.add(event.event_id)
        raise RuntimeError("first attempt fails")
    seq = int(payload.properties.get("seq", "0"))
    uow.batch(on_activity, list, partial(_write_effects, uow)).append(
        (event.event_id, event.lead_id, seq)
    )
    await uow.append(
        event.lead_id,
        LeadScored(
            fit=seq, engagement=0, grade="B", engagement_level=2, matrix_cell="B2", model_version=1
        ),
    )


async def _write_effects(uow: UnitOfWork, rows: list[tuple[uuid.UUID, uuid.UUID, int]]) -> None:
    await uow.tx.execute(
        "INSERT INTO effects (event_id, lead_id, seq) SELECT * FROM unnest("
        "CAST(:e AS uuid[]), CAST(:l AS uuid[]), CAST(:s AS integer[]))",
        e=[r[0] for r in rows],
        l=[r[1] for r in rows],
        s=[r[2] for r in rows],
    )


async def on_timer(timer: Timer, uow: UnitOfWork) -> None:
    await uow.tx.execute(
        "INSERT INTO effects (event_id, lead_id, seq) VALUES (:e, :l, -1)",
        e=new_id(),
        l=timer.lead_id,
    )


class LeadCountProjection:
    """Counts events per lead: rebuilt and incremental results must agree."""

    name = "lead_counts"

    async def apply(self, conn: Tx, events: Sequence[StoredEvent]) -> None:
        counts: dict[uuid.UUID, int] = {}
        for stored in events:
            counts[stored.envelope.lead_id] = counts.get(stored.envelope.lead_id, 0) + 1
        await conn.execute(
            "INSERT INTO lead_counts (lead_id, n) SELECT * FROM unnest(CAST(:ids AS uuid[]), "
            "CAST(:ns AS integer[])) ON CONFLICT (lead_id) DO UPDATE SET n = lead_counts.n + EXCLUDED.n",
            ids=list(counts),
            ns=list(counts.values()),
        )

    async def clear(self, conn: Tx) -> None:
        await conn.execute("DELETE FROM lead_counts")


def make_kit(settings: ProbeSettings, clock: Clock | None = None, **kwargs: Any) -> ServiceKit:
    return ServiceKit(
        settings,
        consumes=["intake"],
        handlers={ActivityRecorded: on_activity},
        timer_handlers={"probe": on_timer},
        projections=[LeadCountProjection()],
        clock=clock,
        migrations_dir=MIGRATIONS,
        **kwargs,
    )


def activity(lead_id: uuid.UUID, seq: int, kind: str = "page_view") -> Envelope:
    return Envelope.new(
        ActivityRecorded(activity_id=f"a{seq}", activity_type=kind, properties={"seq": str(seq)}),
        lead_id=lead_id,
    )


ROOT = Path(__file__).resolve().parents[3]


def process_env(settings: ProbeSettings) -> dict[str, str]:
    """The environment a probe process runs with: this test's database schema, topics and
    batch size, quiet logs, and the repository on the path (``python -m tests...``)."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LEADFLOW_DB_SCHEMA": settings.schema_name,
        "LEADFLOW_TOPIC_PREFIX": settings.topic_prefix,
        "LEADFLOW_CONSUMER_BATCH_SIZE": str(settings.consumer_batch_size),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


async def serve(kit: ServiceKit[Any], name: str) -> None:
    """Run ``kit`` as a process until SIGTERM or SIGINT (the SIGKILL tests start one and
    wait for the ``<name> started`` line)."""
    import asyncio

    await kit.start()
    print(f"{name} started", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()  # SIGTERM: finish the batch, commit, leave the group
    finally:
        await kit.stop()


async def main() -> None:
    """Run the probe consumer as a process (the SIGKILL test starts this)."""
    await serve(make_kit(ProbeSettings()), "probe")


if __name__ == "__main__":
    import asyncio

    os.environ.setdefault("LEADFLOW_LOG_JSON", "false")
    asyncio.run(main())
