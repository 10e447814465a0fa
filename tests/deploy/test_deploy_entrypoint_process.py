"""The image's entrypoint, run for real: deploy/docker/serve.py starts a service under uvicorn
against the real Kafka and Postgres, the image's HEALTHCHECK script sees it healthy, /readyz
turns ready, and SIGTERM (what `docker stop` and the kubelet send) ends it cleanly within the
grace period the manifests allow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from leadflow.devstack.procs import free_port
from tests.deploy._support import DEPLOY, ROOT, SERVICES

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

GRACE_SECONDS = 10


def _healthcheck(env: dict[str, str]) -> int:
    script = DEPLOY / "docker" / "healthcheck.py"
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, timeout=30
    ).returncode


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
async def test_entrypoint_serves_then_stops_cleanly_on_sigterm(
    service: str, isolation: object, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "LEADFLOW_SERVICE": service,
        "LEADFLOW_HOST": "127.0.0.1",
        "LEADFLOW_PORT": str(port),
        "DATABASE_URL": isolation.database_url,  # type: ignore[attr-defined]
        "KAFKA_BOOTSTRAP_SERVERS": isolation.kafka_bootstrap,  # type: ignore[attr-defined]
        "LEADFLOW_DB_SCHEMA": isolation.schema,  # type: ignore[attr-defined]
        "LEADFLOW_TOPIC_PREFIX": isolation.topic_prefix,  # type: ignore[attr-defined]
        "LEADFLOW_ADMIN_TOKEN": "test-admin-token",
        "LEADFLOW_MIGRATE_ON_START": "true",
        "LEADFLOW_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "LEADFLOW_LOG_JSON": "false",
    }
    log = (tmp_path / "service.log").open("w+")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEPLOY / "docker" / "serve.py"),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        ready = False
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < deadline and process.returncode is None:
                try:
                    response = await client.get("/readyz")
                    if response.status_code == 200:
                        ready = True
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)  # poll interval, bounded by the deadline
            log.seek(0)
            assert ready, f"never ready (exit {process.returncode}):\n{log.read()[-4000:]}"
            assert await asyncio.to_thread(_healthcheck, env) == 0  # the image's HEALTHCHECK agrees
            assert (await client.get("/metrics")).status_code == 200

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=GRACE_SECONDS + 15)
        took = time.monotonic() - started
        log.seek(0)
        output = log.read()
        # Uvicorn re-raises the SIGTERM it handled once shutdown is complete, so a clean stop
        # ends "killed by SIGTERM" (143 in a container); the log proves the drain ran.
        assert code in (0, -signal.SIGTERM), f"exit {code} after SIGTERM:\n{output[-4000:]}"
        assert "Application shutdown complete" in output, output[-4000:]
        assert f"{service} stopped" in output, output[-4000:]
        assert took < GRACE_SECONDS + 5, f"took {took:.1f}s to stop"
        assert "Traceback" not in output, output[-4000:]
        assert (
            await asyncio.to_thread(_healthcheck, env) == 1
        )  # and the HEALTHCHECK notices it is gone
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), timeout=10)
        log.close()
