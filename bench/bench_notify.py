"""Speed to lead: from ``lead.assigned`` to the rep's e-mail accepted by an SMTP server.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``)::

    uv run python bench/bench_notify.py --rate 50 --seconds 20

A notify app runs in this process (its consumer, timers and relay, as in production) on a
scratch schema and topic prefix; the Python mail catcher (aiosmtpd) runs as a process of
its own and notes when it accepts each message. ``lead.assigned`` records (each with a rep e-mail)
are produced to ``leadflow.routing`` at ``--rate`` per second; a lead's latency is from the
moment its record was handed to the producer to the SMTP server's ``250`` for its mail
(found by the lead's link in the body). Reports p50, p90, p99 and max; the issue's target
is p99 <= 1 s at 50 leads/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from leadflow.devstack.procs import free_port, stop_process, wait_port
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.db import plain_url
from leadflow.events.envelope import Envelope, topic_for
from leadflow.events.topics import ensure_topics
from leadflow.notify.app import create_app
from leadflow.notify.settings import NotifySettings
from leadflow.testing import app_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.baselines import bench_infra, bench_settings, drop_schema
from leadflow.testing.topics import delete_quietly, scratch_prefix

LINK = re.compile(r"/leads/([0-9a-f-]{36})")


class SmtpProcess:
    """The SMTP server in a process of its own (``leadflow.devstack.mailcatcher``), as a
    relay is: its work never competes with notify's for this process's interpreter."""

    def __init__(self) -> None:
        self.smtp_port, self.ui_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: httpx.AsyncClient | None = None

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadflow.devstack.mailcatcher",
                "--smtp-port",
                str(self.smtp_port),
                "--ui-port",
                str(self.ui_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_port(self.smtp_port, 30, self.proc):
            raise SystemExit("the SMTP catcher did not start")
        return f"smtp://127.0.0.1:{self.smtp_port}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=5)

    async def accepted(self) -> dict[str, float]:
        """lead id -> when its mail was accepted (time.time() in the catcher)."""
        if self.client is None:  # one client: each new one loads the CA bundle (~0.3 s CPU)
            self.client = httpx.AsyncClient(timeout=30)
        url = f"http://127.0.0.1:{self.ui_port}/api/messages"
        messages = (await self.client.get(url)).json()
        out: dict[str, float] = {}
        for m in messages:
            found = LINK.search(m["text"])
            if found:
                out.setdefault(found.group(1), m["received_at"])
        return out


def assigned(i: int) -> Envelope:
    rep = f"rep-{i % 40}"
    return Envelope.new(
        LeadAssigned(
            assignee_kind="rep",
            rep_id=rep,
            team_id=f"team-{i % 8}",
            method="round_robin",
            reason="bench",
            rep_name=f"Rep {i % 40}",
            rep_email=f"{rep}@bench.example",
            lead=LeadSnapshot(grade="A", country="DE"),
        ),
        lead_id=uuid.uuid4(),
    )


async def stages(database_url: str, schema: str) -> str:
    """Where the time went, from notify's own records: event recorded -> message stored by
    the consumer -> relay accepted it (p50 / p99, ms)."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        row = await conn.fetchrow(
            f"""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY c) AS c50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY c) AS c99,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS s50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS s99
            FROM (SELECT extract(epoch FROM created_at - caused_recorded_at) * 1000 AS c,
                         extract(epoch FROM sent_at - created_at) * 1000 AS s
                  FROM "{schema}".notify_messages WHERE status = 'sent') t
            """
        )
    finally:
        await conn.close()
    return (
        f"consumed and stored p50 {row['c50']:.0f} / p99 {row['c99']:.0f} ms after the event; "
        f"sent p50 {row['s50']:.0f} / p99 {row['s99']:.0f} ms after that"
    )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main(rate: float, seconds: float, warmup: float) -> int:
    bootstrap, database_url = bench_infra()
    token = uuid.uuid4().hex[:8]
    prefix, schema = scratch_prefix(token), f"bench_notify_{token}"
    smtp = SmtpProcess()
    smtp_url = smtp.start()
    settings = bench_settings(
        NotifySettings,
        bootstrap,
        database_url,
        prefix,
        schema,
        smtp_url=smtp_url,
        console_url="http://console.bench",
        log_level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        timer_poll_seconds=0.5,
    )
    topic = topic_for("routing", prefix)
    await ensure_topics(bootstrap, [topic], 3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    sent: dict[str, float] = {}
    try:
        async with app_client(create_app(settings)):
            # Warm-up: the consumer has joined its group and a first mail went through.
            started = time.monotonic()
            probe = assigned(-1)
            await producer.send_and_wait(
                topic, probe.to_json(), key=probe.record_key(), headers=probe.record_headers()
            )
            while str(probe.lead_id) not in await smtp.accepted():
                if time.monotonic() - started > 120:
                    raise SystemExit("notify never sent the warm-up mail")
                await asyncio.sleep(0.05)
            await asyncio.sleep(warmup)
            n = int(rate * seconds)
            t0 = time.monotonic()
            for i in range(n):
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                env = assigned(i)
                sent[str(env.lead_id)] = time.time()
                await producer.send(
                    topic, env.to_json(), key=env.record_key(), headers=env.record_headers()
                )
            produce_took = time.monotonic() - t0
            deadline = time.monotonic() + 60
            while len(set(sent) & set(await smtp.accepted())) < n:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            split = await stages(database_url, schema)
    finally:
        await producer.stop()
        await drop_schema(database_url, schema)
        await delete_quietly(bootstrap, [prefix])
    got = await smtp.accepted()
    smtp.stop()
    latencies = [got[k] - v for k, v in sent.items() if k in got]
    missing = len(sent) - len(latencies)
    print(f"notify: {len(sent)} lead.assigned at {rate:g}/s over {produce_took:.1f}s")
    print(f"stages: {split}")
    if not latencies:
        print("no mail arrived")
        return 1
    ms = [x * 1000 for x in latencies]
    print(
        f"lead.assigned -> rep e-mail accepted by SMTP: p50 {pct(ms, 50):.0f} ms, "
        f"p90 {pct(ms, 90):.0f} ms, p99 {pct(ms, 99):.0f} ms, max {max(ms):.0f} ms, "
        f"mean {statistics.fmean(ms):.0f} ms; {missing} missing"
    )
    target = pct(ms, 99) <= 1000 and missing == 0
    print(f"target p99 <= 1000 ms at 50 leads/s: {'met' if target else 'NOT met'}")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.rate, args.seconds, args.warmup)))
