"""Hostile input, refused once for every service, before a route sees it.

A probe of the running platform answered 500 to crafted input on 19 routes: Postgres
refuses a NUL character in text and ``jsonb`` (and Python refuses to encode an unpaired
surrogate), an integer beyond a column's range fails inside asyncpg, FastAPI turned a
chunked body over the limit into a 400, and an 8 MB header was read and accepted. Each
service would otherwise guard each field; here the kernel does it once:

- ``InputGuardMiddleware`` (ASGI): request line and headers over ``max_header_bytes`` →
  431; a NUL in a header, the path or a query parameter → 422 naming it; a JSON or
  url-encoded body is read whole (it is parsed whole anyway, within the body limit) and a
  NUL or unpaired surrogate in any of its strings or keys → 422 naming the field
  (``contact.email``, ``items[3].notes``); other bodies (multipart, CSV) stream through,
  each chunk checked for NUL, except on the paths a service declares as file uploads
  (``file_uploads``: an import reads a NUL as one bad row, and a workbook is binary);
  any body over its limit, declared or chunked → 413.
- ``Int32`` / ``Int64``: path and query integers with the range of the column they meet;
  ``assert_bounded_ints(app)`` refuses, when the app is built, a route whose integer
  parameter has no such bound, so a new route cannot forget it.
- ``ErrorBoundaryMiddleware``: the last resort for an unexpected exception answers 500
  problem+json and does not re-raise it; Starlette's own catch-all re-raises after
  answering, and uvicorn then closes the client's keep-alive connection.

Every refusal is ``application/problem+json``; none closes the connection.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any

import annotated_types
import orjson
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import Field
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.events.errors import Problem
from leadflow.events.faults import is_bad_data

log = logging.getLogger("leadflow.service")
PROBLEM_JSON = "application/problem+json"

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
"""An integer a Postgres ``integer`` column holds (versions, counts)."""
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer a Postgres ``bigint`` column holds (``bigserial`` ids, offsets)."""

# Cheap pre-check before parsing a JSON body: a NUL or a (possibly unpaired) surrogate can
# only be written as an escape; most bodies have neither and pass untouched.
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_BUFFERED_TYPES = (b"application/json", b"application/x-www-form-urlencoded")
_MULTIPART_NAME = re.compile(rb'name="([^"]*)"')


class InputRefused(HTTPException):
    """A request a guard refused; raised from ``receive`` while a route reads the body, it
    reaches the kit's HTTP handler (FastAPI re-raises an ``HTTPException`` from a body read
    instead of turning it into its own 400)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.detail)
        self.problem = problem


def bad_text(value: str) -> str | None:
    """Why Postgres (or the UTF-8 encoder before it) cannot store this text, or ``None``."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate"
    return None


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def bad_json_fields(value: Any, path: str = "") -> Iterator[dict[str, str]]:
    """Each string (value or key) of a decoded JSON document that cannot be stored."""
    if isinstance(value, str):
        why = bad_text(value)
        if why:
            yield {"field": path or "body", "message": why, "type": "unstorable_text"}
    elif isinstance(value, dict):
        for key, item in value.items():
            where = _join(path, key)
            why = bad_text(key)
            if why:
                yield {"field": where, "message": f"name {why}", "type": "unstorable_text"}
            yield from bad_json_fields(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from bad_json_fields(item, _join(path, index))


def _nul_pairs(encoded: str, where: str) -> list[dict[str, str]]:
    errors = []
    for name, value in urllib.parse.parse_qsl(encoded, keep_blank_values=True):
        why = (bad_text(name) and f"name {bad_text(name)}") or bad_text(value)
        if why:
            errors.append({"field": name, "message": why, "type": "unstorable_text", "in": where})
    return errors


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, included routers' too (FastAPI keeps those in their own router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None) or route
        if nested is not route or hasattr(route, "routes"):
            yield from api_routes(getattr(nested, "routes", []))


def _path_fields(scope: Scope) -> list[dict[str, str]]:
    """Which path parameter holds the NUL (the route is matched here only on this rare path)."""
    app = scope.get("app")
    for route in api_routes(getattr(app, "routes", ())):
        match, child = route.matches(scope)
        if match == Match.FULL:
            names = [k for k, v in child.get("path_params", {}).items() if bad_text(str(v))]
            if names:
                return [
                    {"field": n, "message": "contains a NUL character", "type": "unstorable_text"}
                    for n in names
                ]
    return [{"field": "path", "message": "contains a NUL character", "type": "unstorable_text"}]


def _problem_response(problem: Problem, path: str | None) -> JSONResponse:
    return JSONResponse(
        problem.body(path),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def too_large(limit: int) -> Problem:
    return Problem(413, "Payload too large", f"request body exceeds {limit} bytes")


class InputGuardMiddleware:
    """See the module docstring; one instance per app, innermost of the kit's middlewares
    but for the error boundary."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        limits: Mapping[str, int] | None = None,
        max_header_bytes: int = 16_384,
        file_uploads: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.default = default
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))
        self.max_header_bytes = max_header_bytes
        self.file_uploads = tuple(file_uploads)

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    def _refusal(self, scope: Scope, header_bytes: int, nul_in_headers: bool) -> Problem | None:
        """What is wrong with the request line and headers, if anything (``header_bytes``
        and ``nul_in_headers`` come from the caller's one pass over the headers)."""
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        if len(raw_path) + len(query) + header_bytes > self.max_header_bytes:
            return Problem(
                431,
                "Request header fields too large",
                f"the request line and headers exceed {self.max_header_bytes} bytes",
            )
        errors = []
        if nul_in_headers:
            errors = [
                {
                    "field": name.decode("latin-1"),
                    "message": "contains a NUL character",
                    "type": "unstorable_text",
                    "in": "header",
                }
                for name, value in headers
                if b"\x00" in value or b"\x00" in name
            ]
        if "\x00" in scope.get("path", ""):
            errors += _path_fields(scope)
        if b"%00" in query or b"\x00" in query:
            errors += _nul_pairs(query.decode("latin-1"), "query")
        return Problem.invalid_fields(errors) if errors else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self._limit_for(path)
        # One pass over the headers for everything the guard needs from them: this runs on
        # every request (an inquiry's whole handling is well under a millisecond).
        content_type = b""
        too_long = False
        header_bytes = 0
        nul = False
        for name, value in scope.get("headers", []):
            header_bytes += len(name) + len(value) + 4
            if b"\x00" in value or b"\x00" in name:
                nul = True
            if name == b"content-length":
                too_long = too_long or (value.isdigit() and int(value) > limit)
            elif name == b"content-type":
                content_type = value.split(b";")[0].strip().lower()
        refused = self._refusal(scope, header_bytes, nul)
        if refused is None and too_long:
            refused = too_large(limit)
        if refused is not None:
            await _problem_response(refused, path)(scope, receive, send)
            return
        if content_type in _BUFFERED_TYPES or content_type.endswith(b"+json"):
            # Read and checked whole before the route runs: nothing can be refused once the
            # app has started answering, so it gets the plain ``send``.
            try:
                inner = await self._read_whole(receive, limit, content_type)
            except InputRefused as exc:
                await _problem_response(exc.problem, path)(scope, receive, send)
                return
            await self.app(scope, inner, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        raw = path.startswith(self.file_uploads) if self.file_uploads else False
        inner = self._streaming(receive, limit, content_type, check_nul=not raw)
        try:
            await self.app(scope, inner, tracking_send)
        except InputRefused as exc:
            if started:
                raise
            await _problem_response(exc.problem, path)(scope, receive, send)

    async def _read_whole(self, receive: Receive, limit: int, content_type: bytes) -> Receive:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise InputRefused(too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        errors: list[dict[str, str]] = []
        if content_type == b"application/x-www-form-urlencoded":
            if b"%00" in body or b"\x00" in body:
                errors = _nul_pairs(body.decode("latin-1"), "body")
        elif _SUSPECT_JSON.search(body):
            errors = _json_errors(body)
        if errors:
            raise InputRefused(Problem.invalid_fields(errors))
        return _replay([{"type": "http.request", "body": body, "more_body": False}], receive)

    def _streaming(
        self, receive: Receive, limit: int, content_type: bytes, *, check_nul: bool = True
    ) -> Receive:
        received = 0
        multipart = content_type == b"multipart/form-data"
        part = "body"  # the multipart field being streamed (its header may be a chunk back)

        async def guarded() -> Message:
            nonlocal received, part
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise InputRefused(too_large(limit))
                if not check_nul:
                    return message  # a file the route parses itself (its bad rows, its bytes)
                at = chunk.find(b"\x00")
                if multipart:
                    names = _MULTIPART_NAME.findall(chunk, 0, len(chunk) if at < 0 else at)
                    if names:
                        part = names[-1].decode("utf-8", "replace")
                if at >= 0:
                    error = {"field": part, "message": "contains a NUL character"}
                    raise InputRefused(
                        Problem.invalid_fields([{**error, "type": "unstorable_text"}])
                    )
            return message

        return guarded


def _json_errors(body: bytes) -> list[dict[str, str]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses unpaired surrogates that the stdlib decoder (FastAPI's) accepts.
        import json

        try:
            document = json.loads(body)
        except ValueError:
            return []  # not JSON: the route answers that itself
    return list(bad_json_fields(document))


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class ErrorBoundaryMiddleware:
    """An unexpected exception: logged, answered 500 problem+json if nothing was sent yet,
    and not re-raised, so the server keeps the client's connection open."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if is_bad_data(exc):
                log.warning("input refused by the database on %s: %r", scope.get("path"), exc)
                problem = Problem(
                    422, "Invalid value", "a value is out of range or not storable text"
                )
            else:
                log.exception("unhandled error on %s", scope.get("path"))
                problem = Problem(500, "Internal error", "the error was logged")
            if not started:
                await _problem_response(problem, scope.get("path"))(scope, receive, send)


def _bounded(metadata: list[Any]) -> bool:
    low: Any = None
    high: Any = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = item.ge if isinstance(item, annotated_types.Ge) else item.gt
        elif isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = item.le if isinstance(item, annotated_types.Le) else item.lt
        elif isinstance(item, annotated_types.Interval):
            low = item.ge if item.ge is not None else item.gt
            high = item.le if item.le is not None else item.lt
    return (
        low is not None
        and high is not None
        and INT64_MIN <= int(low) <= INT64_MAX
        and INT64_MIN <= int(high) <= INT64_MAX
    )


def unbounded_ints(app: FastAPI) -> list[str]:
    """Path and query parameters typed ``int`` without a range a column can hold."""
    found = []
    for route in api_routes(app.routes):
        dependant = route.dependant
        stack = [dependant]
        while stack:
            dep = stack.pop()
            stack.extend(dep.dependencies)
            for param in [*dep.path_params, *dep.query_params]:
                annotation = param.field_info.annotation
                is_int = annotation is int or annotation == int | None
                if is_int and not _bounded(list(param.field_info.metadata)):
                    methods = ",".join(sorted(route.methods or ()))
                    found.append(f"{methods} {route.path}: {param.name}")
    return found


def assert_bounded_ints(app: FastAPI) -> None:
    """Refuse to build an app whose path or query integers could overflow their column."""
    found = unbounded_ints(app)
    if found:
        raise TypeError(
            "integer parameters need a range (leadflow.events.guards.Int32 / Int64, or "
            "Query/Path(ge=..., le=...)): " + "; ".join(found)
        )
