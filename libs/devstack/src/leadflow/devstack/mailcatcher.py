"""A Python SMTP catcher (aiosmtpd): what ``make run`` falls back to when Mailpit cannot be
built, and what the tests receive notify's mail with. Every message is kept in memory; the
``serve`` entry point also shows them on a small web page (``/``) and as JSON
(``/api/messages``).

    python -m leadflow.devstack.mailcatcher --smtp-port 1025 --ui-port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
import json
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Caught:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    received_at: float  # time.time() when the relay accepted it

    @property
    def subject(self) -> str:
        return " ".join(str(self.message.get("Subject", "")).split())

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""

    def summary(self) -> dict[str, Any]:
        return {
            "from": self.mail_from,
            "to": self.rcpt_tos,
            "subject": self.subject,
            "received_at": self.received_at,
            "headers": dict(self.message.items()),
            "text": self.text,
        }


@dataclass
class MailCatcher:
    """aiosmtpd handler: accepts everything, keeps it, wakes whoever waits."""

    messages: list[Caught] = field(default_factory=list)
    refuse: int = 0  # refuse this many messages first (tests of retries)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(
            Caught(str(envelope.mail_from), list(envelope.rcpt_tos), message, time.time())
        )
        self._arrived.set()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Caught]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]


async def start_smtp(
    catcher: MailCatcher, host: str = "127.0.0.1", port: int = 0
) -> asyncio.Server:
    """An SMTP server on this event loop; ``server.sockets[0].getsockname()[1]`` is its port."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(catcher, hostname="leadflow-mailcatcher", decode_data=False), host, port
    )


async def _ui(
    catcher: MailCatcher, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        request = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        path = request.split()[1].decode() if len(request.split()) > 1 else "/"
        if path.startswith("/api/messages"):
            body = json.dumps([m.summary() for m in catcher.messages], default=str).encode()
            kind = "application/json"
        else:
            rows = "".join(
                f"<tr><td>{html.escape(', '.join(m.rcpt_tos))}</td><td>{html.escape(m.subject)}"
                f"</td><td><pre>{html.escape(m.text)}</pre></td></tr>"
                for m in reversed(catcher.messages)
            )
            body = (
                "<!doctype html><title>Leadflow mail</title><h1>Mail caught "
                f"({len(catcher.messages)})</h1><table border=1><tr><th>To</th><th>Subject</th>"
                f"<th>Text</th></tr>{rows}</table>"
            ).encode()
            kind = "text/html; charset=utf-8"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: "
            + kind.encode()
            + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    finally:
        writer.close()


async def serve(host: str, smtp_port: int, ui_port: int) -> None:
    catcher = MailCatcher()
    smtp = await start_smtp(catcher, host, smtp_port)
    ui = await asyncio.start_server(lambda r, w: _ui(catcher, r, w), host, ui_port)
    print(f"mail catcher: SMTP {host}:{smtp_port}, UI http://{host}:{ui_port}/", flush=True)
    async with smtp, ui:
        await asyncio.gather(smtp.serve_forever(), ui.serve_forever())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leadflow.devstack.mailcatcher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--ui-port", type=int, default=8025)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.smtp_port, args.ui_port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
