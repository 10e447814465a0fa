"""Feeding the platform (open-loop inquiries at a fixed rate, its routing configured to assign
them) and watching what comes out (``lead.assigned`` records, consumer lag)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.testing.platform.launch import Platform

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
