"""Kernel benchmark: raw aiokafka vs the full event path, and end-to-end latency at 200/s.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``; e.g. ``set -a; . /work/helpers/infra.env; set +a``)::

    uv run python bench/bench_kernel.py --events 5000 [--one-process] [--profile] [--quick]

(a) raw: N records produced (idempotent, acks=all) and consumed by a consumer group, timed
    from the first send to the last record received.
(b) kernel: the same N events appended by a source kit (``leadflow.intake``: event log +
    outbox, 100 events per transaction) -> outbox relay -> Kafka -> the probe consumer kit
    (``tests/integration/events/probe.py``: consumer runner, inbox dedup, handler collecting
    an effect row per event -- written with one statement per batch at the unit of work's
    flush, as the services' handlers do -- and appending one event of its own) -> projection over its event log. Timed
    from the first append to the projection having applied all N. As deployed, the
    producing and the consuming service are two processes: the consumer kit runs in a child
    process that reports what its projection applied on a pipe (``--one-process`` runs both
    kits in this process, as earlier versions of this benchmark did).
(c) latency: events appended one per transaction at a fixed 200/s; end-to-end latency is
    from the start of the append to the projection applying the consumer's resulting event.
Targets (issue 3): (b) >= 5,000 events/s, p99 <= 50 ms at 200 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadflow.events.sql import Tx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leadflow.events.catalogue.intake import ActivityRecorded  # noqa: E402
from leadflow.events.catalogue.scoring import LeadScored  # noqa: E402
from leadflow.events.db import plain_url, upgrade_async  # noqa: E402
from leadflow.events.envelope import Envelope, new_id, topic_for  # noqa: E402
from leadflow.events.kit import ServiceKit  # noqa: E402
from leadflow.events.settings import ServiceSettings  # noqa: E402
from leadflow.events.store import StoredEvent  # noqa: E402
from leadflow.events.topics import ensure_topics  # noqa: E402
from leadflow.events.uow import Handler, UnitOfWork  # noqa: E402
from tests.integration.events.probe import (  # noqa: E402
    MIGRATIONS,
    LeadCountProjection,
    ProbeSettings,
    on_activity,
)

PARTITIONS = 3


class SourceSettings(ServiceSettings):
    service_name: str = "intake"


class TimedProjection(LeadCountProjection):
    """The probe's counting projection, noting when (wall clock) each cause reached it."""

    def __init__(self, started: dict[uuid.UUID, float]) -> None:
        self.started = started
        self.latencies: list[float] = []
        self.applied = 0

    async def apply(self, conn: Tx, events: Sequence[StoredEvent]) -> None:
        await super().apply(conn, events)
        self.arrived(time.time(), [s.envelope.causation_id for s in events])

    def arrived(self, now: float, causes: Sequence[uuid.UUID | None]) -> None:
        for cause in causes:
            if cause is not None and cause in self.started:
                self.latencies.append(now - self.started.pop(cause))
        self.applied += len(causes)


class PipedProjection(LeadCountProjection):
    """In the sink process: the counting projection, reporting each batch on stdout."""

    async def apply(self, conn: Tx, events: Sequence[StoredEvent]) -> None:
        await super().apply(conn, events)
        causes = " ".join(
            s.envelope.causation_id.hex if s.envelope.causation_id else "-" for s in events
        )
        sys.stdout.write(f"applied {time.time()!r} {causes}\n")
        sys.stdout.flush()


class SinkProcess:
    """The consumer kit in a child process; its reports feed a TimedProjection here."""

    def __init__(
        self, token: str, handler: str, started: dict[uuid.UUID, float], loop: str
    ) -> None:
        self.timing = TimedProjection(started)
        self.token, self.handler, self.loop = token, handler, loop
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def applied(self) -> int:
        return self.timing.applied

    @property
    def latencies(self) -> list[float]:
        return self.timing.latencies

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--sink-for",
            self.token,
            "--sink-handler",
            self.handler,
            "--loop",
            self.loop,
            stdout=asyncio.subprocess.PIPE,
            # The caller's path after ours: an A/B run against another tree (PYTHONPATH set to
            # its packages) must load that tree's kernel in the sink too.
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *_caller_path()])},
        )
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), timeout=90)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            word, _, rest = line.decode().strip().partition(" ")
            if word == "ready":
                self.ready.set()
            elif word == "applied":
                at, _, causes = rest.partition(" ")
                self.timing.arrived(
                    float(at), [None if c == "-" else uuid.UUID(c) for c in causes.split()]
                )

    def cpu_seconds(self) -> float:
        """User + system CPU of the child so far (from /proc)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), timeout=60)
        if self._reader is not None:
            self._reader.cancel()


def _caller_path() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


async def run_sink(token: str, handler_name: str) -> None:
    """``--sink-for TOKEN``: serve the consumer kit until SIGTERM, reporting on stdout."""
    handler = append_only if handler_name == "append_only" else on_activity
    bootstrap, database_url = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
    _source, sink, _unused = kits(database_url, bootstrap, token, {}, handler, PipedProjection())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await sink.start()
    try:
        await wait_for(lambda: sink.consumer is not None and sink.consumer.connected, 60, "sink")
        print("ready", flush=True)
        await stop.wait()
    finally:
        await sink.stop()


async def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in names])
    finally:
        await admin.close()


async def raw(bootstrap: str, prefix: str, n: int) -> float:
    topic = f"{prefix}raw"
    await create_topics(bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2
    )
    await producer.start()
    leads = [str(new_id()).encode() for _ in range(max(1, n // 5))]
    value = b'{"event_type":"activity.recorded","payload":{"activity_type":"page_view"}}'
    received = 0
    try:
        started = time.perf_counter()

        async def produce() -> None:
            futures = [
                await producer.send(topic, value=value, key=leads[i % len(leads)]) for i in range(n)
            ]
            await asyncio.gather(*futures)

        sending = asyncio.create_task(produce())
        while received < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            received += sum(len(r) for r in batch.values())
            if batch:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        elapsed = time.perf_counter() - started
        await sending
        return elapsed
    finally:
        await producer.stop()
        await consumer.stop()


async def append_only(event: Envelope, uow: UnitOfWork) -> None:
    """The probe handler minus its per-event INSERT: isolates the kernel's own cost."""
    await uow.append(
        event.lead_id,
        LeadScored(
            fit=1, engagement=0, grade="B", engagement_level=2, matrix_cell="B2", model_version=1
        ),
    )


def kits(
    database_url: str,
    bootstrap: str,
    token: str,
    started: dict[uuid.UUID, float],
    handler: Handler = on_activity,
    projection: LeadCountProjection | None = None,
) -> tuple[ServiceKit, ServiceKit, LeadCountProjection]:
    common: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"bench{token}.",
        "log_json": False,
        "log_level": "WARNING",
        "outbox_poll_seconds": 0.5,
        "migrate_on_start": False,
    }
    source = ServiceKit(
        SourceSettings(db_schema=f"bench_{token}_src", **common),
        migrations_dir=MIGRATIONS,
        topic_partitions=PARTITIONS,
    )
    projection = projection or TimedProjection(started)
    sink = ServiceKit(
        ProbeSettings(db_schema=f"bench_{token}_sink", **common),
        consumes=["intake"],
        handlers={ActivityRecorded: handler},
        projections=[projection],
        migrations_dir=MIGRATIONS,
        topic_partitions=PARTITIONS,
    )
    return source, sink, projection


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def kernel_throughput(
    source: ServiceKit, projection: TimedProjection | SinkProcess, n: int, per_tx: int = 100
) -> float:
    leads = [new_id() for _ in range(max(1, n // 5))]
    base = projection.applied
    started = time.perf_counter()
    for start in range(0, n, per_tx):
        async with source.unit_of_work() as uow:
            for i in range(start, min(n, start + per_tx)):
                await uow.append(
                    leads[i % len(leads)],
                    ActivityRecorded(
                        activity_id=f"a{i}", activity_type="page_view", properties={"seq": str(i)}
                    ),
                )
    await wait_for(lambda: projection.applied - base >= n, 300, "the projection")
    return time.perf_counter() - started


async def kernel_latency(
    source: ServiceKit,
    projection: TimedProjection | SinkProcess,
    started: dict[uuid.UUID, float],
    rate: float,
    seconds: float,
) -> list[float]:
    projection.latencies.clear()
    n = int(rate * seconds)
    leads = [new_id() for _ in range(50)]
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        begun = time.time()
        async with source.unit_of_work() as uow:
            [event] = await uow.append(
                leads[i % len(leads)],
                ActivityRecorded(activity_id=f"l{i}", activity_type="page_view"),
            )
            started[event.event_id] = begun
    await wait_for(lambda: len(projection.latencies) >= n, 120, "latency events")
    return projection.latencies[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("DATABASE_URL")
    if not bootstrap or not database_url:
        raise SystemExit("bench: set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL")
    token = uuid.uuid4().hex[:8]
    n = args.events
    print(f"bench_kernel: {n} events, {PARTITIONS} partitions, token {token}", flush=True)

    raw_seconds = await raw(bootstrap, f"bench{token}.", n)
    raw_rate = n / raw_seconds
    print(f"(a) raw aiokafka produce->consume : {raw_rate:9.0f} events/s ({raw_seconds:.2f}s)")

    started: dict[uuid.UUID, float] = {}
    handler = append_only if args.light_handler else on_activity
    where = "in this process" if args.one_process else "in its own process"
    print(f"consumer handler: {handler.__name__}, consumer kit {where}")
    source, sink, in_process = kits(database_url, bootstrap, token, started, handler)
    assert isinstance(in_process, TimedProjection)
    for kit in (source, sink):
        await upgrade_async(database_url, kit.schema, MIGRATIONS)
    prefix = f"bench{token}."
    await ensure_topics(
        bootstrap,
        [topic_for(p, prefix) for p in ("intake", "scoring")]
        + [f"{topic_for(p, prefix)}.dlq" for p in ("intake", "scoring")],
        PARTITIONS,
    )
    await source.start()
    projection: TimedProjection | SinkProcess
    if args.one_process:
        projection = in_process
        await sink.start()
    else:
        projection = SinkProcess(token, handler.__name__, started, args.loop)
        await projection.start()
    profiler = cProfile.Profile() if args.profile else None

    def cpu_now() -> float:
        child = projection.cpu_seconds() if isinstance(projection, SinkProcess) else 0.0
        return time.process_time() + child

    try:
        await wait_for(
            lambda: (
                args.one_process is False or (sink.consumer is not None and sink.consumer.connected)
            ),
            60,
            "consumer",
        )
        # Warm up: the consumer joins its group and every connection pool fills.
        await kernel_throughput(source, projection, 200)
        if profiler:
            profiler.enable()
        source_before, cpu_before = time.process_time(), cpu_now()
        kernel_seconds = await kernel_throughput(source, projection, n)
        source_cpu = time.process_time() - source_before
        cpu_per_event = (cpu_now() - cpu_before) / n
        if profiler:
            profiler.disable()
        kernel_rate = n / kernel_seconds
        print(
            f"(b) append->outbox->Kafka->consumer->inbox->projection: {kernel_rate:9.0f} "
            f"events/s ({kernel_seconds:.2f}s)"
        )
        print(f"    ratio b/a: {kernel_rate / raw_rate:.2f}")
        print(
            f"    Python CPU of both kits, all stages: {cpu_per_event * 1e3:.2f} ms/event"
            f" -> at most {1 / cpu_per_event:.0f} events/s on one free core"
        )
        if isinstance(projection, SinkProcess):
            # Which process bounds the rate: the busier one's share of a core over the run.
            sink_cpu = cpu_per_event * n - source_cpu
            print(
                f"    source kit (appends, relay) {source_cpu / n * 1e3:.2f} ms/event, sink kit"
                f" (consumer, handler, relay, projection) {sink_cpu / n * 1e3:.2f} ms/event;"
                f" the busier used {max(source_cpu, sink_cpu) / kernel_seconds:.0%} of a core"
            )
        print(f"    load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        lat = await kernel_latency(source, projection, started, args.rate, args.seconds)
        print(
            f"(c) end-to-end latency at {args.rate:.0f} events/s over {len(lat)} events: "
            f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f}"
            f" ms, max {max(lat) * 1000:.1f} ms"
        )
        ok_rate, ok_p99 = kernel_rate >= 5000, percentile(lat, 0.99) <= 0.050
        print(
            f"targets: (b) >= 5,000 events/s {'met' if ok_rate else 'MISSED'}; "
            f"p99 <= 50 ms {'met' if ok_p99 else 'MISSED'}"
        )
    finally:
        if isinstance(projection, SinkProcess):
            await projection.stop()
        else:
            await sink.stop()
        await source.stop()
        await cleanup(database_url, bootstrap, token)
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(40)
        stats.sort_stats("tottime").print_stats(25)


async def cleanup(database_url: str, bootstrap: str, token: str) -> None:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        for suffix in ("src", "sink"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "bench_{token}_{suffix}" CASCADE')
    finally:
        await conn.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(f"bench{token}.")]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--light-handler",
        action="store_true",
        help="handler appends only (no effect rows): the kernel's own cost",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the (b) run")
    parser.add_argument(
        "--one-process", action="store_true", help="run the consumer kit in this process too"
    )
    parser.add_argument("--quick", action="store_true", help="1,000 events, 5 s of latency")
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of both kits (and of the raw baseline): uvloop, as the services "
        "run under uvicorn, or the standard library's",
    )
    parser.add_argument("--sink-for", help=argparse.SUPPRESS)  # the child process's mode
    parser.add_argument("--sink-handler", default="on_activity", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    if args.sink_for:
        run(run_sink(args.sink_for, args.sink_handler))
    else:
        if args.quick:
            args.events, args.seconds = min(args.events, 1000), min(args.seconds, 5.0)
        run(main(args))
