"""Links in a nurture e-mail back to notify: one-click unsubscribe (RFC 8058), an open
pixel and tracked clicks. Each carries a token naming the lead and the message, signed with
a key derived from ``LEADFLOW_ADMIN_TOKEN`` so nobody can unsubscribe someone else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from leadflow.notify.domain import Mail, render_template
from leadflow.notify.settings import NotifySettings


def _key(settings: NotifySettings) -> bytes:
    return hashlib.sha256(b"leadflow-notify-links:" + settings.admin_token.encode()).digest()


def make_token(settings: NotifySettings, lead_id: uuid.UUID, message_id: str) -> str:
    raw = f"{lead_id}.{message_id}".encode()
    mac = hmac.new(_key(settings), raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(raw + b"." + mac).decode().rstrip("=")


def read_token(settings: NotifySettings, token: str) -> tuple[uuid.UUID, str] | None:
    """The lead and message a token names, or None when it was not made by us."""
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        raw, mac = data[:-17], data[-16:]
        if data[-17:-16] != b"." or not hmac.compare_digest(
            hmac.new(_key(settings), raw, hashlib.sha256).digest()[:16], mac
        ):
            return None
        lead, message_id = raw.decode().split(".", 1)
        return uuid.UUID(lead), message_id
    except (ValueError, UnicodeDecodeError):
        return None


def unsubscribe_url(settings: NotifySettings, token: str) -> str:
    return f"{settings.notify_public_url.rstrip('/')}/v1/u/{token}"


def nurture_mail(
    settings: NotifySettings,
    lead_id: uuid.UUID,
    message_id: str,
    contact: Mapping[str, Any],
    step: Mapping[str, Any],
) -> Mail:
    token = make_token(settings, lead_id, message_id)
    base = settings.notify_public_url.rstrip("/")
    fields = dict(contact)
    subject = render_template(step["subject"], fields)
    body = render_template(step["body"], fields)
    unsubscribe = unsubscribe_url(settings, token)
    content = settings.console_url.rstrip("/") + "/content/" + str(step["content_id"])
    more = f"{base}/v1/t/c/{token}?u={quote(content, safe='')}"
    text = f"{body}\n\nRead more: {more}\n\nUnsubscribe: {unsubscribe}\n"
    html = (
        "<html><body>"
        + "".join(f"<p>{_escape(line)}</p>" for line in body.split("\n") if line.strip())
        + f'<p><a href="{more}">Read more</a></p>'
        + f'<p style="font-size:small"><a href="{unsubscribe}">Unsubscribe</a></p>'
        + f'<img src="{base}/v1/t/o/{token}.gif" width="1" height="1" alt="">'
        + "</body></html>"
    )
    return Mail(
        to=str(contact["email"]),
        subject=subject,
        text=text,
        html=html,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
