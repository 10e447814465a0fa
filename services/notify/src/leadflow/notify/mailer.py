"""Sending e-mail: SMTP through aiosmtplib, to ``LEADFLOW_SMTP_URL``.

``smtp://host:port`` speaks plain SMTP and upgrades with STARTTLS when the relay offers it;
``smtps://`` connects with TLS from the start; ``user:password@`` logs in. Mailpit (what
``make run`` starts) and any relay of a mail provider both take this.
"""

from __future__ import annotations

import asyncio
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
    """One relay; each send is its own SMTP session (relays drop idle sessions anyway)."""

    def __init__(self, smtp_url: str, sender: str, *, timeout: float = 15.0, concurrency: int = 16):
        self.target = SmtpTarget.parse(smtp_url)
        self.sender = sender
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, mail: Mail, message_id: str | None = None) -> None:
        """Returns once the relay accepted the message; raises on refusal or no relay."""
        t = self.target
        message = build_message(mail, self.sender, message_id)
        async with self._slots:
            await aiosmtplib.send(
                message,
                hostname=t.host,
                port=t.port,
                username=t.username,
                password=t.password,
                use_tls=t.implicit_tls,
                start_tls=None if not t.implicit_tls else False,
                timeout=self.timeout,
            )
