"""The analytics service: consumes every leadflow topic into its log, projects, reports."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.analytics.account_api import router as account_router
from leadflow.analytics.admin_api import AnalyticsState, admin_router
from leadflow.analytics.api import router
from leadflow.analytics.fold_group import log_head, read_log
from leadflow.analytics.handlers import CONSUMES, all_handlers
from leadflow.analytics.projections import all_projections
from leadflow.analytics.search import search_router
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events import ServiceKit, create_service_app
from leadflow.events.clock import Clock

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(
    settings: AnalyticsSettings | None = None, *, clock: Clock | None = None
) -> ServiceKit[AnalyticsState]:
    settings = settings or AnalyticsSettings()
    return ServiceKit(
        settings,
        state=AnalyticsState(),
        consumes=CONSUMES,
        handlers=all_handlers(),
        projections=all_projections(),
        projection_source=read_log,
        projection_head=log_head,
        clock=clock,
        migrations_dir=MIGRATIONS,
        produces=False,
    )


def create_app(settings: AnalyticsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        search_router,  # before router: /v1/leads/search is not a lead id
        router,
        admin_router,
        account_router,
        title="Leadflow analytics",
        description="The global lead event log, funnel projections, lead plan and dashboard.",
    )
