"""Whole-pipeline benchmark: leads/s through all five services, and POST -> LeadAssigned latency.

    uv run python bench/pipeline.py [--quick] [--rates 100,200,300,400] [--step-seconds 20]

Starts its own platform (a private Kafka and Postgres on free ports, the five services as
real uvicorn processes on a free port block, state under a temporary directory; intake's
per-key rate limit lifted, since one key sends the whole load), configures
routing (a queue, a team of reps, one round-robin rule) and then, in one run, measures:

* **latency at 50 leads/s**: open-loop POST /v1/inquiries of sales-ready leads; for each one
  the time from the POST to the ``lead.assigned`` record on ``leadflow.routing`` (the
  record's producer timestamp, so our own consumer's delay is not counted);
* **sustained throughput**: open-loop steps at rising rates (until one does not keep pace); the
  figure is what the platform delivered with its lag bounded. A step is *sustained* when
  every lead of the step was assigned at no less than 90% of the offered rate (from the
  step's start to its last assignment) and every consumer group's lag was back to zero
  within ``drain`` seconds of the step's end (lag bounded, not growing);
* **baselines on the same broker and database**: raw aiokafka produce -> consume latency at
  50 msg/s and produce+consume throughput; raw asyncpg single-row insert transactions/s;
* **profile** (unless ``--no-profile``): the service with the most lag / slowest stage is
  restarted under cProfile, driven for a while, stopped cleanly, and its top functions and
  database round trips per consumed event are reported.

Prints a markdown section (``bench/__main__.py`` collects it into ``bench/results/``).
The fault suite (tests/faults) reuses ``launch_platform``, ``configure_platform``,
``LoadDriver`` and ``AssignmentWatcher`` from here. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.devstack.__main__ import Devstack, ServiceSpec, available_services
from leadflow.devstack.procs import free_block
from leadflow.events.waiting import wait_event

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------
# Launching the platform


@dataclass
class Platform:
    """A running private platform: the devstack plus what clients need to talk to it."""

    stack: Devstack
    specs: list[ServiceSpec]
    creds: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.stack.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.stack.postgres.url

    def url(self, service: str) -> str:
        spec = next(s for s in self.specs if s.name == service)
        return f"http://127.0.0.1:{spec.port}"

    def spec(self, service: str) -> ServiceSpec:
        return next(s for s in self.specs if s.name == service)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['admin_token']}"}

    @property
    def api_key(self) -> dict[str, str]:
        return {"X-Api-Key": self.creds["api_key"]}

    def restart_service(self, name: str, *, sig: int = signal.SIGKILL) -> None:
        """Kill (default SIGKILL, the whole process group) and start again; waits for ready."""
        proc = self.stack.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
        spec = self.spec(name)
        self.stack.start_service(spec)
        if not self.stack.wait_ready(spec, timeout=120):
            raise RuntimeError(f"{name} did not come back; see {self.stack.home}/logs")

    def close(self) -> None:
        self.stack.stop_all()


# The load driver sends every inquiry with one API key, and intake limits each key to 200
# requests/s by default (abuse protection, LEADFLOW_INTAKE_KEY_RATE_PER_SECOND): above that
# rate a throughput step measured the limiter (429s, retried with back-off), not the
# platform. The benchmark lifts it, as bench_intake does; the fault suite keeps the defaults.
UNTHROTTLED_KEY = {
    "LEADFLOW_INTAKE_KEY_RATE_PER_SECOND": "1000000",
    "LEADFLOW_INTAKE_KEY_BURST": "1000000",
}


def launch_platform(
    home: Path, *, quiet: bool = True, extra_env: dict[str, str] | None = None
) -> Platform:
    """Private Kafka + Postgres on free ports and every service on a free 5-port block
    (``extra_env`` added to every service's environment).

    Blocking (and the broker's readiness check runs its own event loop): from async code
    call it through ``asyncio.to_thread``.
    """
    home.mkdir(parents=True, exist_ok=True)
    port_base = free_block(6)  # services use base+1 .. base+5
    # Ports 0: the broker and the database pick free ones (below the ephemeral range).
    stack = Devstack(
        home, kafka_port=0, pg_port=0, quiet=quiet, port_base=port_base, extra_env=extra_env
    )
    try:
        stack.start_infra()
        specs = available_services(port_base)
        for spec in specs:
            stack.start_service(spec)
        for spec in specs:
            if not stack.wait_ready(spec, timeout=180):
                log = (home / "logs" / f"{spec.name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{spec.name} did not become ready:\n{log}")
    except BaseException:
        stack.stop_all()
        raise
    return Platform(stack, specs, stack.credentials())


REPS = [f"rep-{i}" for i in range(1, 6)]


def configure_platform(p: Platform, *, sla_minutes: float | None = None) -> None:
    """Routing: a queue, a team of five always-available reps, one round-robin rule.

    With ``sla_minutes`` an SLA policy "accept within N minutes of assignment" (calendar
    time, warning at half-time, an escalation reminder at the breach) replaces the defaults,
    so timers fire while a test runs.
    """
    with httpx.Client(timeout=30, headers=p.admin) as c:
        routing = p.url("routing")
        _ok(c.put(f"{routing}/v1/routing/queues/unassigned", json={"name": "Unassigned"}))
        _ok(c.put(f"{routing}/v1/routing/queues/inside-sales", json={"name": "Inside sales"}))
        for rep in REPS:
            _ok(c.put(f"{routing}/v1/routing/reps/{rep}", json={"name": rep, "team_id": "inside"}))
        _ok(
            c.put(
                f"{routing}/v1/routing/teams/inside",
                json={"name": "Inside", "members": REPS, "queue_id": "inside-sales"},
            )
        )
        _ok(
            c.post(
                f"{routing}/v1/routing/rules",
                json={
                    "rules": [
                        {
                            "id": "everyone",
                            "target": {
                                "kind": "team",
                                "team_id": "inside",
                                "strategy": "round_robin",
                            },
                            "fallback_queue_id": "inside-sales",
                        }
                    ],
                    "default_queue_id": "unassigned",
                    "published_by": "bench",
                },
            )
        )
        if sla_minutes is not None:
            _ok(
                c.post(
                    f"{p.url('sla-monitor')}/v1/sla/policies",
                    json={
                        "published_by": "faults",
                        "policies": [
                            {
                                "policy_id": "accept-fast",
                                "name": "accept quickly",
                                "measures": "accept",
                                "start_on": ["lead.assigned"],
                                "met_on": ["lead.accepted"],
                                "stop_on": ["lead.rejected", "lead.recycled"],
                                "duration": {
                                    "amount": sla_minutes,
                                    "unit": "minutes",
                                    "business": False,
                                },
                                "warn_at_pct": 50,
                                "escalation": [
                                    {
                                        "action": "remind_owner",
                                        "after": {
                                            "amount": 0,
                                            "unit": "minutes",
                                            "business": False,
                                        },
                                    }
                                ],
                            }
                        ],
                    },
                )
            )


def _ok(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}")
    return r


def inquiry_body(n: int, run: str) -> dict[str, Any]:
    """A sales-ready inquiry under the default scoring model (A grade, hot, opted in)."""
    return {
        "contact": {
            "email": f"buyer{n}.{run}@acme{n % 211}.example",
            "first_name": "Pat",
            "last_name": f"Buyer{run}x{n}",  # unique per run: no identity match across runs
            "title": "Chief Executive Officer",
            "department": "Management",
            "company": f"Acme {run} {n % 211}",
            "industry": "Software",
            "country": "India",
        },
        "source": {"channel": "referral", "campaign": "bench", "utm_source": "partner"},
        "answers": {
            "compelling_event": "contract renewal",
            "timeframe": "this quarter",
            "budget": "50k",
            "authority": "yes, I sign",
            "company_size": "1000",
            "product_interest": "platform",
            "opportunity_size": "100k",
        },
        "consent": {"marketing_opt_in": True, "text_version": "v1"},
        "rating": "hot",
    }


# --------------------------------------------------------------------------------------
# Load


@dataclass
class Sent:
    key: str
    started: float  # wall clock (time.time) of the first attempt
    status: int = 0
    lead_id: str | None = None
    inquiry_id: str | None = None
    attempts: int = 0
    latency: float = 0.0  # seconds of the successful attempt


class LoadDriver:
    """Open-loop POST /v1/inquiries at a fixed rate through a pool of keep-alive connections.

    Each inquiry is retried with its Idempotency-Key on connection errors, 5xx and 429
    until ``retry_for`` seconds passed (a client that keeps its promise: a 202 is an
    accepted inquiry, nothing else is). A tiny HTTP/1.1 client on asyncio streams, so a
    killed server only costs a reconnect (no shared pool to wedge) and the driver stays
    cheap next to the services it measures.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        headers: dict[str, str],
        *,
        retry_for: float = 120.0,
        connections: int = 64,
        timeout: float = 30.0,
    ) -> None:
        # Several URLs (replicas of intake): requests go round-robin, and an inquiry's retry
        # goes to the next replica, as a load balancer's client would see it.
        self.targets: list[tuple[str, int]] = []
        for url in [base_url] if isinstance(base_url, str) else base_url:
            host_port = url.split("://", 1)[1].rstrip("/")
            host, _, port = host_port.partition(":")
            self.targets.append((host, int(port or 80)))
        self.host, self.port = self.targets[0]
        self.headers = headers
        self.retry_for = retry_for
        self.connections = connections
        self.timeout = timeout
        self.run = uuid.uuid4().hex[:8]
        self.sent: list[Sent] = []
        self.counter = 0
        self.failures = 0  # attempts answered 5xx/429 or not at all (the client retries them)
        self._queue: asyncio.Queue[tuple[Sent, int] | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._retries: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> LoadDriver:
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.connections)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.settle()
        for _ in self._workers:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def drive(
        self, rate: float, seconds: float, stop: asyncio.Event | None = None
    ) -> list[Sent]:
        """Send ``rate``/s for ``seconds`` (or until ``stop``); returns this step's sends."""
        start = time.monotonic()
        step: list[Sent] = []
        i = 0
        while True:
            due = start + i / rate
            now = time.monotonic()
            if now - start >= seconds or (stop is not None and stop.is_set()):
                break
            if due > now:
                await asyncio.sleep(due - now)  # pacing only
            self.counter += 1
            item = Sent(key=f"{self.run}-{self.counter}", started=time.time())
            step.append(item)
            self.sent.append(item)
            self._submit(item, self.counter)
            i += 1
        return step

    def _submit(self, item: Sent, n: int) -> None:
        self._open += 1
        self._idle.clear()
        self._queue.put_nowait((item, n))

    def _finish(self) -> None:
        self._open -= 1
        if self._open == 0:
            self._idle.set()

    async def settle(self) -> None:
        """Until every inquiry got its answer (or gave up retrying)."""
        await self._idle.wait()

    def _request(self, item: Sent, n: int) -> bytes:
        body = orjson.dumps(inquiry_body(n, self.run))
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        head = (
            f"POST /v1/inquiries HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: {item.key}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def _worker(self) -> None:
        # One keep-alive connection per target (intake replica), opened on first use.
        conns: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        while True:
            job = await self._queue.get()
            if job is None:
                break
            item, n = job
            item.attempts += 1
            t0 = time.perf_counter()
            target = self.targets[(n + item.attempts - 1) % len(self.targets)]
            try:
                if target not in conns:
                    conns[target] = await asyncio.wait_for(
                        asyncio.open_connection(*target), self.timeout
                    )
                reader, writer = conns[target]
                writer.write(self._request(item, n))
                await writer.drain()
                status, answer, close = await asyncio.wait_for(_response(reader), self.timeout)
                if close:
                    conns.pop(target)[1].close()
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                if target in conns:
                    conns.pop(target)[1].close()
                status, answer = -1, b""
            item.status = status
            if status == 202:
                data = orjson.loads(answer)
                item.lead_id, item.inquiry_id = data["lead_id"], data["inquiry_id"]
                item.latency = time.perf_counter() - t0
                self._finish()
            elif 0 < status < 500 and status != 429:
                self._finish()  # refused: not accepted, not retried
            elif time.time() - item.started > self.retry_for:
                self.failures += 1
                self._finish()
            else:
                self.failures += 1
                delay = min(0.2 * 2 ** (item.attempts - 1), 3.0)
                task = asyncio.create_task(self._later(item, n, delay))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)
        for _reader, writer in conns.values():
            writer.close()

    async def _later(self, item: Sent, n: int, delay: float) -> None:
        await asyncio.sleep(delay)  # client back-off before a retry
        self._queue.put_nowait((item, n))

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 202]


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server wants the connection closed) of one HTTP/1.1 response."""
    line = await reader.readuntil(b"\r\n")
    status = int(line.split(b" ", 2)[1])
    length, close = 0, False
    while (header := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = header.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


class AssignmentWatcher:
    """Collects ``lead.assigned`` / ``lead.reassigned`` from ``leadflow.routing`` (no group),
    each with its record's timestamp: when routing's relay sent it."""

    def __init__(self, bootstrap: str, topic: str = "leadflow.routing") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.assigned: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), timeout=60)

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                group_id=None,
                # Latency is read from the records' timestamps (set when the relay sent
                # them), so the watcher may gather: answered at once per record, it would add
                # a broker fetch per lead (and ~50 a second when idle) to the CPU it measures.
                fetch_max_wait_ms=200,
                fetch_min_bytes=256 * 1024,
            )
            try:
                await consumer.start()
                self.ready.set()
                while True:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for r in records:
                            self._take(r)
            except asyncio.CancelledError:
                await consumer.stop()
                raise
            except Exception:  # broker restarting: start again from the beginning (dedup)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                self.assigned.clear()
                await asyncio.sleep(1)

    def _take(self, record: Any) -> None:
        try:
            doc = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(doc, dict) or doc.get("event_type") != "lead.assigned":
            return
        events = self.assigned.setdefault(str(doc.get("lead_id")), [])
        if all(e[1].get("event_id") != doc.get("event_id") for e in events):
            events.append((record.timestamp / 1000.0, doc))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def group_lags(bootstrap: str) -> dict[str, int]:
    """Total lag (end offset - committed offset) of every ``leadflow.*`` consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        lags: dict[str, int] = {}
        for group, _kind in await admin.list_consumer_groups():
            if not str(group).startswith("leadflow."):
                continue
            offsets = await admin.list_consumer_group_offsets(group)
            tps = [tp for tp in offsets if not tp.topic.endswith(".dlq")]
            if not tps:
                lags[group] = 0
                continue
            ends = await consumer.end_offsets(tps)
            lags[group] = sum(max(0, ends[tp] - offsets[tp].offset) for tp in tps)
        return lags
    finally:
        await consumer.stop()
        await admin.close()


# --------------------------------------------------------------------------------------
# Measurements


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@dataclass
class LatencyResult:
    rate: float
    posted: int
    accepted: int
    assigned: int
    p50_ms: float
    p99_ms: float
    http_p50_ms: float
    http_p99_ms: float


async def measure_latency(
    p: Platform, watcher: AssignmentWatcher, rate: float, seconds: float
) -> LatencyResult:
    async with LoadDriver(p.url("intake"), p.api_key, retry_for=5) as driver:
        await driver.drive(rate, seconds)
        await driver.settle()
    ok = driver.accepted
    with contextlib.suppress(AssertionError):
        await _wait(lambda: all(s.lead_id in watcher.assigned for s in ok), 60)
    lat = [
        watcher.assigned[s.lead_id][0][0] - s.started for s in ok if s.lead_id in watcher.assigned
    ]
    http = [s.latency for s in ok]
    return LatencyResult(
        rate,
        len(driver.sent),
        len(ok),
        len(lat),
        pct(lat, 0.5) * 1000,
        pct(lat, 0.99) * 1000,
        pct(http, 0.5) * 1000,
        pct(http, 0.99) * 1000,
    )


@dataclass
class StepResult:
    rate: float
    seconds: float
    accepted: int
    errors: int
    assigned_in_step: int
    drain_seconds: float
    max_lag: int
    achieved: float  # leads assigned per second from the step's start to its last one
    drained: bool  # every lead assigned and every group's lag back to zero in time
    sustained: bool  # drained, and assigned at (nearly) the offered rate


# A step is sustained only if the leads were also assigned at (nearly) the offered rate: the
# load driver queues requests the server has not taken yet, so "all assigned, lag back to
# zero" alone holds for any rate, the server merely taking longer than the step.
SUSTAINED_SHARE = 0.9


async def measure_step(
    p: Platform, watcher: AssignmentWatcher, rate: float, seconds: float, drain: float
) -> StepResult:
    max_lag = 0
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        nonlocal max_lag
        while not stop_sampling.is_set():
            with contextlib.suppress(Exception):
                max_lag = max(max_lag, sum((await group_lags(p.bootstrap)).values()))
            await wait_event(stop_sampling, 2.0)

    sampler = asyncio.create_task(sample())
    t0 = time.time()
    async with LoadDriver(p.url("intake"), p.api_key, retry_for=5) as driver:
        await driver.drive(rate, seconds)
    ok = driver.accepted
    ended = time.time()

    def done() -> bool:
        return all(s.lead_id in watcher.assigned for s in ok)

    try:
        await _wait(done, drain)
        lags = await group_lags(p.bootstrap)
        await _wait(lambda: _lag_zero(p), drain)
        drained = True
    except AssertionError:
        drained, lags = False, {}
    drain_seconds = time.time() - ended
    stop_sampling.set()
    await sampler
    assigned = [watcher.assigned[s.lead_id][0][0] for s in ok if s.lead_id in watcher.assigned]
    last = max(assigned, default=ended)
    achieved = len(assigned) / max(last - t0, 1.0)
    del lags
    return StepResult(
        rate,
        seconds,
        len(ok),
        len(driver.sent) - len(ok),
        len(assigned),
        drain_seconds,
        max_lag,
        achieved,
        drained and len(assigned) == len(ok),
        drained
        and len(assigned) == len(ok)
        and len(ok) >= 0.99 * rate * seconds
        and achieved >= SUSTAINED_SHARE * rate,
    )


async def _lag_zero(p: Platform) -> bool:
    try:
        return sum((await group_lags(p.bootstrap)).values()) == 0
    except Exception:
        return False


async def _wait(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    from leadflow.testing import wait_until

    return await wait_until(predicate, timeout=timeout, interval=interval)


@dataclass
class KafkaBaseline:
    p50_ms: float
    p99_ms: float
    throughput: float  # records/s produced and consumed (1 KB values)


async def raw_kafka(bootstrap: str, rate: float, seconds: float, bulk: int) -> KafkaBaseline:
    """aiokafka produce -> consume: latency at ``rate``/s, then ``bulk`` records flat out."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()
    await (await producer.send(topic, b"warm"))  # creates the topic
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    value = b"x" * 1024
    try:
        received: dict[int, float] = {}

        async def consume(until: int) -> None:
            while len(received) < until:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        if r.key is not None:
                            received[int(r.key)] = now

        n = int(rate * seconds)
        reader = asyncio.create_task(consume(n))
        sent: dict[int, float] = {}
        start = time.monotonic()
        for i in range(n):
            due = start + i / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            sent[i] = time.time()
            await producer.send(topic, value, key=str(i).encode())
        await asyncio.wait_for(reader, 60)
        lat = [received[i] - sent[i] for i in range(n)]
        received.clear()
        t0 = time.perf_counter()
        reader = asyncio.create_task(consume(bulk))
        futures = [await producer.send(topic, value, key=str(n + i).encode()) for i in range(bulk)]
        await asyncio.gather(*futures)
        await asyncio.wait_for(reader, 120)
        throughput = bulk / (time.perf_counter() - t0)
        return KafkaBaseline(pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000, throughput)
    finally:
        await consumer.stop()
        await producer.stop()


async def raw_postgres(url: str, rows: int, concurrency: int = 8) -> float:
    """asyncpg single-row INSERT transactions/s (a small jsonb row, like one event)."""
    conn = await asyncpg.connect(url)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, payload jsonb NOT NULL)")
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    payload = orjson.dumps({"k": "v" * 200}).decode()
    try:
        per = rows // concurrency

        async def worker() -> None:
            async with pool.acquire() as c:
                for _ in range(per):
                    await c.execute(
                        f"INSERT INTO {table} VALUES ($1, $2::jsonb)", uuid.uuid4(), payload
                    )

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return per * concurrency / (time.perf_counter() - t0)
    finally:
        async with pool.acquire() as c:
            await c.execute(f"DROP TABLE {table}")
        await pool.close()


# --------------------------------------------------------------------------------------
# Profile


def start_profiled(p: Platform, name: str, out: Path) -> subprocess.Popen[bytes]:
    """Stop ``name`` and start it again under cProfile (same settings as devstack's)."""
    proc = p.stack.procs[name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    spec = p.spec(name)
    env = {
        **os.environ,
        **p.stack.env(),
        "LEADFLOW_PORT": str(spec.port),
        "LEADFLOW_HOST": "127.0.0.1",
        "LEADFLOW_DB_SCHEMA": spec.schema,
    }
    log = open(p.stack.home / "logs" / f"{name}.profiled.log", "ab")  # noqa: SIM115
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(out),
            "-m",
            "uvicorn",
            "--factory",
            f"{spec.module}.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(spec.port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "10",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    p.stack.procs[name] = child
    if not p.stack.wait_ready(spec, timeout=120):
        raise RuntimeError(f"profiled {name} did not become ready")
    return child


# Round trips to Postgres, as the profile sees them: statements through SQLAlchemy's asyncpg
# adapter, direct asyncpg calls (the outbox relay), and BEGIN/COMMIT/ROLLBACK.
DB_CALLS = {
    "sqlalchemy/dialects/postgresql/asyncpg.py": {"_prepare_and_execute", "_executemany"},
    "asyncpg/connection.py": {"fetch", "fetchval", "fetchrow", "execute"},
    "asyncpg/transaction.py": {"start", "commit", "rollback"},
}


def summarise_profile(path: Path, events: int, top: int = 15) -> tuple[str, dict[str, float]]:
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    db_trips = 0
    for (filename, _line, func), (_cc, nc, _tt, _ct, _callers) in raw.items():
        if any(filename.endswith(f) and func in names for f, names in DB_CALLS.items()):
            db_trips += nc
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        if "/leadflow/" in filename:
            short = filename.split("/leadflow/", 1)[1]
            rows.append((ct, tt, nc, f"leadflow/{short}:{line} {func}"))
    rows.sort(reverse=True)
    out = io.StringIO()
    out.write("| cumulative s | own s | calls | function |\n|---:|---:|---:|---|\n")
    for ct, tt, nc, name in rows[:top]:
        out.write(f"| {ct:.2f} | {tt:.2f} | {nc} | `{name}` |\n")
    figures = {
        "db_calls": float(db_trips),
        "events": float(events),
        "db_per_event": db_trips / max(events, 1),
    }
    return out.getvalue(), figures


async def consumed_events(p: Platform, schema: str) -> int:
    """Events the service consumed (its inbox rows), for round trips per event."""
    conn = await asyncpg.connect(p.database_url)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".inbox'))
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------
# Main


def fmt_ms(x: float) -> str:
    return f"{x:.1f} ms"


async def run(args: argparse.Namespace) -> str:
    home = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    started = time.monotonic()
    print(f"[pipeline] launching the platform under {home} ...", file=sys.stderr, flush=True)
    p = await asyncio.to_thread(lambda: launch_platform(home, extra_env=UNTHROTTLED_KEY))
    lines: list[str] = []
    try:
        configure_platform(p)
        watcher = AssignmentWatcher(p.bootstrap)
        await watcher.start()
        print(
            f"[pipeline] ready in {time.monotonic() - started:.0f}s; warming up",
            file=sys.stderr,
            flush=True,
        )
        await measure_latency(p, watcher, 20, args.warmup)  # warm-up, not reported
        print("[pipeline] baselines", file=sys.stderr, flush=True)
        kafka = await raw_kafka(p.bootstrap, 50, args.latency_seconds, args.bulk)
        pg_rate = await raw_postgres(p.database_url, args.pg_rows)
        print("[pipeline] latency at 50 leads/s", file=sys.stderr, flush=True)
        lat = await measure_latency(p, watcher, 50, args.latency_seconds)
        steps: list[StepResult] = []
        cpu_before = platform_cpu(p)
        for rate in args.rates:
            print(f"[pipeline] step {rate} leads/s", file=sys.stderr, flush=True)
            step = await measure_step(p, watcher, rate, args.step_seconds, args.drain)
            steps.append(step)
            print(f"[pipeline]   {step}", file=sys.stderr, flush=True)
            if not step.sustained:
                break
        cpu_md = cpu_table(cpu_before, platform_cpu(p), sum(s.assigned_in_step for s in steps))
        lags = await group_lags(p.bootstrap)
        # What the platform delivered with its lag bounded: the offered rate of a step that
        # kept pace, the achieved rate of one that did not (its backlog queued client-side).
        best = max((min(s.rate, s.achieved) for s in steps if s.drained), default=0.0)
        peak = max((s.achieved for s in steps), default=0.0)
        profile_md = ""
        if args.profile:
            profile_md = await profile(p, args, steps)
        lines += [
            "### Pipeline: POST /v1/inquiries -> lead.assigned, all five services",
            "",
            f"Machine: {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the end (shared). Private Kafka + Postgres. "
            "Intake's per-key rate limit lifted (one key sends all the load).",
            "",
            "| measure | pipeline | baseline | ratio (pipeline / baseline) | target |",
            "|---|---:|---:|---:|---|",
            f"| p50 latency at 50/s | {fmt_ms(lat.p50_ms)} | {fmt_ms(kafka.p50_ms)} raw "
            f"aiokafka produce->consume | {lat.p50_ms / kafka.p50_ms:.1f}x | <= 50 ms: "
            f"{'met' if lat.p50_ms <= 50 else 'NOT met'} |",
            f"| p99 latency at 50/s | {fmt_ms(lat.p99_ms)} | {fmt_ms(kafka.p99_ms)} | "
            f"{lat.p99_ms / kafka.p99_ms:.1f}x | <= 250 ms: "
            f"{'met' if lat.p99_ms <= 250 else 'NOT met'} |",
            f"| sustained leads/s (assigned, lag drained) | {best:.0f} | {kafka.throughput:.0f} raw "
            f"aiokafka records/s | {best / kafka.throughput:.3f} | >= 300: "
            f"{'met' if best >= 300 else 'NOT met'} |",
            f"| sustained leads/s vs DB | {best:.0f} | {pg_rate:.0f} raw asyncpg insert "
            f"tx/s | {best / pg_rate:.3f} | |",
            f"| peak assigned leads/s in a step | {peak:.0f} | | | |",
            "",
            f"Latency run: {lat.posted} posted, {lat.accepted} accepted, {lat.assigned} "
            f"assigned; HTTP 202 p50 {fmt_ms(lat.http_p50_ms)}, p99 {fmt_ms(lat.http_p99_ms)}.",
            "",
            "| offered leads/s | accepted | errors | assigned | drain after step | max lag "
            "(all groups) | achieved leads/s | kept pace, lag drained |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
            *[
                f"| {s.rate:.0f} | {s.accepted} | {s.errors} | {s.assigned_in_step} | "
                f"{s.drain_seconds:.1f} s | {s.max_lag} | {s.achieved:.0f} | "
                f"{'yes' if s.sustained else 'no'} |"
                for s in steps
            ],
            "",
            f"Consumer lag at the end: {lags}",
            "",
            *cpu_md,
            profile_md,
        ]
        await watcher.stop()
    finally:
        p.close()
        shutil.rmtree(home, ignore_errors=True)
    return "\n".join(lines)


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def platform_cpu(p: Platform) -> dict[str, float]:
    """CPU seconds so far of each service process, the broker and Postgres (the postmaster
    and its backends: the pools keep their connections, so few exit in between)."""
    cpu = {name: _process_cpu(proc.pid) for name, proc in p.stack.procs.items()}
    if p.stack.kafka.proc is not None:
        cpu["kafka"] = _process_cpu(p.stack.kafka.proc.pid)
    pidfile = p.stack.postgres.data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int(pidfile.read_text().split()[0])
        total = _process_cpu(postmaster)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += _process_cpu(int(stat.parent.name))
        cpu["postgres"] = total
    return cpu


def cpu_table(before: dict[str, float], after: dict[str, float], leads: int) -> list[str]:
    """Markdown: where the CPU of the throughput steps went, per lead assigned."""
    spent = {k: after.get(k, 0.0) - v for k, v in before.items()}
    total = sum(spent.values()) or 1e-9
    rows = [
        f"| {name} | {secs:.1f} | {secs / max(leads, 1) * 1000:.2f} | {secs / total:.0%} |"
        for name, secs in sorted(spent.items(), key=lambda kv: -kv[1])
    ]
    return [
        f"CPU of the throughput steps ({leads} leads assigned; {total:.1f} CPU-s on "
        f"{os.cpu_count()} cores):",
        "",
        "| process | CPU s | CPU ms per lead | share |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]


async def profile(p: Platform, args: argparse.Namespace, steps: list[StepResult]) -> str:
    """Profile --profile-service (default sla-monitor: the consumer that lagged most in the
    fault suite and in the throughput steps)."""
    name = args.profile_service
    out = p.stack.home / f"{name}.prof"
    schema = p.spec(name).schema
    print(f"[pipeline] profiling {name}", file=sys.stderr, flush=True)
    child = start_profiled(p, name, out)
    before = await consumed_events(p, schema)
    watcher = AssignmentWatcher(p.bootstrap)
    await watcher.start()
    rate = max(50.0, min(200.0, max((s.rate for s in steps), default=100.0)))
    async with LoadDriver(p.url("intake"), p.api_key, retry_for=5) as driver:
        await driver.drive(rate, args.profile_seconds)
    with contextlib.suppress(AssertionError):
        await _wait(lambda: _lag_zero(p), 60)
    events = await consumed_events(p, schema) - before
    await watcher.stop()
    os.killpg(child.pid, signal.SIGINT)
    child.wait(timeout=60)
    table, fig = summarise_profile(out, events)
    return "\n".join(
        [
            f"### Profile: {name} under cProfile ({args.profile_seconds:.0f} s at {rate:.0f} "
            "leads/s offered)",
            "",
            f"{events} events consumed; {fig['db_calls']:.0f} database calls through SQLAlchemy/"
            f"asyncpg in the whole process (API + consumer + relay + timers) = "
            f"**{fig['db_per_event']:.1f} per consumed event**.",
            "",
            table,
        ]
    )


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short steps (about 3 minutes)")
    parser.add_argument("--rates", default="100,200,300,400")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=15.0)
    parser.add_argument("--bulk", type=int, default=20_000)
    parser.add_argument("--pg-rows", type=int, default=8_000)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--profile-service", default="sla-monitor")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.quick:
        args.step_seconds, args.latency_seconds, args.warmup = 10.0, 10.0, 3.0
        args.bulk, args.pg_rows, args.profile_seconds = 5000, 3000, 10.0
    args.rates = [float(r) for r in str(args.rates).split(",") if r]
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse(argv)
    report = asyncio.run(run(args))
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
