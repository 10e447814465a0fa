"""Real receivers for notify's tests: an SMTP server (aiosmtpd) and an HTTP webhook
receiver that answers with a scripted status per request (fail first, succeed later)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from leadflow.devstack.mailcatcher import MailCatcher, start_smtp


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[tuple[MailCatcher, str]]:
    """A catcher and the ``smtp://`` URL notify sends to."""
    catcher = MailCatcher()
    server = await start_smtp(catcher)
    port = server.sockets[0].getsockname()[1]
    try:
        yield catcher, f"smtp://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class WebhookReceiver:
    """Answers the n-th request with ``statuses[n]`` (the last one for every later one)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readline()
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            index = min(len(self.requests), len(self.statuses) - 1)
            status = self.statuses[index]
            self.requests.append(Received(request.split()[1].decode(), headers, body, status))
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def webhook_receiver(statuses: list[int]) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses=statuses)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, family=socket.AF_INET)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
