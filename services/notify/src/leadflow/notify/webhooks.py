"""Webhook delivery I/O: where an endpoint may point, and one signed POST.

Targets are checked when an endpoint is registered and again at each delivery (a name may
resolve elsewhere later): loopback, private, link-local and reserved addresses are refused
unless ``LEADFLOW_NOTIFY_WEBHOOKS_ALLOW_PRIVATE`` allows them.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from leadflow.notify.domain import refused_address, signature_header


class TargetRefused(ValueError):
    pass


async def check_target(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("url must be an absolute http(s) URL")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except socket.gaierror as exc:
        raise TargetRefused(f"host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        reason = refused_address(str(info[4][0]))
        if reason is not None:
            raise TargetRefused(
                f"{parts.hostname} resolves to a {reason} address ({info[4][0]}); "
                "set LEADFLOW_NOTIFY_WEBHOOKS_ALLOW_PRIVATE=true to allow it"
            )


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None
    latency_ms: float


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    *,
    msg_id: str,
    body: bytes,
    secrets: list[str],
    timestamp: int,
) -> Attempt:
    headers = {
        "content-type": "application/json",
        "user-agent": "Leadflow-Webhooks/1.0",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }
    started = time.perf_counter()
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
    error = None if 200 <= response.status_code < 300 else response.text[:500]
    return Attempt(response.status_code, error, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
