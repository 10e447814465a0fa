"""A service's HTTP app: ``create_service_app(kit, *routers, title=...)`` builds the FastAPI
app around a ``ServiceKit`` (``kit``): its lifespan starts and stops the kit, and it serves
``/healthz``, ``/readyz``, ``/metrics``, the dead-letter admin routes (``dlq_api``), JSON
logs, problem+json errors and the input guards of ``guards`` (body and header limits,
unstorable text, integer ranges). Nothing is created at import time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.events import metrics
from leadflow.events.access import public
from leadflow.events.apidoc import document_errors
from leadflow.events.dlq_api import admin_router
from leadflow.events.docs import install_offline_docs
from leadflow.events.errors import ConcurrencyError, Problem, UnknownLead
from leadflow.events.faults import TRANSIENT_ERROR_TYPES, is_bad_data, is_transient
from leadflow.events.guards import (
    ErrorBoundaryMiddleware,
    InputGuardMiddleware,
    InputRefused,
    assert_bounded_ints,
)
from leadflow.events.kit import ServiceKit
from leadflow.events.lifecycle import TransitionRefused
from leadflow.events.logs import configure_logging

log = logging.getLogger("leadflow.service")
PROBLEM_JSON = "application/problem+json"


def create_service_app(
    kit: ServiceKit, *routers: APIRouter, title: str, description: str = ""
) -> FastAPI:
    """The service's FastAPI app around ``kit``: its lifespan starts and stops the kit;
    ``/healthz``, ``/readyz``, ``/metrics``, the dead-letter admin routes, problem+json
    answers and the input guards come with it."""
    configure_logging(kit.service, kit.settings.log_level, kit.settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await kit.start()
        log.info("%s started", kit.service)
        try:
            yield
        finally:
            await kit.stop()
            log.info("%s stopped", kit.service)

    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        version="0.1.0",
        docs_url=None,  # served offline below: FastAPI's own pages load from a CDN
        redoc_url=None,
    )
    app.state.kit = kit
    install_offline_docs(app, title)
    install_problem_handlers(app)
    install_guards(
        app,
        max_body_bytes=kit.settings.max_body_bytes,
        body_limits=kit.body_limits,
        max_header_bytes=kit.settings.max_header_bytes,
        file_uploads=kit.file_uploads,
    )

    app.add_middleware(RequestMetricsMiddleware, service=kit.service)

    @app.get("/healthz", tags=["operations"], summary="Liveness", dependencies=[public()])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": kit.service}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: Postgres, migrations, Kafka",
        dependencies=[public()],
    )
    async def readyz() -> JSONResponse:
        checks = await kit.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", dependencies=[public()])
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(admin_router())
    for router in routers:
        app.include_router(router)
    assert_bounded_ints(app)
    document_errors(app)
    return app


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(str(request.url.path) if request else None),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or ".".join(str(p) for p in loc)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field(e.get("loc", ())),
                "message": e.get("msg", "invalid"),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        return problem_response(Problem.invalid_fields(errors), request)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, InputRefused):
            return problem_response(exc.problem, request)
        return problem_response(
            Problem(
                exc.status_code,
                _reason(exc.status_code),
                str(exc.detail or ""),
                headers=dict(exc.headers or {}),
            ),
            request,
        )

    @app.exception_handler(ConcurrencyError)
    async def on_conflict(request: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(Problem(409, "Conflict", str(exc)), request)

    @app.exception_handler(TransitionRefused)
    async def on_refused(request: Request, exc: TransitionRefused) -> JSONResponse:
        current = getattr(exc, "current", None)
        return problem_response(
            Problem(
                409,
                "Transition refused",
                str(exc),
                extra={"current_stage": str(current) if current is not None else None},
            ),
            request,
        )

    @app.exception_handler(UnknownLead)
    async def on_unknown(request: Request, exc: UnknownLead) -> JSONResponse:
        return problem_response(Problem(404, "Unknown lead", str(exc)), request)

    async def on_dependency_error(request: Request, exc: Exception) -> JSONResponse:
        if is_bad_data(exc):
            # A value the database cannot take (text it cannot store, a number out of a
            # column's range) that no guard named: the caller's input, never a 500.
            log.warning("input refused by the database on %s: %r", request.url.path, exc)
            return problem_response(
                Problem(422, "Invalid value", "a value is out of range or not storable text"),
                request,
            )
        if not is_transient(exc):
            return await on_error(request, exc)
        # The database (or a connection to it) is briefly away: nothing was committed, so
        # the caller may safely retry (with its Idempotency-Key where it has one).
        log.warning("transient error on %s: %r", request.url.path, exc)
        return problem_response(
            Problem(
                503,
                "Service unavailable",
                "a dependency is briefly unavailable; retry shortly",
                headers={"Retry-After": "1"},
            ),
            request,
        )

    # Registered per class (not via the catch-all) so the answer is final, not re-raised.
    for dependency_error in TRANSIENT_ERROR_TYPES:
        app.add_exception_handler(dependency_error, on_dependency_error)

    # No ``@app.exception_handler(Exception)``: Starlette re-raises after such a handler
    # answers, and uvicorn then drops the keep-alive connection; the kit's
    # ``ErrorBoundaryMiddleware`` answers 500 and keeps it.
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(Problem(500, "Internal error", "the error was logged"), request)


def install_guards(
    app: FastAPI,
    *,
    max_body_bytes: int,
    body_limits: Mapping[str, int] | None = None,
    max_header_bytes: int = 16_384,
    file_uploads: Sequence[str] = (),
) -> None:
    """The kernel's input guards and error boundary (``leadflow.events.guards``); installed
    before the metrics middleware, which stays outermost and so sees their answers."""
    app.add_middleware(ErrorBoundaryMiddleware)
    app.add_middleware(
        InputGuardMiddleware,
        default=max_body_bytes,
        limits=body_limits,
        max_header_bytes=max_header_bytes,
        file_uploads=file_uploads,
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class RequestMetricsMiddleware:
    """Latency per route template and status, as plain ASGI.

    Not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs a task group per
    request and wraps every response, which cost ~0.8 ms of CPU per request, more than
    intake's own work on an inquiry. A request that raises is counted as a 500."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The router put the matched route into this same scope dict.
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUEST_LATENCY.labels(
                self.service, scope["method"], path, str(status)
            ).observe(time.perf_counter() - started)
