"""notify's HTTP API: webhook endpoints (admin), people's preferences and team channels
(admin), the message log, and the public links in e-mails (unsubscribe, open, click)."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import AdminDep, KitDep, ServiceKit
from leadflow.events.access import public
from leadflow.events.errors import Problem
from leadflow.notify import commands, domain, links, store
from leadflow.notify import webhook_store as wh
from leadflow.notify.handlers import INTAKE_CALL, EndpointCache, PeopleCache
from leadflow.notify.settings import NotifySettings
from leadflow.notify.state import NotifyState
from leadflow.notify.webhooks import TargetRefused, check_target

router = APIRouter()
admin = APIRouter(dependencies=[AdminDep])
# The smallest transparent GIF: what an e-mail client fetches for the open pixel.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _settings(kit: ServiceKit) -> NotifySettings:
    assert isinstance(kit.settings, NotifySettings)
    return kit.settings


def _people(kit: ServiceKit[NotifyState]) -> PeopleCache:
    return kit.state.people


def _endpoints(kit: ServiceKit[NotifyState]) -> EndpointCache:
    return kit.state.endpoints


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookIn(_In):
    url: str = Field(min_length=8, max_length=2000)
    events: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1)
    description: str = Field(default="", max_length=500)


def _endpoint_out(row: Any, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": row.endpoint_id,
        "url": row.url,
        "description": row.description,
        "events": list(row.events),
        "enabled": row.enabled,
        "failing_since": _iso(row.failing_since),
        "disabled_at": _iso(row.disabled_at),
        "disabled_reason": row.disabled_reason,
        "created_at": _iso(row.created_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _run(kit: ServiceKit, cmd: commands.Command) -> Any:
    """One command in its own unit of work; a refusal is its problem+json."""
    try:
        async with kit.unit_of_work() as uow:
            return await commands.run(uow, cmd)
    except commands.CommandRefused as refused:
        raise refused.problem() from None


def _missing(what: str, ident: str) -> Problem:
    return Problem(404, "Not found", f"no {what} {ident!r}")


async def _checked_url(kit: ServiceKit, url: str) -> str:
    try:
        await check_target(url, allow_private=_settings(kit).notify_webhooks_allow_private)
    except TargetRefused as exc:
        raise Problem.invalid_fields([{"field": "url", "message": str(exc)}]) from None
    return url


@admin.post("/v1/webhooks", status_code=201, tags=["webhooks"], summary="Register an endpoint")
async def create_webhook(body: WebhookIn, kit: KitDep) -> JSONResponse:
    """The answer holds the signing secret (``whsec_...``), shown this once."""
    url = await _checked_url(kit, body.url)
    secret = domain.new_secret(secrets.token_bytes(24))
    endpoint_id = f"ep_{uuid.uuid4().hex[:20]}"
    cmd = commands.RegisterWebhook(endpoint_id, url, body.events, body.description, secret)
    row = await _run(kit, cmd)
    _endpoints(kit).invalidate()
    return JSONResponse(_endpoint_out(row, secret), status_code=201)


@admin.get("/v1/webhooks", tags=["webhooks"], summary="Registered endpoints")
async def list_webhooks(kit: KitDep) -> list[dict[str, Any]]:
    async with kit.connect() as tx:
        return [_endpoint_out(r) for r in await wh.endpoints(tx)]


@admin.get("/v1/webhooks/{endpoint_id}", tags=["webhooks"], summary="One endpoint")
async def get_webhook(endpoint_id: str, kit: KitDep) -> dict[str, Any]:
    async with kit.connect() as tx:
        row = await wh.endpoint(tx, endpoint_id)
    if row is None:
        raise _missing("webhook endpoint", endpoint_id)
    return _endpoint_out(row)


@admin.delete("/v1/webhooks/{endpoint_id}", status_code=204, tags=["webhooks"], summary="Remove")
async def delete_webhook(endpoint_id: str, kit: KitDep) -> Response:
    await _run(kit, commands.RemoveWebhook(endpoint_id))
    _endpoints(kit).invalidate()
    return Response(status_code=204)


@admin.post("/v1/webhooks/{endpoint_id}/rotate-secret", tags=["webhooks"], summary="New secret")
async def rotate_secret(endpoint_id: str, kit: KitDep) -> dict[str, Any]:
    """Deliveries are signed with both secrets for 24 hours, so receivers can switch over."""
    secret = domain.new_secret(secrets.token_bytes(24))
    until = await _run(kit, commands.RotateSecret(endpoint_id, secret, kit.clock.now()))
    return {"id": endpoint_id, "secret": secret, "previous_valid_until": until.isoformat()}


@admin.post("/v1/webhooks/{endpoint_id}/enable", tags=["webhooks"], summary="Re-enable")
async def enable_webhook(endpoint_id: str, kit: KitDep) -> dict[str, Any]:
    """Back on after a disable: every queue that waited is delivered again, in order."""
    row = await _run(kit, commands.EnableWebhook(endpoint_id, kit.clock.now()))
    _endpoints(kit).invalidate()
    return _endpoint_out(row)


@admin.get("/v1/webhooks/{endpoint_id}/deliveries", tags=["webhooks"], summary="Delivery log")
async def list_deliveries(
    endpoint_id: str, kit: KitDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    async with kit.snapshot() as tx:  # the endpoint and its log as of one moment
        if await wh.endpoint(tx, endpoint_id) is None:
            raise _missing("webhook endpoint", endpoint_id)
        rows = await wh.deliveries(tx, endpoint_id, limit)
    return [
        {
            "id": r.message_id,
            "lead_id": str(r.lead_id),
            "event_id": str(r.event_id),
            "event_type": r.event_type,
            "status": r.status,
            "attempts": r.attempts,
            "last_status": r.last_status,
            "last_error": r.last_error,
            "latency_ms": r.latency_ms,
            "created_at": _iso(r.created_at),
            "delivered_at": _iso(r.delivered_at),
        }
        for r in rows
    ]


@admin.get(
    "/v1/webhooks/{endpoint_id}/deliveries/{message_id}/attempts",
    tags=["webhooks"],
    summary="Every attempt of one delivery",
)
async def list_attempts(endpoint_id: str, message_id: str, kit: KitDep) -> list[dict[str, Any]]:
    async with kit.connect() as tx:
        rows = await wh.attempts(tx, message_id)
    return [
        {
            "attempt": r.attempt,
            "at": _iso(r.attempted_at),
            "status": r.status,
            "error": r.error,
            "latency_ms": r.latency_ms,
        }
        for r in rows
    ]


@admin.post(
    "/v1/webhooks/{endpoint_id}/deliveries/{message_id}/replay",
    status_code=202,
    tags=["webhooks"],
    summary="Send one delivery again",
)
async def replay_delivery(endpoint_id: str, message_id: str, kit: KitDep) -> dict[str, Any]:
    await _run(kit, commands.ReplayDelivery(endpoint_id, message_id, kit.clock.now()))
    return {"id": message_id, "status": "pending"}


# -- people ---------------------------------------------------------------------------------


class PreferenceIn(_In):
    preference: Literal["immediate", "daily_digest", "off"]


class ChannelIn(_In):
    slack_webhook_url: str | None = Field(default=None, max_length=2000)


@admin.put("/v1/notify/preferences/{address}", tags=["people"], summary="How a person is told")
async def put_preference(address: str, body: PreferenceIn, kit: KitDep) -> dict[str, str]:
    kept_as = await _run(kit, commands.SetPreference(address, body.preference))
    _people(kit).invalidate()
    return {"address": kept_as, "preference": body.preference}


@admin.get("/v1/notify/preferences/{address}", tags=["people"], summary="A person's preference")
async def get_preference(address: str, kit: KitDep) -> dict[str, str]:
    async with kit.connect() as tx:
        found = await store.preferences(tx, [address])
    return {"address": address.lower(), "preference": found.get(address.lower(), "immediate")}


@admin.put("/v1/notify/teams/{team_id}/channel", tags=["people"], summary="A team's channel")
async def put_channel(team_id: str, body: ChannelIn, kit: KitDep) -> dict[str, Any]:
    """A Slack-compatible incoming webhook told of the team's assignments and breaches."""
    if body.slack_webhook_url:
        await _checked_url(kit, body.slack_webhook_url)
    await _run(kit, commands.SetTeamChannel(team_id, body.slack_webhook_url))
    _people(kit).invalidate()
    return {"team_id": team_id, "slack_webhook_url": body.slack_webhook_url}


@admin.get("/v1/notify/messages", tags=["people"], summary="What was sent to people")
async def list_messages(
    kit: KitDep,
    lead_id: uuid.UUID | None = None,
    recipient: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    async with kit.connect() as tx:
        rows = await store.list_messages(tx, lead_id=lead_id, recipient=recipient, limit=limit)
    return [
        {
            "id": r.message_id,
            "kind": r.kind,
            "channel": r.channel,
            "recipient": r.recipient,
            "lead_id": str(r.lead_id) if r.lead_id else None,
            "status": r.status,
            "subject": r.subject,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "caused_by": r.caused_by,
            "created_at": _iso(r.created_at),
            "sent_at": _iso(r.sent_at),
        }
        for r in rows
    ]


# -- the links in e-mails (public: the signed token is the credential) -----------------------


def _token(kit: ServiceKit, token: str) -> tuple[uuid.UUID, str]:
    found = links.read_token(_settings(kit), token.removesuffix(".gif"))
    if found is None:
        raise Problem(404, "Not found", "this link is not valid")
    return found


async def _call_intake(kit: ServiceKit, key: str, lead_id: uuid.UUID, call: dict[str, Any]) -> None:
    """Recorded now, made by a durable timer: intake being away loses no opt-out."""
    async with kit.unit_of_work() as uow:
        await uow.timers.schedule(key, uow.clock.now(), INTAKE_CALL, call, lead_id=lead_id)


@router.get(
    "/v1/u/{token}",
    tags=["links"],
    summary="Unsubscribe page",
    response_class=HTMLResponse,
    dependencies=[public()],  # the signed link is the credential
)
async def unsubscribe_page(token: str, kit: KitDep) -> HTMLResponse:
    """A page with a button: link scanners follow GETs, so only the POST unsubscribes."""
    _token(kit, token)
    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title><h1>Unsubscribe</h1>"
        f'<form method="post" action="/v1/u/{token}"><button type="submit">'
        "Stop these e-mails</button></form>"
    )


@router.post(
    "/v1/u/{token}",
    tags=["links"],
    summary="One-click unsubscribe (RFC 8058)",
    dependencies=[public()],  # the signed link is the credential
)
async def unsubscribe(token: str, kit: KitDep) -> HTMLResponse:
    lead_id, _message_id = _token(kit, token)
    await _run(kit, commands.Unsubscribe(lead_id))  # no further nurture from here on
    await _call_intake(
        kit,
        f"optout:{lead_id}",
        lead_id,
        {
            "path": f"/v1/leads/{lead_id}/consent",
            "auth": "admin",
            "json": {"marketing_opt_in": False, "source": "unsubscribe_link"},
        },
    )
    return HTMLResponse("<!doctype html><title>Unsubscribed</title><p>You are unsubscribed.</p>")


def _activity(
    kind: str, lead_id: uuid.UUID, message_id: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    item = {
        "activity_id": f"{kind}:{message_id}",
        "type": kind,
        "occurred_at": at.isoformat(),
        "lead_id": str(lead_id),
        "properties": {"message_id": message_id},
        **extra,
    }
    return {"path": "/v1/activities", "auth": "api_key", "json": {"items": [item]}}


@router.get("/v1/t/o/{token}", tags=["links"], summary="Open pixel", dependencies=[public()])
async def opened(token: str, kit: KitDep) -> Response:
    lead_id, message_id = _token(kit, token)
    call = _activity("email_open", lead_id, message_id, kit.clock.now())
    await _call_intake(kit, f"open:{message_id}", lead_id, call)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/v1/t/c/{token}", tags=["links"], summary="Tracked click", dependencies=[public()])
async def clicked(
    token: str, kit: KitDep, request: Request, u: str = Query(max_length=2000)
) -> Response:
    lead_id, message_id = _token(kit, token)
    s = _settings(kit)
    if not u.startswith((s.console_url.rstrip("/") + "/", s.notify_public_url.rstrip("/") + "/")):
        raise Problem.invalid_fields([{"field": "u", "message": "not a link Leadflow sent"}])
    call = _activity("email_click", lead_id, message_id, kit.clock.now(), url=u)
    await _call_intake(kit, f"click:{message_id}", lead_id, call)
    return RedirectResponse(u, status_code=302)


router.include_router(admin)
