"""The kernel's input guards: hostile input gets a 4xx problem naming what was wrong, never
a 500, and no answer drops the client's keep-alive connection.

Driven through a small app built with the kernel's own ``install_problem_handlers`` and
``install_guards`` (what every service's ``create_app`` installs), in process with httpx,
and under a real uvicorn for the connection behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Form, Query, Request
from pydantic import BaseModel

from leadflow.events.guards import Int32, Int64, assert_bounded_ints
from leadflow.events.service import install_guards, install_problem_handlers
from leadflow.testing import wait_until

LIMIT = 2048


class Contact(BaseModel):
    email: str
    notes: list[str] = []


class Inquiry(BaseModel):
    contact: Contact
    properties: dict[str, Any] = {}


def guarded_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_guards(app, max_body_bytes=LIMIT, max_header_bytes=4096)

    @app.post("/inquiries")
    async def inquiry(body: Inquiry) -> dict[str, str]:
        return {"email": body.contact.email}

    @app.post("/forms")
    async def form(email: Annotated[str, Form()]) -> dict[str, str]:
        return {"email": email}

    @app.post("/raw-forms")
    async def raw_form(request: Request) -> dict[str, Any]:
        return {k: str(v) for k, v in (await request.form()).items()}

    @app.get("/leads/{lead_key}")
    async def lead(lead_key: str, q: str = "") -> dict[str, str]:
        return {"lead": lead_key, "q": q}

    @app.get("/versions/{version}")
    async def version(version: Int32, after: Annotated[Int64 | None, Query()] = None) -> Any:
        return {"version": version, "after": after}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/bad-data")
    async def bad_data() -> None:
        raise asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence 0x00")

    assert_bounded_ints(app)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=guarded_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


async def test_nul_in_a_nested_json_string_is_a_422_naming_the_field(client) -> None:
    r = await client.post(
        "/inquiries", json={"contact": {"email": "a@b.c", "notes": ["ok", "x\x00"]}}
    )
    assert r.status_code == 422
    assert fields(r) == ["contact.notes[1]"]


async def test_nul_in_a_json_key_and_an_unpaired_surrogate_are_refused(client) -> None:
    body = b'{"contact": {"email": "\\ud800"}, "properties": {"k\\u0000": 1}}'
    r = await client.post("/inquiries", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert fields(r) == ["contact.email", "properties.k\x00"]


async def test_escaped_backslash_before_u0000_is_plain_text(client) -> None:
    body = b'{"contact": {"email": "a\\\\u0000@b.c"}}'
    r = await client.post("/inquiries", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json() == {"email": "a\\u0000@b.c"}


async def test_nul_in_a_query_parameter_and_a_path_parameter(client) -> None:
    r = await client.get("/leads/abc", params={"q": "x\x00y"})
    assert r.status_code == 422
    assert fields(r) == ["q"]
    r = await client.get("/leads/a%00b")
    assert r.status_code == 422
    assert fields(r) == ["lead_key"]


async def test_nul_in_form_fields_urlencoded_and_multipart(client) -> None:
    r = await client.post("/forms", data={"email": "a\x00@b.c"})
    assert r.status_code == 422
    assert fields(r) == ["email"]
    r = await client.post("/raw-forms", files={"comment": (None, b"hi\x00there")})
    assert r.status_code == 422
    assert fields(r) == ["comment"]


async def test_a_declared_file_upload_path_takes_nul_bytes_through_to_the_route() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    install_guards(app, max_body_bytes=LIMIT, file_uploads=("/imports",))

    @app.post("/imports")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/other")
    async def other(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        csv = b"Email\na@b.c\nb\x00@b.c\n"
        r = await http.post("/imports", content=csv, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200 and r.json() == {"bytes": len(csv)}
        r = await http.post("/other", content=csv, headers={"Content-Type": "text/csv"})
        assert r.status_code == 422
        big = b"x" * (LIMIT + 1)
        r = await http.post("/imports", content=big, headers={"Content-Type": "text/csv"})
        assert r.status_code == 413  # the size limit still holds


async def test_nul_in_a_header_is_named(client) -> None:
    r = await client.get("/leads/a", headers={"x-device": "scan\x00ner"})
    assert r.status_code == 422
    assert fields(r) == ["x-device"]


async def test_headers_over_the_limit_are_a_431(client) -> None:
    r = await client.get("/leads/a", headers={"x-padding": "p" * 5000})
    assert r.status_code == 431
    assert r.headers["content-type"] == "application/problem+json"


def chunks(total: int, size: int = 512) -> Iterator[bytes]:
    yield b'{"contact": {"email": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}}'


async def test_chunked_body_over_the_limit_is_a_413_not_a_400(client) -> None:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks(LIMIT * 2):
            yield chunk

    r = await client.post(
        "/inquiries", content=stream(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"

    async def form_stream() -> AsyncIterator[bytes]:
        yield b"email="
        for _ in range(8):
            yield b"a" * 512

    r = await client.post(
        "/forms",
        content=form_stream(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


async def test_integers_beyond_the_column_range_are_a_422(client) -> None:
    assert (await client.get("/versions/2147483647")).status_code == 200
    r = await client.get("/versions/2147483648")
    assert r.status_code == 422
    assert fields(r) == ["version"]
    r = await client.get("/versions/1", params={"after": str(2**63)})
    assert r.status_code == 422
    assert fields(r) == ["after"]


def test_an_app_with_an_unbounded_integer_parameter_is_refused() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> None:
        return None

    with pytest.raises(TypeError, match="thing_id"):
        assert_bounded_ints(app)


async def test_a_value_the_database_refuses_is_a_422_not_a_500(client) -> None:
    r = await client.get("/bad-data")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """The app under a real uvicorn (its default HTTP protocol) on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started, timeout=10, interval=0.01)
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_errors_keep_the_connection_alive() -> None:
    """One TCP connection: a bug (500), a hostile body (422), an oversized body (413) and
    header (431) are each answered, and the same connection then serves a good request."""
    async with served(guarded_app()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            statuses = []
            for request in (
                b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n",
                b"POST /inquiries HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b'Content-Length: 35\r\n\r\n{"contact": {"email": "a\\u0000b"}}\n',
                b"POST /inquiries HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks(LIMIT * 2))
                + b"0\r\n\r\n",
                b"GET /leads/a HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"p" * 5000 + b"\r\n\r\n",
                b"GET /leads/a HTTP/1.1\r\nHost: t\r\n\r\n",
            ):
                writer.write(request)
                await writer.drain()
                statuses.append(await read_response(reader))
            assert statuses == [500, 422, 413, 431, 200]
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    assert headers.get("connection", "").lower() != "close", lines[0]
    await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status
