"""The OpenAPI document tells the truth about errors, for every route of every service.

FastAPI documents one error, a 422 as ``application/json`` in its own shape, which Leadflow
never sends. Every error Leadflow sends is an RFC 9457 ``application/problem+json`` body
(``errors.Problem``), and which statuses a route can answer follows from what the kernel
knows about it: its declared permission (``access``), its parameters and body, and the
guards every request passes (``guards``). ``document_errors(app)`` rewrites the generated
document once, so no route has to list them by hand:

| status | documented on |
|---|---|
| 400 | POST, PUT and PATCH (a body that cannot be read) |
| 401, 403 | routes whose permission needs a credential (a token or an API key) |
| 404 | routes with a path parameter (the thing named is not there) |
| 409 | routes that change state (a conflict: concurrent writer, refused transition, in use) |
| 413, 415 | POST, PUT and PATCH (over the limit; a media type the route does not read) |
| 422 | routes with any parameter or body (a field named in ``errors``) |
| 429 | routes open to the public or to API keys, and sign-in (rate limits, throttling) |
| 401 | sign-in (`/v1/auth/token`: wrong user or password) |
| 431 | every route (request line and headers over ``LEADFLOW_MAX_HEADER_BYTES``) |
| 503 | every route (a dependency briefly away; ``Retry-After``) |

A route may document more in its own ``responses``; what it documents is kept, and an error
status it lists gets the problem schema.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from leadflow.events.access import PERMISSIONS, permission_of
from leadflow.events.guards import api_routes

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; ``errors`` names each bad field.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}
_CHANGES_STATE = {"post", "put", "patch", "delete"}
_BODY_METHODS = {"post", "put", "patch"}


def _api_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for route in api_routes(app.routes):
        for method in route.methods or ():
            found[(route.path_format, method.lower())] = route
    return found


_CREDENTIAL_HEADERS = {"x-api-key", "authorization", "x-admin-token"}


def _credentialed(route: APIRoute | None, operation: dict[str, Any]) -> tuple[bool, bool]:
    """(needs a credential, open to the public or to API keys: rate-limited)."""
    headers = {
        p.get("name", "").lower()
        for p in operation.get("parameters", [])
        if p.get("in") == "header"
    }
    api_key = "x-api-key" in headers
    if route is not None:
        try:
            permission = permission_of(route)
        except ValueError:
            permission = None
        if permission is not None:
            rule = PERMISSIONS[permission]
            return not rule.public, rule.public or rule.api_key_scope is not None or api_key
    needs = bool(operation.get("security")) or bool(headers & _CREDENTIAL_HEADERS)
    if route is not None:
        names = {getattr(d.call, "__name__", "") for d in _all_dependencies(route)}
        needs = needs or any("admin" in n or "token" in n for n in names)
    return needs, api_key or not needs


def _all_dependencies(route: APIRoute) -> list[Any]:
    out, stack = [], list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        out.append(dep)
        stack.extend(dep.dependencies)
    return out


def error_statuses(
    route: APIRoute | None, path: str, method: str, operation: dict[str, Any]
) -> set[int]:
    """The error statuses this operation can answer (see the module's table)."""
    statuses = {431, 503}
    # A POST, PUT or PATCH can carry a body whatever the route reads (forms and CSV are read
    # from the request itself): the guards answer for it.
    has_body = "requestBody" in operation or method in _BODY_METHODS
    params = operation.get("parameters", [])
    if has_body:
        statuses |= {400, 413, 415, 422}
    if params:
        statuses.add(422)
    if "{" in path:
        statuses.add(404)
    if method in _CHANGES_STATE:
        statuses.add(409)
    needs, open_door = _credentialed(route, operation)
    if needs:
        statuses |= {401, 403}
    if (open_door and method in _CHANGES_STATE) or path.endswith("/auth/token"):
        statuses.add(429)
    if path.endswith("/auth/token"):
        statuses.add(401)  # sign-in with a wrong password
    for code in operation.get("responses", {}):
        if code.isdigit() and int(code) >= 400:
            statuses.add(int(code))
    return statuses


def problem_response(status: int) -> dict[str, Any]:
    try:
        description = HTTPStatus(status).phrase
    except ValueError:
        description = "Error"
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def with_documented_errors(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's document) with every operation's error answers as problems."""
    routes = _api_routes(app)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete", "options", "head"}:
                continue
            route = routes.get((path, method))
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(route, path, method, operation)):
                existing = responses.get(str(status), {})
                entry = problem_response(status)
                if existing.get("description") and status != 422:
                    entry["description"] = existing["description"]
                responses[str(status)] = entry
    return schema


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with every error answer documented."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_documented_errors(app, original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
