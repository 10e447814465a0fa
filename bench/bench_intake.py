"""Intake benchmark: POST /v1/inquiries against a bare FastAPI route, same server settings.

    set -a; . /work/helpers/infra.env; set +a       # DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS
    uv run python bench/bench_intake.py [--seconds 10] [--concurrency 32] [--replicas N]
        [--idempotency-keys] [--only intake|bare]

In one run it starts two servers with identical settings on free ports: the real intake app
(scratch schema, scratch topic prefix, outbox relay running in the replica that holds its
lock) and a bare FastAPI app whose POST /v1/inquiries validates the same body and answers
202. Each server is ``--replicas`` uvicorn processes (one worker each, uvloop, httptools, no
access log; by default one per core, as a deployment on this machine would run them). A
small keep-alive HTTP/1.1 load generator then drives each for the same time and concurrency,
its connections spread evenly over the replicas as a load balancer would, with a new person
per request (the expensive path: a new lead, its key, its event and outbox row). It prints inquiries/s, p50/p99 latency and the
ratios. Target: >= 1,500 inquiries/s with p99 < 50 ms on a 2-core machine. The scratch
schema is dropped at the end. Not a test.

Throughput and latency depend on whatever else the machine runs; the server CPU per
request (user + system time of the server's processes over the measured window, from /proc)
does much less, so compare runs by it (``--replicas 1`` isolates it best: with one replica
per core they also compete with Postgres, Kafka and the load generator). It also prints
inquiries per group-commit transaction (distinct ``recorded_at`` values in the event log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from leadflow.devstack.procs import free_port
from leadflow.intake.schemas import InquiryIn
from leadflow.testing.topics import delete_quietly, scratch_prefix

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "lf_bench_key_" + uuid.uuid4().hex


def bare_app() -> Any:
    """A FastAPI app with only the route: the floor intake is measured against."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/inquiries", status_code=202)
    async def inquiries(body: InquiryIn) -> JSONResponse:
        return JSONResponse(
            {
                "lead_id": str(uuid.uuid4()),
                "inquiry_id": str(uuid.uuid4()),
                "matched": False,
                "match_reason": None,
            },
            status_code=202,
        )

    return app


def start_server(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


async def wait_ready(port: int, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            line = await reader.readline()
            writer.close()
            if b" 200 " in line or b" 404 " in line:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"server on {port} did not come up")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the server's processes used so far (all threads), from /proc: the
    per-request cost that depends least on how busy the rest of the machine is."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Result:
    name: str
    count: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu: float = float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu / max(1, self.count) * 1000

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


IDEMPOTENCY_KEYS = False  # --idempotency-keys: every request carries one, as real clients do


def request_bytes(n: int, run: str) -> bytes:
    body = orjson.dumps(
        {
            "contact": {
                "email": f"bench{n}.{run}@company{n % 997}.example",
                "first_name": "bench",
                "last_name": f"person{n}",
                "country": "India",
                "company": f"Company {n % 997}",
            },
            "source": {"campaign": "bench", "utm_source": "load"},
            "answers": {"timeframe": "this quarter"},
            "consent": {"marketing_opt_in": n % 2 == 0, "text_version": "v1"},
        }
    )
    idempotency = f"Idempotency-Key: bench-{run}-{n}\r\n" if IDEMPOTENCY_KEYS else ""
    head = (
        f"POST /v1/inquiries HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"X-Api-Key: {API_KEY}\r\n{idempotency}Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def worker(
    port: int, stop_at: float, counter: list[int], result: Result, run: str, record: bool
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            counter[0] += 1
            payload = request_bytes(counter[0], run)
            started = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            answer = await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            if not record:
                continue
            if b" 202 " in status:
                result.count += 1
                result.latencies.append(elapsed)
            else:
                if not result.errors:
                    print(f"{result.name}: first error {status!r} {answer[:300]!r}")
                result.errors += 1
    finally:
        writer.close()


async def drive(
    name: str, ports: list[int], pids: list[int], seconds: float, concurrency: int, warmup: float
) -> Result:
    """Connection ``i`` goes to replica ``i % replicas``: an even spread, as a balancer's."""
    counter = [0]
    run = uuid.uuid4().hex[:8]

    async def connections(stop_at: float, into: Result, record: bool) -> None:
        await asyncio.gather(
            *(
                worker(ports[i % len(ports)], stop_at, counter, into, run, record)
                for i in range(concurrency)
            )
        )

    await connections(time.monotonic() + warmup, Result(name, 0, 0, warmup, []), False)
    result = Result(name, 0, 0, seconds, [])
    cpu_before = cpu_seconds(pids)
    started = time.monotonic()
    await connections(started + seconds, result, True)
    result.seconds = time.monotonic() - started
    result.cpu = cpu_seconds(pids) - cpu_before
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--replicas",
        type=int,
        default=os.cpu_count() or 1,
        help="processes per server, connections spread evenly (default: one per core)",
    )
    parser.add_argument(
        "--only", choices=("bare", "intake"), help="drive one server only (profiling runs)"
    )
    parser.add_argument(
        "--idempotency-keys", action="store_true", help="send an Idempotency-Key per request"
    )
    args = parser.parse_args()
    global IDEMPOTENCY_KEYS
    IDEMPOTENCY_KEYS = args.idempotency_keys
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise SystemExit("set DATABASE_URL (and KAFKA_BOOTSTRAP_SERVERS), e.g. from infra.env")
    token = uuid.uuid4().hex[:8]
    schema = f"bench_intake_{token}"
    env = {
        **os.environ,
        "LEADFLOW_DB_SCHEMA": schema,
        "LEADFLOW_TOPIC_PREFIX": scratch_prefix(token),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "LEADFLOW_DB_POOL_SIZE": str(args.concurrency),
        "LEADFLOW_INTAKE_BOOTSTRAP_API_KEY": API_KEY,
        "LEADFLOW_INTAKE_KEY_RATE_PER_SECOND": "1000000",
        "LEADFLOW_INTAKE_KEY_BURST": "1000000",
        "PYTHONPATH": str(ROOT),
    }
    bare_ports = [free_port() for _ in range(args.replicas)]
    intake_ports = [free_port() for _ in range(args.replicas)]
    bare = [start_server("bench.bench_intake:bare_app", p, env) for p in bare_ports]
    intake = [start_server("leadflow.intake.app:create_app", p, env) for p in intake_ports]
    try:
        for port in bare_ports:
            await wait_ready(port, "/docs")
        for port in intake_ports:
            await wait_ready(port, "/healthz")
        results = []
        servers = (("bare FastAPI route", bare_ports, bare), ("intake", intake_ports, intake))
        for name, ports, procs in servers:
            if args.only and not name.startswith(args.only):
                continue
            pids = [proc.pid for proc in procs]
            results.append(
                await drive(name, ports, pids, args.seconds, args.concurrency, args.warmup)
            )
    finally:
        for proc in bare + intake:
            proc.terminate()
        for proc in bare + intake:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        from leadflow.events.db import plain_url

        conn = await asyncpg.connect(plain_url(database_url))
        try:
            if args.only != "bare":
                # recorded_at is one clock reading per append, i.e. per group-commit
                # transaction: events per distinct value = inquiries per transaction.
                events, transactions = await conn.fetchrow(
                    f'SELECT count(*), count(DISTINCT recorded_at) FROM "{schema}".event_log'
                )
                print(
                    f"intake: {events} events in {transactions} append transactions "
                    f"({events / max(1, transactions):.1f} per transaction)"
                )
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
        bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")  # the services' default
        await delete_quietly(bootstrap, [env["LEADFLOW_TOPIC_PREFIX"]])

    print(
        f"\nPOST /v1/inquiries, {args.concurrency} connections, {args.seconds:.0f}s each, "
        f"{args.replicas} replica{'s' if args.replicas > 1 else ''} per server (one uvicorn "
        f"worker each, uvloop, httptools), new lead per request"
        f"{', Idempotency-Key on each' if args.idempotency_keys else ''}\n"
    )
    print(
        f"{'server':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'server CPU ms/req':>19}"
    )
    for r in results:
        print(
            f"{r.name:<22}{r.rate:>10.0f}{r.pct(0.50):>10.2f}{r.pct(0.99):>10.2f}{r.errors:>8}"
            f"{r.cpu_ms_per_request:>19.2f}"
        )
    if len(results) < 2:
        return
    bare_r, intake_r = results
    print(
        f"\nintake / bare: throughput {intake_r.rate / bare_r.rate:.2f}x, "
        f"p50 {intake_r.pct(0.5) / bare_r.pct(0.5):.1f}x, "
        f"p99 {intake_r.pct(0.99) / bare_r.pct(0.99):.1f}x, "
        f"server CPU per request {intake_r.cpu_ms_per_request / bare_r.cpu_ms_per_request:.1f}x"
    )
    ok = intake_r.rate >= 1500 and intake_r.pct(0.99) < 50
    print(
        f"target >= 1500/s and p99 < 50 ms: {'met' if ok else 'NOT met'} "
        f"(mean latency {statistics.fmean(intake_r.latencies) * 1000:.2f} ms)"
    )


if __name__ == "__main__":
    import uvloop

    # The load generator shares the machine's cores with the servers: the cheaper its
    # event loop, the less it takes from what is measured.
    uvloop.run(main())
