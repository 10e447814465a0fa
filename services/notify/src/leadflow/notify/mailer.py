"""Sending e-mail: SMTP through aiosmtplib, to ``LEADFLOW_SMTP_URL``.

``smtp://host:port`` speaks plain SMTP and upgrades with STARTTLS when the relay offers it;
``smtps://`` connects with TLS from the start; ``user:password@`` logs in. Mailpit (what
``make run`` starts) and any relay of a mail provider both take this.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from leadflow.notify.domain import Mail


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    @staticmethod
    def parse(url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"LEADFLOW_SMTP_URL must be smtp://host:port or smtps://...: {url!r}")
        implicit = parts.scheme == "smtps"
        return SmtpTarget(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def build_message(mail: Mail, sender: str, message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip(">") or "leadflow.local"
    msg["Message-ID"] = make_msgid(idstring=message_id or uuid.uuid4().hex, domain=domain)
    for name, value in mail.headers.items():
        msg[name] = value
    msg.set_content(mail.text)
    if mail.html:
        msg.add_alternative(mail.html, subtype="html")
    return msg


class Mailer:
    """A few SMTP sessions kept open to the relay and reused: a message then costs MAIL,
    RCPT and DATA instead of a connection, a greeting and EHLO (and STARTTLS) each time. A
    session the relay dropped is opened again once before the send counts as failed."""

    def __init__(
        self, smtp_url: str, sender: str, *, timeout: float = 15.0, sessions: int = 4
    ) -> None:
        self.target = SmtpTarget.parse(smtp_url)
        self.sender = sender
        self.timeout = timeout
        # Built once: loading the CA bundle takes a third of a second of CPU, and aiosmtplib
        # would do it on every connection, stalling the event loop each time.
        self.tls_context = ssl.create_default_context()
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(sessions):
            self._idle.put_nowait(None)  # opened on first use

    async def _open(self) -> aiosmtplib.SMTP:
        t = self.target
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            username=t.username,
            password=t.password,
            use_tls=t.implicit_tls,
            start_tls=None if not t.implicit_tls else False,
            tls_context=self.tls_context,
            timeout=self.timeout,
        )
        await client.connect()
        return client

    async def send(self, mail: Mail, message_id: str | None = None) -> None:
        """Returns once the relay accepted the message; raises on refusal or no relay."""
        message = build_message(mail, self.sender, message_id)
        client = await self._idle.get()
        try:
            for attempt in (1, 2):
                if client is None or not client.is_connected:
                    client = await self._open()
                try:
                    await client.send_message(message)
                    return
                except aiosmtplib.SMTPServerDisconnected:
                    client = None
                    if attempt == 2:
                        raise
        except BaseException:
            if client is not None:
                client.close()
            client = None
            raise
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()
