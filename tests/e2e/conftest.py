"""All services (the console and notify too) as real processes (``leadflow.devstack.Devstack``) on the test infra.

Each stack gets free ports, its own schemas (``<isolation.schema>_<service>``, dropped with
the isolation) and its own topic prefix, so it shares Kafka and Postgres with other tests
without seeing their data.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.workload import Endpoints
from leadflow.devstack.__main__ import Devstack, ServiceSpec
from leadflow.devstack.mailcatcher import MailCatcher, start_smtp
from leadflow.devstack.procs import free_block
from leadflow.testing import wait_until
from tests.conftest import Isolation

# Faster relays and timers than production defaults: the tests wait on whole pipelines.
FAST_ENV = {
    "LEADFLOW_OUTBOX_POLL_SECONDS": "0.1",
    "LEADFLOW_TIMER_POLL_SECONDS": "0.2",
    "LEADFLOW_LOG_LEVEL": "WARNING",
    "LEADFLOW_INTAKE_IP_RATE_PER_SECOND": "1000",
    "LEADFLOW_INTAKE_IP_BURST": "1000",
}


@dataclass
class Stack:
    devstack: Devstack
    specs: list[ServiceSpec]
    endpoints: Endpoints
    home: Path
    mail: MailCatcher  # what notify sent, through a real SMTP server of the test
    smtp: asyncio.Server

    def log_tail(self, chars: int = 3000) -> str:
        out = []
        for spec in self.specs:
            path = self.home / "logs" / f"{spec.name}.log"
            if path.exists():
                out.append(f"--- {spec.name} ---\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


async def start_stack(isolation: Isolation, extra_env: dict[str, str] | None = None) -> Stack:
    home = Path(tempfile.mkdtemp(prefix="leadflow-e2e-"))
    base = free_block(7)  # the console on base, the services on base+1 .. base+6 (notify)
    mail = MailCatcher()
    smtp = await start_smtp(mail)
    smtp_port = smtp.sockets[0].getsockname()[1]
    stack = Devstack(
        home,
        kafka_port=0,
        pg_port=0,
        quiet=True,
        port_base=base,
        kafka_bootstrap=isolation.kafka_bootstrap,
        database_url=isolation.database_url,
        schema_prefix=f"{isolation.schema}_",
        topic_prefix=isolation.topic_prefix,
        extra_env={
            **FAST_ENV,
            "LEADFLOW_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            **(extra_env or {}),
        },
    )
    stack.start_infra()  # a no-op with external infrastructure
    specs = await asyncio.to_thread(stack.start_services)
    running = Stack(
        stack, specs, Endpoints.from_credentials(stack.credentials(), base), home, mail, smtp
    )
    names = {s.name for s in specs}
    missing = {
        "console",
        "intake",
        "scoring",
        "routing",
        "sla-monitor",
        "analytics",
        "notify",
    } - names
    if missing:
        await asyncio.to_thread(stack.stop_all)
        pytest.fail(f"services without an app module: {sorted(missing)}")
    async with httpx.AsyncClient() as client:
        for spec in specs:

            async def ready(port: int = spec.port) -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            try:
                await wait_until(ready, timeout=90, message=f"{spec.name} ready")
            except Exception:
                tail = running.log_tail()
                await asyncio.to_thread(stack.stop_all)
                raise AssertionError(f"{spec.name} never became ready\n{tail}") from None
    return running


@pytest.fixture
async def e2e_stack(isolation: Isolation) -> AsyncIterator[Callable[..., Any]]:
    """``await e2e_stack(extra_env=None)`` starts a stack; it is stopped after the test."""
    started: list[Stack] = []

    async def start(extra_env: dict[str, str] | None = None) -> Stack:
        s = await start_stack(isolation, extra_env)
        started.append(s)
        return s

    yield start
    for s in started:
        await asyncio.to_thread(s.devstack.stop_all)
        s.smtp.close()
