"""notify's app: the service kit wired with what it consumes, its timers and its API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.events import ServiceKit, create_service_app, skip_historical
from leadflow.events.clock import Clock
from leadflow.notify.api import router
from leadflow.notify.delivery import Delivery
from leadflow.notify.handlers import CONSUMES, EndpointCache, NotifyHandlers, PeopleCache
from leadflow.notify.mailer import Mailer
from leadflow.notify.settings import NotifySettings
from leadflow.notify.state import NotifyState

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(
    settings: NotifySettings | None = None, *, clock: Clock | None = None
) -> tuple[ServiceKit[NotifyState], Delivery]:
    settings = settings or NotifySettings()
    mailer = Mailer(settings.smtp_url, settings.mail_from)  # fails fast on a bad SMTP URL
    endpoints = EndpointCache()
    people = PeopleCache()
    delivery = Delivery(settings, mailer)

    async def close_delivery(kit: ServiceKit[NotifyState]) -> None:
        """Its SMTP connections and HTTP client go with the service."""
        await kit.state.delivery.close()

    kit = ServiceKit(
        settings,
        consumes=CONSUMES,
        # Imported history (``historical`` events) is never announced to anyone.
        handlers=skip_historical(NotifyHandlers(settings, endpoints, people).handlers()),
        timer_handlers=delivery.timer_handlers(),
        clock=clock,
        migrations_dir=MIGRATIONS,
        on_shutdown=[close_delivery],
        state=NotifyState(endpoints, people, delivery),
    )
    return kit, delivery


def create_app(settings: NotifySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit, _delivery = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        router,
        title="Leadflow notify",
        description="Outbound delivery: e-mail to reps and managers the moment a lead is "
        "theirs, SLA warnings and breaches, nurture e-mail with one-click unsubscribe, and "
        "Standard Webhooks to outside systems.",
    )
