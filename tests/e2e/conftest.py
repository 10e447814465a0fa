"""All services (the console and notify too) as real processes (``leadflow.testing.platform``) on the test infra.

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

import pytest

from leadflow.devstack.__main__ import Devstack, ServiceSpec
from leadflow.devstack.mailcatcher import MailCatcher, start_smtp
from leadflow.testing.platform import Endpoints, Platform, launch_platform
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
    """A platform of the test's own (``leadflow.testing.platform``) and the SMTP server its
    notify sends to."""

    platform: Platform
    mail: MailCatcher  # what notify sent, through a real SMTP server of the test
    smtp: asyncio.Server

    @property
    def devstack(self) -> Devstack:
        return self.platform.stack

    @property
    def specs(self) -> list[ServiceSpec]:
        return self.platform.specs

    @property
    def endpoints(self) -> Endpoints:
        return self.platform.endpoints

    @property
    def home(self) -> Path:
        return self.platform.stack.home

    def log_tail(self, chars: int = 3000) -> str:
        return self.platform.log_tail(chars)


async def start_stack(isolation: Isolation, extra_env: dict[str, str] | None = None) -> Stack:
    home = Path(tempfile.mkdtemp(prefix="leadflow-e2e-"))
    mail = MailCatcher()
    smtp = await start_smtp(mail)
    smtp_port = smtp.sockets[0].getsockname()[1]
    try:
        platform = await asyncio.to_thread(
            lambda: launch_platform(
                home,
                kafka_bootstrap=isolation.kafka_bootstrap,
                database_url=isolation.database_url,
                schema_prefix=f"{isolation.schema}_",
                topic_prefix=isolation.topic_prefix,
                extra_env={
                    **FAST_ENV,
                    "LEADFLOW_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                    **(extra_env or {}),
                },
                ready_timeout=90,
            )
        )
    except RuntimeError as exc:
        smtp.close()
        raise AssertionError(f"the stack never became ready: {exc}") from None
    names = {s.name for s in platform.specs}
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
        await asyncio.to_thread(platform.close)
        smtp.close()
        pytest.fail(f"services without an app module: {sorted(missing)}")
    return Stack(platform, mail, smtp)


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
        await asyncio.to_thread(s.platform.close)
        s.smtp.close()
