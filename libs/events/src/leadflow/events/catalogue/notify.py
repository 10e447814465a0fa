"""Events produced by ``services/notify`` on ``leadflow.notify``: delivery facts.

What was sent to whom and why, and what could not be: a rep told of a new lead, a manager
told of a breach, a nurture e-mail sent or withheld, an outside system's webhook endpoint
given up on. Recipients here are Leadflow's own users (reps, managers) or channels; a
lead's own address never appears (nurture facts name only the lead).
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from leadflow.events.envelope import EventPayload

Channel = Literal["email", "slack"]


class NotificationSent(EventPayload):
    """A person or a team channel was told about the lead."""

    event_type: ClassVar[str] = "notification.sent"
    producer: ClassVar[str] = "notify"
    summary: ClassVar[str] = "A rep, manager or team channel was told about the lead."

    notification_id: str
    kind: str  # assignment, reassignment, sla_warning, sla_breach, escalation, digest
    channel: Channel
    recipient: str  # a user's address or a channel's name
    caused_by: str  # the event type that prompted it
    caused_by_event_id: uuid.UUID | None = None
    latency_ms: float | None = None  # from the prompting event's recording to the relay's OK


class NotificationSuppressed(EventPayload):
    """A notification that was not sent: preference off, digest, no address..."""

    event_type: ClassVar[str] = "notification.suppressed"
    producer: ClassVar[str] = "notify"
    summary: ClassVar[str] = "A notification was withheld (preference, digest, no address)."

    kind: str
    recipient: str | None = None
    reason: str  # preference_off, digest, no_address, gave_up
    caused_by: str


class NurtureEmailSent(EventPayload):
    """A nurture touch became an e-mail to the lead (its address is not repeated here)."""

    event_type: ClassVar[str] = "nurture.email_sent"
    producer: ClassVar[str] = "notify"
    summary: ClassVar[str] = "A nurture touch was delivered as an e-mail."

    message_id: str
    track_id: str
    step: int
    content_id: str


class NurtureEmailWithheld(EventPayload):
    """A due nurture touch was not sent, and why."""

    event_type: ClassVar[str] = "nurture.email_withheld"
    producer: ClassVar[str] = "notify"
    summary: ClassVar[str] = "A nurture touch was not sent (no consent, erased, throttled...)."

    track_id: str
    step: int
    content_id: str
    reason: Literal[
        "no_consent",
        "opted_out",
        "do_not_contact",
        "erased",
        "no_address",
        "throttled",
        "no_template",
    ]


class WebhookEndpointDisabled(EventPayload):
    """An outside system's endpoint failed for too long and gets nothing until re-enabled
    (stream: ``stream_id("webhook-endpoints")``)."""

    event_type: ClassVar[str] = "webhook.endpoint_disabled"
    producer: ClassVar[str] = "notify"
    summary: ClassVar[str] = "A webhook endpoint was disabled after persistent failure."

    endpoint_id: str
    url: str
    failing_since: str
    attempts: int
    last_error: str
