"""Intake's FastAPI app: the kit (event store with crypto-shredding codec, outbox relay,
health, metrics, problem+json, body limits) plus intake's routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from leadflow.events import ServiceKit, create_service_app
from leadflow.events.clock import Clock
from leadflow.intake.api import Runtime, bootstrap, router
from leadflow.intake.crypto import LeadKeyCodec
from leadflow.intake.settings import IntakeSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def create_kit(
    settings: IntakeSettings | None = None, *, clock: Clock | None = None
) -> ServiceKit[Runtime]:
    settings = settings or IntakeSettings()
    kit: ServiceKit[Runtime] = ServiceKit(
        settings,
        clock=clock,
        migrations_dir=MIGRATIONS,
        payload_codec=LeadKeyCodec(),
        body_limits={"/v1/imports": settings.intake_max_import_bytes},
        # Imports parse their files themselves: a NUL byte rejects its row, not the file,
        # and an .xlsx workbook is binary.
        file_uploads=("/v1/imports",),
        on_startup=[bootstrap],
    )
    kit.state = Runtime.build(settings, kit)
    return kit


def create_app(settings: IntakeSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    kit = create_kit(settings, clock=clock)
    return create_service_app(
        kit,
        router,
        title="Leadflow intake",
        description="Capture at the edge: inquiries, web forms, badge scans, imports, "
        "activity; data hygiene, consent and erasure.",
    )
