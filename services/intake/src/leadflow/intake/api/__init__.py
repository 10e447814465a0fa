"""Intake's HTTP edge: inquiries, web forms, badge scans, activities, imports, leads, admin.

One module per resource, each with its own router; ``router`` includes them in the order
the routes were declared when they were one module (FastAPI matches in that order). Every
refusal is problem+json naming the field (``Problem``); every accepted input is in intake's
database (event + outbox) before the answer goes out.
"""

from __future__ import annotations

from fastapi import APIRouter

from leadflow.intake.api import (
    activities,
    admin,
    forms,
    imports,
    inquiries,
    leads,
    scans,
)
from leadflow.intake.api.runtime import Runtime, runtime
from leadflow.intake.api.startup import bootstrap

router = APIRouter()
for _module in (inquiries, forms, scans, activities, imports, leads, admin):
    router.include_router(_module.router)

__all__ = ["Runtime", "bootstrap", "router", "runtime"]
