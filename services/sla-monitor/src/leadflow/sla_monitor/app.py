"""sla-monitor's app: the service kit wired with SLA handlers, timers, API and migrations."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.events import ServiceKit, create_service_app
from leadflow.events.clock import Clock
from leadflow.events.process import built_in_process
from leadflow.sla_monitor import store
from leadflow.sla_monitor.api import router
from leadflow.sla_monitor.domain import default_policies
from leadflow.sla_monitor.handlers import build_handlers
from leadflow.sla_monitor.settings import SlaSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(settings: SlaSettings | None = None, *, clock: Clock | None = None) -> ServiceKit:
    settings = settings or SlaSettings()
    default_calendar = settings.default_calendar()  # fail fast on a bad zone or hours
    default_policies()  # and on a broken built-in policy file
    built_in_process()  # or process definition file

    async def seed_default_calendar(kit: ServiceKit) -> None:
        """A fresh system holds sales to an SLA at once: seed the configured default hours."""
        async with kit.unit_of_work() as uow:
            await store.seed_calendar(uow.tx, default_calendar)

    handlers, timer_handlers = build_handlers(store.ConfigCache())
    return ServiceKit(
        settings,
        consumes=("routing", "scoring"),
        handlers=handlers,
        timer_handlers=timer_handlers,
        clock=clock,
        migrations_dir=MIGRATIONS,
        on_startup=[seed_default_calendar],
    )


def create_app(settings: SlaSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        router,
        title="Leadflow sla-monitor",
        description="Service levels between marketing and sales: versioned policies, business "
        "calendars, durable timers, warnings, breaches and escalations.",
    )
