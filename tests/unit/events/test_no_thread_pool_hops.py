"""No route of any service runs work in FastAPI's thread pool.

FastAPI calls a plain ``def`` endpoint or dependency through a worker thread, a hop that cost
0.13 ms of CPU per request (more than a whole bare FastAPI request) when the kernel's kit
dependency was one. Everything the routes call is cheap and non-blocking, so it is all
``async def``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

SERVICES = ["intake", "scoring", "routing", "sla_monitor", "analytics", "notify"]


def _runs_on_the_loop(call: Any) -> bool:
    """A coroutine (or async generator) function, or an object whose ``__call__`` is one."""
    for candidate in (call, getattr(call, "__call__", None)):  # noqa: B004 - instances too
        if inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate):
            return True
    return False


def _api_routes(routes: Any) -> Iterator[APIRoute]:
    """Every APIRoute, included routers' too (FastAPI keeps those in their own router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None) or route
        if nested is not route or hasattr(route, "routes"):
            yield from _api_routes(getattr(nested, "routes", []))


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


@pytest.mark.parametrize("service", SERVICES)
def test_every_endpoint_and_dependency_is_a_coroutine(service: str) -> None:
    app = importlib.import_module(f"leadflow.{service}.app").create_app()
    routes = list(_api_routes(app.routes))
    assert len(routes) > 10
    sync = sorted(
        f"{route.path}: {getattr(call, '__qualname__', call)!r}"
        for route in routes
        for call in _calls(route.dependant)
        if not _runs_on_the_loop(call)
    )
    assert sync == []
