"""notify's admin actions as commands: a dataclass per action, a pure ``decide`` where there
is something to decide, and ``run`` to carry one out in a unit of work.

A route parses the request into a command (webhook endpoints: ``RegisterWebhook``,
``RemoveWebhook``, ``RotateSecret``, ``EnableWebhook``, ``ReplayDelivery``; people:
``SetPreference``, ``SetTeamChannel``, ``Unsubscribe``), ``run`` reads what the decision needs
in the command's transaction and writes what it decided, or raises ``CommandRefused`` (the
status and field the API answers with). What needs the network stays in the route before
the command is built (a webhook URL's address check resolves its host). The decisions are
unit-tested without a database (tests/unit/notify/test_notify_commands.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflow.events.errors import CommandRefused
from leadflow.events.timers import Timer
from leadflow.events.uow import UnitOfWork
from leadflow.notify import domain, store
from leadflow.notify import webhook_store as wh
from leadflow.notify.handlers import WEBHOOK

# Deliveries are signed with the old secret too for this long after a rotation.
ROTATION_GRACE = timedelta(hours=24)


def queue_key(endpoint_id: str, lead_id: uuid.UUID) -> str:
    """The timer that delivers one lead's queue for one endpoint, in order."""
    return f"wh:{endpoint_id}:{lead_id}"


# -- webhook endpoints ---------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterWebhook:
    """A new endpoint (its URL already checked); the secret is shown once, in the answer."""

    endpoint_id: str
    url: str
    events: Sequence[str]
    description: str
    secret: str


@dataclass(frozen=True)
class RemoveWebhook:
    endpoint_id: str


@dataclass(frozen=True)
class RotateSecret:
    endpoint_id: str
    secret: str
    now: datetime


@dataclass(frozen=True)
class EnableWebhook:
    endpoint_id: str
    now: datetime


@dataclass(frozen=True)
class ReplayDelivery:
    endpoint_id: str
    message_id: str
    now: datetime


def previous_secret_until(cmd: RotateSecret) -> datetime:
    """Until when the old secret still signs deliveries, so receivers can switch over."""
    return cmd.now + ROTATION_GRACE


def decide_enable(
    cmd: EnableWebhook, endpoint: Any | None, waiting: Sequence[uuid.UUID]
) -> list[Timer]:
    """Every queue that waited while the endpoint was off is delivered again, at once and in
    order (one timer per lead's queue); an unknown endpoint is a 404."""
    if endpoint is None:
        raise CommandRefused.missing("webhook endpoint", cmd.endpoint_id)
    return [
        Timer(queue_key(cmd.endpoint_id, lead_id), WEBHOOK, cmd.now, {}, lead_id)
        for lead_id in waiting
    ]


# -- people ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPreference:
    address: str
    preference: domain.Preference


@dataclass(frozen=True)
class SetTeamChannel:
    team_id: str
    slack_webhook_url: str | None


@dataclass(frozen=True)
class Unsubscribe:
    """The one-click link in a mail: no further marketing mail for the lead."""

    lead_id: uuid.UUID


def decide_preference(cmd: SetPreference) -> str:
    """The address the preference is kept under (lower case); not an address is a 422."""
    if "@" not in cmd.address:
        raise CommandRefused(
            422,
            "Invalid request",
            "invalid fields: address",
            [{"field": "address", "message": "an e-mail address"}],
        )
    return cmd.address.lower()


# -- carrying a command out ----------------------------------------------------------------

Command = (
    RegisterWebhook
    | RemoveWebhook
    | RotateSecret
    | EnableWebhook
    | ReplayDelivery
    | SetPreference
    | SetTeamChannel
    | Unsubscribe
)


async def run(uow: UnitOfWork, cmd: Command) -> Any:
    """Carry ``cmd`` out in ``uow``: the endpoint row for the webhook commands (None for a
    removal or a replay), the address for a preference. Raises ``CommandRefused``."""
    tx = uow.tx
    if isinstance(cmd, RegisterWebhook):
        return await wh.create_endpoint(
            tx, cmd.endpoint_id, cmd.url, cmd.description, cmd.events, cmd.secret
        )
    if isinstance(cmd, RemoveWebhook):
        if not await wh.delete_endpoint(tx, cmd.endpoint_id):
            raise CommandRefused.missing("webhook endpoint", cmd.endpoint_id)
        return None
    if isinstance(cmd, RotateSecret):
        until = previous_secret_until(cmd)
        if not await wh.rotate_secret(tx, cmd.endpoint_id, cmd.secret, until):
            raise CommandRefused.missing("webhook endpoint", cmd.endpoint_id)
        return until
    if isinstance(cmd, EnableWebhook):
        endpoint = await wh.endpoint(tx, cmd.endpoint_id, lock=True)
        waiting = await wh.pending_queues(tx, cmd.endpoint_id) if endpoint else []
        timers = decide_enable(cmd, endpoint, waiting)
        await wh.set_enabled(tx, cmd.endpoint_id, True, cmd.now, None)
        if timers:
            await uow.timers.schedule_many(timers)
        return await wh.endpoint(tx, cmd.endpoint_id)
    if isinstance(cmd, ReplayDelivery):
        row = await wh.replay(tx, cmd.endpoint_id, cmd.message_id)
        if row is None:
            raise CommandRefused.missing("delivery", cmd.message_id)
        # Not moved if the queue's timer is already waiting (out a backoff, say).
        key = queue_key(cmd.endpoint_id, row.lead_id)
        await uow.timers.ensure_many([Timer(key, WEBHOOK, cmd.now, {}, row.lead_id)])
        return None
    if isinstance(cmd, SetPreference):
        address = decide_preference(cmd)
        await store.set_preference(tx, address, cmd.preference)
        return address
    if isinstance(cmd, SetTeamChannel):
        await store.set_team_channel(tx, cmd.team_id, cmd.slack_webhook_url)
        return None
    await store.set_consent(tx, cmd.lead_id, False)
    return None
