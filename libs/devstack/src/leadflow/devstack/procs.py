"""Small process helpers: free ports, waiting for TCP, stopping process groups."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_free(port: int) -> bool:
    """Whether a server could bind ``port`` on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ephemeral_low() -> int:
    """Where the kernel starts handing out the local ports of client connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_block(size: int, low: int = 21000, high: int | None = None) -> int:
    """The first port of ``size`` consecutive free ports (randomised to avoid neighbours).

    Below the kernel's ephemeral range: tests and benchmarks stop Kafka and Postgres and
    start them again on the same ports while clients keep opening connections; a port inside
    that range can become a connection's local end, and the restarted server then cannot
    bind it (a broker did exit at once, twice, in a CI run)."""
    if high is None:
        high = ephemeral_low()
        if high - low < 1000:  # an unusual range configuration: take what is there
            high = 60000
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(low, high - size + 1)
        if all(port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports in {low}-{high}")


def free_port() -> int:
    """A free port for a server (below the ephemeral range, see ``free_block``)."""
    return free_block(1)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def stop_process(
    proc: subprocess.Popen[bytes] | None, timeout: float = 20.0, sig: int = signal.SIGTERM
) -> None:
    """Signal the process group, wait, then SIGKILL whatever is left."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    stop_process(proc, timeout=10, sig=signal.SIGKILL)
