"""Measuring the platform: latency from POST to ``lead.assigned``, sustained throughput steps,
and where the CPU went per lead."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadflow.events.waiting import wait_event
from leadflow.testing.platform.launch import Platform
from leadflow.testing.platform.load import AssignmentWatcher, LoadDriver, group_lags


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
        await _wait(lambda: lag_is_zero(p), drain)
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


async def lag_is_zero(p: Platform) -> bool:
    """Every consumer group of the platform has caught up (False if the broker is away)."""
    try:
        return sum((await group_lags(p.bootstrap)).values()) == 0
    except Exception:
        return False


async def _wait(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    from leadflow.testing import wait_until

    return await wait_until(predicate, timeout=timeout, interval=interval)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def platform_cpu(p: Platform) -> dict[str, float]:
    """CPU seconds so far of each service process, the broker and Postgres (the postmaster
    and its backends: the pools keep their connections, so few exit in between)."""
    cpu = {name: process_cpu(proc.pid) for name, proc in p.stack.procs.items()}
    if p.stack.kafka.proc is not None:
        cpu["kafka"] = process_cpu(p.stack.kafka.proc.pid)
    pidfile = p.stack.postgres.data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int(pidfile.read_text().split()[0])
        total = process_cpu(postmaster)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += process_cpu(int(stat.parent.name))
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
