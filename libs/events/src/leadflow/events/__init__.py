"""Leadflow's shared kernel: envelope, catalogue, lifecycle, event store, outbox, consumers,
timers, the service kit and its HTTP app.

The names below are the kernel's public API, what a service is written with; the rest is
reached through well-named modules (``leadflow.events.catalogue.*``, ``lifecycle``,
``process``, ``db``, ``shredding``, ...). The names load on first use (PEP 562): importing
``leadflow.events.envelope`` does not pull in FastAPI, Kafka clients and the service kit.
The layers these modules form are in libs/events/README.md (enforced by import-linter).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.events.access import AdminDep, Permission, Principal, Role, public, requires
    from leadflow.events.batch import (
        Appended,
        BatchHandler,
        Decision,
        flush_batches,
        on_batch,
        run_decision,
    )
    from leadflow.events.clock import Clock
    from leadflow.events.deps import KitDep, kit_of
    from leadflow.events.envelope import Envelope, EventPayload, new_id, stream_id
    from leadflow.events.errors import ConcurrencyError, Problem, UnknownLead
    from leadflow.events.guards import Int32, Int64
    from leadflow.events.kit import ServiceKit
    from leadflow.events.lifecycle import TransitionRefused
    from leadflow.events.projection import Projection, ProjectionRunner
    from leadflow.events.service import create_service_app
    from leadflow.events.settings import ServiceSettings
    from leadflow.events.timers import Timer
    from leadflow.events.uow import Handler, HandlerMap, TimerHandler, UnitOfWork, skip_historical

# name -> the module that defines it (kept equal to the imports above by a unit test).
_HOMES = {
    "AdminDep": "access",
    "Permission": "access",
    "Principal": "access",
    "Role": "access",
    "public": "access",
    "requires": "access",
    "Appended": "batch",
    "BatchHandler": "batch",
    "Decision": "batch",
    "flush_batches": "batch",
    "on_batch": "batch",
    "run_decision": "batch",
    "Clock": "clock",
    "KitDep": "deps",
    "kit_of": "deps",
    "Envelope": "envelope",
    "EventPayload": "envelope",
    "new_id": "envelope",
    "stream_id": "envelope",
    "ConcurrencyError": "errors",
    "Problem": "errors",
    "UnknownLead": "errors",
    "Int32": "guards",
    "Int64": "guards",
    "ServiceKit": "kit",
    "TransitionRefused": "lifecycle",
    "Projection": "projection",
    "ProjectionRunner": "projection",
    "create_service_app": "service",
    "ServiceSettings": "settings",
    "Timer": "timers",
    "Handler": "uow",
    "HandlerMap": "uow",
    "TimerHandler": "uow",
    "UnitOfWork": "uow",
    "skip_historical": "uow",
}

__all__ = [
    "AdminDep",
    "Appended",
    "BatchHandler",
    "Clock",
    "ConcurrencyError",
    "Decision",
    "Envelope",
    "EventPayload",
    "Handler",
    "HandlerMap",
    "Int32",
    "Int64",
    "KitDep",
    "Permission",
    "Principal",
    "Problem",
    "Projection",
    "ProjectionRunner",
    "Role",
    "ServiceKit",
    "ServiceSettings",
    "Timer",
    "TimerHandler",
    "TransitionRefused",
    "UnitOfWork",
    "UnknownLead",
    "create_service_app",
    "flush_batches",
    "kit_of",
    "new_id",
    "on_batch",
    "public",
    "requires",
    "run_decision",
    "skip_historical",
    "stream_id",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
