"""Routing's app: the service kit wired with routing's handlers, API and migrations."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.events import ServiceKit, create_service_app
from leadflow.events.access import add_token_resolver
from leadflow.events.clock import Clock, SystemClock
from leadflow.events.shredding import LeadKeyCodec
from leadflow.routing.api import ROUTERS, rep_token_principal
from leadflow.routing.crm import crm_router
from leadflow.routing.handlers import build_handlers
from leadflow.routing.settings import RoutingSettings
from leadflow.routing.store import ConfigCache
from leadflow.routing.team_queue import team_router

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(
    settings: RoutingSettings | None = None, *, clock: Clock | None = None
) -> ServiceKit[ConfigCache]:
    settings = settings or RoutingSettings()
    clock = clock or SystemClock()  # the batch handler decides at the kit's time
    cache = ConfigCache(enabled=settings.routing_config_cache)
    kit: ServiceKit[ConfigCache] = ServiceKit(
        settings,
        # intake: the contact card a rep calls (captured, profile updated, erased)
        consumes=("intake", "scoring", "sla"),
        feedback=("sla",),  # breaches and escalations: reassignments, minutes after the fact
        handlers=build_handlers(cache, clock),
        clock=clock,
        migrations_dir=MIGRATIONS,
        payload_codec=LeadKeyCodec(),  # reps' notes sealed per lead, shredded on erasure
        state=cache,  # the routes read the configuration through the same cache
    )
    add_token_resolver(kit, rep_token_principal)
    return kit


def create_app(settings: RoutingSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        *ROUTERS,
        team_router,
        crm_router,
        title="Leadflow routing",
        description="Distribution and hand-off: rules, round-robin with capacity, account "
        "owners, and sales' accept / reject / contacted / opportunity / won / lost / recycle.",
    )
