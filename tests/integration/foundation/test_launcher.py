"""The launcher (``python -m leadflow.devstack serve-infra``) stops everything it started on
SIGTERM: no listening ports, no child processes left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from leadflow.devstack.procs import free_block, free_port, port_open
from leadflow.testing import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _listening(ports: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports
    }


async def test_launcher_stops_everything_it_started(tmp_path: Path) -> None:
    from leadflow.devstack.kafka import KafkaUnavailable, ensure_jars

    try:
        ensure_jars(log=False)
    except KafkaUnavailable as exc:
        pytest.skip(f"no local Kafka for the launcher: {exc}")
    kafka_port, pg_port = free_block(2), free_port()  # the controller on kafka_port + 1
    ports = {kafka_port, kafka_port + 1, pg_port}
    home = tmp_path / "home"
    env = {
        **os.environ,
        "LEADFLOW_KAFKA_PORT": str(kafka_port),
        "LEADFLOW_PG_PORT": str(pg_port),
    }
    log = await asyncio.to_thread(open, tmp_path / "devstack.log", "wb")
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "leadflow.devstack", "--home", str(home), "serve-infra"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children: list[psutil.Process] = []
    try:
        await wait_until(
            lambda: (home / "ready").exists() or proc.poll() is not None,
            timeout=240,
            interval=0.2,
            message="launcher ready",
        )
        assert proc.poll() is None, (tmp_path / "devstack.log").read_text()[-3000:]
        assert _listening(ports) == ports  # Kafka (broker + controller) and Postgres are up
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # at least the JVM and the postmaster
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 120)
    finally:
        if proc.poll() is None:  # the test failed early: do not leak the stack
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
        log.close()
    assert code == 0
    assert not (home / "ready").exists()
    assert _listening(ports) == set()
    assert not any(port_open(p) for p in ports)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [(c.pid, c.name()) for c in left]
