"""The service kit: everything a Leadflow service has besides its own rules and its HTTP app.

``ServiceKit`` wires settings, the database pool, the event store, the outbox relay, the
consumer runners, durable timers and projections, starts them and stops them gracefully
(finish the batch, commit, leave the group), and answers readiness. The HTTP app around it
(routes, guards, problem+json, ``/healthz``, ``/readyz``, ``/metrics``) is built by
``leadflow.events.service.create_service_app``: the kit knows nothing of FastAPI. Nothing is
created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

from leadflow.events import metrics
from leadflow.events.clock import Clock, SystemClock
from leadflow.events.consumer import ConsumerRunner
from leadflow.events.db import head_revision, upgrade_async
from leadflow.events.envelope import Envelope, dlq_topic_for, topic_for
from leadflow.events.gc_tuning import settle_gc
from leadflow.events.outbox import OutboxRelay, notify_channel
from leadflow.events.projection import EventSource, HeadPosition, Projection, ProjectionRunner
from leadflow.events.settings import ServiceSettings
from leadflow.events.sql import Database, Tx
from leadflow.events.store import EventStore, PayloadCodec
from leadflow.events.timer_runner import TimerRunner
from leadflow.events.topics import ensure_topics
from leadflow.events.uow import HandlerMap, TimerHandler, UnitOfWork

log = logging.getLogger("leadflow.service")

S = TypeVar("S")
Hook = Callable[["ServiceKit[Any]"], Awaitable[None]]


def waiting_at(task: asyncio.Task[Any]) -> str:
    """Where a suspended task is waiting: the innermost frame of its chain of awaits."""
    where = None
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        where = frame
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if where is None:
        return "(not suspended in a coroutine)"
    return f"{where.f_code.co_filename}:{where.f_lineno} in {where.f_code.co_name}"


class ServiceKit(Generic[S]):
    """One service's running parts. ``S`` is the type of ``state``: what the service keeps
    for its routes and handlers besides the kit (caches, runtime objects), given at
    construction (``state=``) or assigned once in its ``create_kit``.

    ``on_startup`` hooks run after migrations and before the consumers start;
    ``on_shutdown`` hooks run, last registered first, after the runners have stopped and
    the background work (``spawn``) was cancelled, before the database pool is closed."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        consumes: Sequence[str] = (),
        feedback: Sequence[str] = (),
        handlers: HandlerMap | None = None,
        timer_handlers: Mapping[str, TimerHandler] | None = None,
        projections: Sequence[Projection] = (),
        projection_source: EventSource | None = None,
        projection_head: HeadPosition | None = None,
        clock: Clock | None = None,
        migrations_dir: Path | None = None,
        payload_codec: PayloadCodec | None = None,
        produces: bool = True,
        body_limits: Mapping[str, int] | None = None,
        file_uploads: Sequence[str] = (),
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
        state: S | None = None,
        topic_partitions: int | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.schema = settings.schema_name
        self.consumes = list(consumes)
        if not set(feedback) <= set(consumes):
            raise ValueError(f"feedback {sorted(feedback)} must be among consumes {consumes}")
        # Producers whose events are feedback (they do not move a lead along the funnel): a
        # second consumer of the same group reads them in larger, rarer batches, so a lead's
        # next step never waits behind them (see ``_start_consumers``).
        self.feedback = [p for p in self.consumes if p in feedback]
        self.handlers = dict(handlers or {})
        self.timer_handlers = dict(timer_handlers or {})
        self.projections = list(projections)
        self.clock: Clock = clock or SystemClock()
        self.migrations_dir = migrations_dir
        self.produces = produces
        self.body_limits = dict(body_limits or {})
        # Path prefixes whose raw or multipart bodies are files the route parses itself
        # (imports): the input guard does not refuse a NUL byte in them (see guards).
        self.file_uploads = tuple(file_uploads)
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        # Partitions of the topics this service creates when missing: the kit's caller may
        # fix them (benchmarks), else LEADFLOW_TOPIC_PARTITIONS.
        self.topic_partitions = topic_partitions or settings.topic_partitions
        self.store = EventStore(
            settings.producer,
            topic_prefix=settings.topic_prefix,
            codec=payload_codec,
            notify_channel=notify_channel(self.schema),
            publish=produces,
            serialize_appends=bool(projections) and projection_source is None,
        )
        self._db: Database | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: ConsumerRunner | None = None
        self.feedback_consumer: ConsumerRunner | None = None
        self.timer_runner: TimerRunner | None = None
        self.projection_runner: ProjectionRunner | None = None
        self._projection_source = projection_source
        self._projection_head = projection_head
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._kafka_ok_at = 0.0
        self._state = state

    @property
    def state(self) -> S:
        """The service's own state (see the class docstring)."""
        if self._state is None:
            raise RuntimeError(f"{self.service}'s kit was built without a state")
        return self._state

    @state.setter
    def state(self, value: S) -> None:
        self._state = value

    # -- resources ----------------------------------------------------------------------

    @property
    def db(self) -> Database:
        """The service's pool (connections are opened on first use)."""
        if self._db is None:
            self._db = Database(
                self.settings.database_url,
                self.schema,
                pool_size=self.settings.db_pool_size,
                random_page_cost=self.settings.db_random_page_cost,
            )
        return self._db

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Tx]:
        """A ``Tx`` in autocommit: for single reads (each statement its own transaction)."""
        async with self.db.connect() as tx:
            yield tx

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A ``Tx`` in a read-write transaction without a unit of work (no events): committed
        when the block ends, rolled back if it raises."""
        async with self.db.transaction() as tx:
            yield tx

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Tx]:
        """A read-only transaction whose statements all see the same moment (REPEATABLE
        READ), for a view read with more than one statement: at READ COMMITTED each would
        take its own snapshot, and a writer committing in between shows half its work (a
        lead's stage from before a decision that the next statement already lists)."""
        async with self.db.snapshot() as tx:
            yield tx

    @contextlib.asynccontextmanager
    async def unit_of_work(self, causation: Envelope | None = None) -> AsyncIterator[UnitOfWork]:
        """One transaction for an API command: its events land with its state, or not at all."""
        async with self.db.transaction() as tx:
            uow = await self._make_uow(tx, causation)
            yield uow
            await uow.flush()
        self._after_commit(uow.timers.soonest, bool(uow.appended))

    async def _make_uow(self, tx: Tx, causation: Envelope | None) -> UnitOfWork:
        """For API commands and the timer runner, whose commits are reported to
        ``_after_commit`` (as the consumer runner's are): the relay here needs no NOTIFY."""
        quiet = self._relay_in_process()
        return UnitOfWork(tx, self.store, self.clock, causation, notify_relay=not quiet)

    @property
    def consumer_group(self) -> str:
        """The Kafka consumer group of this service's consumers (DLQ entries name it)."""
        return f"{self.settings.topic_prefix}leadflow.{self.service}"

    def topics(self) -> list[str]:
        prefix = self.settings.topic_prefix
        names = {topic_for(p, prefix) for p in self.consumes}
        if self.produces:
            names |= {
                topic_for(self.settings.producer, prefix),
                dlq_topic_for(self.settings.producer, prefix),
            }
        names |= {dlq_topic_for(p, prefix) for p in self.consumes}
        return sorted(names)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._start_parts()
        # Everything allocated so far lives as long as the process: out of the collector's way.
        settle_gc(self.settings.gc_young_threshold)

    async def _start_parts(self) -> None:
        s = self.settings
        if self.migrations_dir is not None and s.migrate_on_start:
            await upgrade_async(s.database_url, self.schema, self.migrations_dir)
        for hook in self.on_startup:
            await hook(self)
        if not s.run_consumers:
            return
        await ensure_topics(
            s.kafka_bootstrap_servers,
            self.topics(),
            self.topic_partitions,
            s.topic_replication_factor,
            retention_hours=s.topic_retention_hours,
            min_insync_replicas=s.topic_min_insync_replicas,
        )
        if self.produces:
            self.relay = OutboxRelay(
                database_url=s.database_url,
                schema=self.schema,
                bootstrap_servers=s.kafka_bootstrap_servers,
                service=self.service,
                poll_seconds=s.outbox_poll_seconds,
            )
            self._spawn(self.relay.run(), "outbox")
        if self.projections:
            self.projection_runner = ProjectionRunner(
                self.db,
                self.projections,
                self._projection_source or self.store.read_all,
                self._projection_head or self.store.head_position,
                service=self.service,
            )
            self._spawn(self.projection_runner.run(), "projections")
        if self.consumes and self.handlers:
            self._start_consumers()
        if self.timer_handlers:
            self.timer_runner = TimerRunner(
                self.db,
                self.timer_handlers,
                self.clock,
                self._make_uow,
                service=self.service,
                poll_seconds=s.timer_poll_seconds,
                on_applied=self._after_commit,
            )
            self._spawn(self.timer_runner.run(), "timers")

    def _start_consumers(self) -> None:
        """One consumer for the events that move leads along, and, when the service names
        feedback producers, a second member of the same group (same offsets, inbox and DLQ
        attribution) for theirs. The first fetches as soon as a record is there; the second
        lets the broker gather a batch (``LEADFLOW_FEEDBACK_FETCH_*``): one transaction
        for many feedback events instead of one each, never in the way of the next lead."""
        s = self.settings
        main = [p for p in self.consumes if p not in self.feedback]
        if main:
            self.consumer = self._run_consumer(
                main, "consumer", s.consumer_fetch_max_wait_ms, s.consumer_fetch_min_bytes
            )
        if self.feedback:
            self.feedback_consumer = self._run_consumer(
                self.feedback, "feedback", s.feedback_fetch_max_wait_ms, s.feedback_fetch_min_bytes
            )

    def _run_consumer(
        self, producers: Sequence[str], role: str, fetch_max_wait_ms: int, fetch_min_bytes: int
    ) -> ConsumerRunner:
        s = self.settings
        runner = ConsumerRunner(
            db=self.db,
            store=self.store,
            clock=self.clock,
            bootstrap_servers=s.kafka_bootstrap_servers,
            topics=[topic_for(p, s.topic_prefix) for p in producers],
            group_id=self.consumer_group,
            handlers=self.handlers,
            service=self.service,
            batch_size=s.consumer_batch_size,
            max_attempts=s.max_attempts,
            on_applied=self._after_commit,
            commit_interval_seconds=s.consumer_commit_interval_seconds,
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_min_bytes=fetch_min_bytes,
            relay_in_process=self._relay_in_process,
            client_id=f"{self.service}-{role}",
            client_rack=s.kafka_client_rack or None,
        )
        self._spawn(runner.run(), role)
        return runner

    def _relay_in_process(self) -> bool:
        """This process holds the service's active outbox relay: whoever commits events here
        wakes it directly (``_after_commit``), without a NOTIFY, which Postgres delivers to
        every listening session of the database (each service's relay), whatever the
        channel. Another replica's relay, or none yet, is woken by NOTIFY as before; if
        the relay here loses its lock meanwhile, the next one drains the outbox when it
        takes over, or at its next poll."""
        return self.relay is not None and self.relay.active.is_set()

    def _after_commit(self, soonest_timer: datetime | None, appended: bool) -> None:
        """A consumer batch or an API command committed: its events are there to publish
        (the relay, if it runs here) and to project now, and its soonest timer may be due
        before the timer runner's next poll."""
        if appended and self.relay is not None:
            self.relay.wake()
        if self.projection_runner is not None:
            self.projection_runner.wake()
        if self.timer_runner is not None:
            self.timer_runner.wake_for(soonest_timer)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background for the service (an import, a rebuild): tracked
        by the kit, cancelled and awaited when it stops, so nothing outlives the pool it
        writes through. An exception is logged and counted
        (``leadflow_background_task_failures_total``), never lost with the task; the
        returned task is the caller's to watch or cancel."""

        async def guarded() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.BACKGROUND_FAILURES.labels(self.service, name).inc()
                log.exception("background task %s failed", name)
                return None

        task = asyncio.create_task(guarded(), name=f"{self.service}-{name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s task crashed", name)

        self._tasks.append(asyncio.create_task(guarded(), name=f"{self.service}-{name}"))

    async def stop(self) -> None:
        """Graceful: consumers finish and commit their batch, the relay drains, background
        work is cancelled and awaited, the ``on_shutdown`` hooks run, then we go."""
        runners = (
            self.consumer,
            self.feedback_consumer,
            self.timer_runner,
            self.projection_runner,
            self.relay,
        )
        for runner in runners:
            if runner is not None:
                runner.stop()
        background = list(self._background)
        for task in background:
            task.cancel()
        if self._tasks:
            grace = self.settings.shutdown_grace_seconds
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                # Say what it was waiting on: a stop that takes the whole grace period is
                # otherwise a silent SIGKILL-like exit with no clue for whoever is on call.
                log.warning(
                    "%s still running after the %gs grace period, cancelled while at %s",
                    task.get_name(),
                    grace,
                    waiting_at(task),
                )
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        # Cancelled above, awaited here: each had the runners' grace period to unwind.
        await asyncio.gather(*background, return_exceptions=True)
        for hook in reversed(self.on_shutdown):
            try:
                await hook(self)
            except Exception:
                log.exception("%s: an on_shutdown hook failed", self.service)
        if self._db is not None:
            await self._db.close()
            self._db = None

    # -- health -------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            async with self.db.connect() as tx:
                await tx.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"down: {type(exc).__name__}"
        if self.migrations_dir is not None and checks["postgres"] == "ok":
            try:
                async with self.db.connect() as tx:
                    current = await _current_revision(tx, self.schema)
                head = head_revision(self.migrations_dir)
                checks["migrations"] = "ok" if current == head else f"at {current}, head {head}"
            except Exception as exc:
                checks["migrations"] = f"unknown: {type(exc).__name__}"
        if self.settings.run_consumers:
            checks["kafka"] = await self._kafka_check()
        return checks

    async def _kafka_check(self) -> str:
        if time.monotonic() - self._kafka_ok_at < 5.0:
            return "ok"
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, request_timeout_ms=3000
        )
        try:
            await asyncio.wait_for(admin.start(), timeout=3)
            await asyncio.wait_for(admin.list_topics(), timeout=3)
            self._kafka_ok_at = time.monotonic()
            return "ok"
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        finally:
            with contextlib.suppress(Exception):
                await admin.close()


async def _current_revision(tx: Tx, schema: str) -> str | None:
    """The schema's Alembic revision (None before its first migration)."""
    if await tx.fetchval("SELECT to_regclass(:t)::text", t=f'"{schema}".alembic_version') is None:
        return None
    value = await tx.fetchval(f'SELECT version_num FROM "{schema}".alembic_version')
    return str(value) if value is not None else None
