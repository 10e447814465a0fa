"""Test helpers: poll for a condition with a deadline, run an app's lifespan, talk to topics.

Tests never sleep for synchronisation; they ``wait_until`` the thing they expect is true.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from leadflow.events.envelope import Envelope
from leadflow.events.errors import DecodeError
from leadflow.events.sql import Database

T = TypeVar("T")


class WatchedEvent(asyncio.Event):
    """An ``asyncio.Event`` that says whether someone is waiting on it: a test swaps it in for
    a runner's wake or stop event and ``wait_until`` the runner is idle on it, instead of
    sleeping and hoping it got there."""

    waiting = False

    async def wait(self) -> Literal[True]:
        self.waiting = True
        try:
            return await super().wait()
        finally:
            self.waiting = False


class StatementLog:
    """Every statement the kit's pool sends while the log is open, BEGIN and COMMIT
    included (asyncpg's query logger on each connection checked out meanwhile). For tests
    that count a batch's round trips.

    ``with StatementLog(kit.db) as log: ...``, then ``log.statements``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[str] = []
        self._block: contextlib.AbstractContextManager[None] | None = None

    def _logged(self, record: Any) -> None:
        self.statements.append(record.query)

    def __enter__(self) -> StatementLog:
        self._block = self.db.logging_queries(self._logged)
        self._block.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._block is not None
        self._block.__exit__(*exc)
        self._block = None


async def one_loop_turn() -> None:
    """Let every task that is ready run once (as one database round trip inside a step
    would), for tests that count what happens in loop turns rather than in time."""
    loop = asyncio.get_running_loop()
    turn = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Return the first truthy value of ``predicate()``; fail after ``timeout`` seconds.

    The default is for a loaded 2-core machine running the suite beside a shared Kafka and
    Postgres: a consumer group's first assignment alone can take well over 10 s there. A
    passing test waits no longer for it; only a failing one takes the whole minute."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        last = value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {message} (last={last!r})")
        await asyncio.sleep(interval)


async def wait_until_equal(
    read: Callable[[], Any],
    expected: Any,
    timeout: float = 90.0,
    interval: float = 0.2,
    message: str = "",
) -> Any:
    """Poll ``read()`` until it returns exactly ``expected``, and return that value.

    For a figure that a consumer other than the one a test waited for is still catching up
    on (wait for routing's assignment, then read analytics' funnel: it may lag): waiting for
    one thing and asserting another is a race that a loaded machine loses. After
    ``timeout`` it fails showing the last value beside the expected one."""
    last: Any = None

    async def matches() -> bool:
        nonlocal last
        value = read()
        last = await value if inspect.isawaitable(value) else value
        return bool(last == expected)

    try:
        await wait_until(matches, timeout=timeout, interval=interval, message=message)
    except AssertionError:
        raise AssertionError(f"{message}: {last!r} != expected {expected!r}") from None
    return last


@contextlib.asynccontextmanager
async def app_client(
    app: FastAPI,
    base_url: str = "http://test",
    *,
    raise_app_exceptions: bool = True,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (consumers, relay, timers) and give an in-process HTTP client.

    ``raise_app_exceptions=False`` answers an unhandled error with the app's 500, as a
    real server would, instead of raising it in the test. ``headers`` go with every request
    (a credential for a test that reads reports throughout)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers
        ) as client:
            yield client


async def produce_events(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=e.to_json(), key=e.record_key(), headers=e.record_headers()
            )
            for e in envelopes
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_raw(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_records(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Any]], bool],
    timeout: float = 60.0,
) -> list[Any]:
    """Read ``topic`` from the beginning (no group) until ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met within {timeout}s ({len(records)} records)"
                )
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def consume_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Envelope]], bool],
    timeout: float = 60.0,
) -> list[Envelope]:
    """Decoded events of ``topic`` (undecodable records skipped) once ``until(events)`` holds."""
    events: list[Envelope] = []

    def decoded_until(records: list[Any]) -> bool:
        events.clear()
        for r in records:
            with contextlib.suppress(DecodeError):
                events.append(Envelope.from_record(r.key, r.value, list(r.headers or ())))
        return until(events)

    await consume_records(bootstrap, topic, until=decoded_until, timeout=timeout)
    return events


async def topic_retention_ms(bootstrap: str, topics: Sequence[str]) -> dict[str, str]:
    """The ``retention.ms`` set on each topic, as the broker reports it."""
    return await topic_config(bootstrap, topics, "retention.ms")


async def topic_config(bootstrap: str, topics: Sequence[str], key: str) -> dict[str, str]:
    """One configuration entry (``retention.ms``, ``min.insync.replicas``...) of each topic,
    as the broker reports it."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {key: None}) for t in topics]
        )
    finally:
        await admin.close()
    found: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            for entry in entries:
                if entry[0] == key:
                    found[name] = entry[1]
    return found
