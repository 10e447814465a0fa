"""The scoring service: consumes intake and routing, produces ``leadflow.scoring``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.events import ServiceKit, create_service_app
from leadflow.events.clock import Clock, SystemClock
from leadflow.scoring.account_api import router as account_router
from leadflow.scoring.api import model_router, router
from leadflow.scoring.builtin import check_builtin
from leadflow.scoring.handlers import create_handlers
from leadflow.scoring.predictive_api import router as predictive_router
from leadflow.scoring.settings import ScoringSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(
    settings: ScoringSettings | None = None, *, clock: Clock | None = None
) -> ServiceKit:
    check_builtin()  # a broken built-in model or track file stops the service here, loudly
    clock = clock or SystemClock()
    handlers, timer_handlers = create_handlers(clock)
    return ServiceKit(
        settings or ScoringSettings(),
        consumes=("intake", "routing"),
        feedback=("routing",),  # sales' progress: pauses nurture, records outcomes
        handlers=handlers,
        timer_handlers=timer_handlers,
        clock=clock,
        migrations_dir=MIGRATIONS,
    )


def create_app(settings: ScoringSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        model_router,
        router,
        predictive_router,
        account_router,
        title="Leadflow scoring",
        description="Fit and engagement scores, grades, decay, MQL decisions and nurture.",
    )
