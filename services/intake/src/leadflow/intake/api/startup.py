"""Startup: the bootstrap credentials a local run or a benchmark asks for."""

from __future__ import annotations

from leadflow.events import ServiceKit
from leadflow.events.envelope import new_id
from leadflow.intake import store
from leadflow.intake.api.runtime import runtime
from leadflow.intake.schemas import (
    FormIn,
)
from leadflow.intake.security import (
    display_prefix,
    hash_api_key,
)

# ---------------------------------------------------------------------------------------
# Startup: bootstrap credentials for local runs


async def bootstrap(kit: ServiceKit) -> None:
    settings = runtime(kit).settings
    async with kit.unit_of_work() as uow:
        if settings.intake_bootstrap_api_key:
            key = settings.intake_bootstrap_api_key
            await store.insert_api_key(
                uow.tx,
                new_id(),
                "bootstrap",
                hash_api_key(key),
                display_prefix(key),
                ["activities", "inquiries", "scans"],
                None,
            )
        if settings.intake_bootstrap_form_key:
            origins = [
                o.strip() for o in settings.intake_bootstrap_form_origins.split(",") if o.strip()
            ]
            form = FormIn(
                name="Demo form",
                form_key=settings.intake_bootstrap_form_key,
                allowed_origins=origins,
                consent_text_version="v1",
            )
            await store.put_form(
                uow.tx,
                settings.intake_bootstrap_form_key,
                form.model_dump(),
                only_if_missing=True,
            )
