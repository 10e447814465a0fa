"""Consumed events -> what notify knows and what it must send.

A handler never talks to a mail relay or a webhook endpoint: it records the message in the
consumer's transaction and schedules a durable timer due at once; the timer handlers
(``delivery``) send after that commit, retry with backoff and record the outcome. So an
accepted event is never lost to a relay that is down, and a slow endpoint never holds up a
Kafka partition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from leadflow.events import Handler, UnitOfWork
from leadflow.events.batch import Appended, Decision, flush_batches, on_batch
from leadflow.events.catalogue.intake import (
    ConsentChanged,
    DoNotContactChanged,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.notify import NotificationSuppressed
from leadflow.events.catalogue.routing import LeadAssigned, LeadReassigned
from leadflow.events.catalogue.scoring import LeadQualified, LeadScored, NurtureTouchDue
from leadflow.events.catalogue.sla import EscalationRaised, SlaBreached, SlaWarning
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.registry import registry
from leadflow.events.sql import Tx
from leadflow.events.timers import Timer
from leadflow.notify import domain, store
from leadflow.notify import webhook_store as wh
from leadflow.notify.settings import NotifySettings

CONSUMES = ("intake", "scoring", "routing", "sla")
DELIVER = "deliver"
DIGEST = "digest"
WEBHOOK = "webhook"
NURTURE = "nurture"
INTAKE_CALL = "intake_call"


def message_id(event: Envelope, kind: str, recipient: str) -> str:
    """Deterministic: a redelivered event finds its message already there."""
    return f"n_{uuid.uuid5(event.event_id, f'{kind}:{recipient.lower()}').hex}"


def webhook_message_id(event: Envelope, endpoint_id: str) -> str:
    """The ``webhook-id`` receivers deduplicate on: the same for every retry and replay."""
    return f"msg_{uuid.uuid5(event.event_id, endpoint_id).hex}"


class EndpointCache:
    """Enabled endpoints, read at most once a second (every event is checked against them)."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._at = 0.0
        self._rows: list[Any] = []

    def invalidate(self) -> None:
        self._at = 0.0

    async def get(self, uow: UnitOfWork) -> list[Any]:
        if time.monotonic() - self._at > self.ttl:
            self._rows = await wh.enabled_endpoints(uow.tx)
            self._at = time.monotonic()
        return self._rows


class PeopleCache:
    """Preferences and team channels, read at most once a second (both are small tables
    people rarely change; every assignment would otherwise read them), and the roster as
    last written (a rep's row is written again only when routing says something new)."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._at = 0.0
        self.preferences: dict[str, str] = {}
        self.channels: dict[str, str] = {}
        self.roster: dict[str, tuple[str | None, ...]] = {}

    def invalidate(self) -> None:
        self._at = 0.0

    async def refresh(self, uow: UnitOfWork) -> None:
        if time.monotonic() - self._at > self.ttl:
            self.preferences, self.channels = await store.people(uow.tx)
            self._at = time.monotonic()


class LeadNewsHandler:
    """Captures, profile updates and scores as a kernel ``BatchHandler``: nothing to load,
    ``domain.learn`` merges each lead's news in event order, ``save`` writes the batch's
    contacts and scores with one statement each (a round trip per capture and per score made
    notify a sixth of the pipeline's CPU). A consent, do-not-contact or erasure handler
    flushes the batch first (``flush_batches``), so a lead's facts land in event order."""

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> None:
        return None

    async def load(self, tx: Tx, lead_ids: Sequence[uuid.UUID], ctx: None) -> dict[uuid.UUID, Any]:
        return {}

    def decide(self, state: domain.LeadNews | None, event: Envelope, ctx: None) -> Decision[Any]:
        return Decision(state=domain.learn(state, event.payload))

    async def save(
        self, tx: Tx, changed: Mapping[uuid.UUID, domain.LeadNews], ctx: None
    ) -> Sequence[Appended]:
        contacts = [
            (lead_id, dict(n.contact), n.consent)
            for lead_id, n in changed.items()
            if n.contact is not None
        ]
        if contacts:
            await store.upsert_contacts(tx, contacts)
        scorings = {lead_id: n.scoring for lead_id, n in changed.items() if n.scoring is not None}
        if scorings:
            await store.set_scorings(tx, scorings)
        return ()


class NotifyHandlers:
    def __init__(
        self, settings: NotifySettings, endpoints: EndpointCache, people: PeopleCache
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.people = people
        self.news = on_batch(LeadNewsHandler())

    # -- what notify knows of leads --------------------------------------------------------

    async def on_consent(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, ConsentChanged)
        await flush_batches(uow)  # after the batch's earlier contacts, never before
        await store.set_consent(uow.tx, event.lead_id, p.marketing_opt_in)

    async def on_do_not_contact(self, event: Envelope, uow: UnitOfWork) -> None:
        """No contact at all: nurture stops (sales hears of it through scoring)."""
        p = event.payload
        assert isinstance(p, DoNotContactChanged)
        await flush_batches(uow)
        await store.set_do_not_contact(uow.tx, event.lead_id, p.do_not_contact)

    async def on_erased(self, event: Envelope, uow: UnitOfWork) -> None:
        await flush_batches(uow)
        await store.erase(uow.tx, event.lead_id)

    # -- people told -----------------------------------------------------------------------

    async def on_assigned(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, LeadAssigned | LeadReassigned)
        if p.rep_id is not None:
            known = (p.rep_name, p.rep_email, p.team_id, p.manager_email)
            if self.people.roster.get(p.rep_id) != known:
                await store.upsert_rep(
                    uow.tx, p.rep_id, p.rep_name, p.rep_email, p.team_id, p.manager_email
                )
                self.people.roster[p.rep_id] = known
        kind = "reassignment" if isinstance(p, LeadReassigned) else "assignment"
        if p.rep_email:
            await self._tell(
                uow,
                event,
                kind,
                p.rep_email,
                {"rep_name": p.rep_name, "reason": p.reason},
            )
        await self._tell_channel(uow, event, kind, p.team_id)

    async def on_sla(self, event: Envelope, uow: UnitOfWork) -> None:
        p = event.payload
        assert isinstance(p, SlaWarning | SlaBreached | EscalationRaised)
        kind: domain.SlaKind
        detail = ""
        notify: list[str] = []
        if isinstance(p, SlaWarning):
            kind = "sla_warning"
        elif isinstance(p, SlaBreached):
            kind = "sla_breach"
            detail = f"late by {round(p.late_by_seconds / 60)} min"
        else:
            kind, notify, detail = "escalation", p.notify, f"step {p.step}: {p.action}"
        owner = await store.rep(uow.tx, p.rep_id)
        team = await store.team(uow.tx, p.team_id or (owner.team_id if owner else None))
        recipients = domain.sla_recipients(
            kind,
            owner_email=owner.email if owner else None,
            manager_email=team.manager_email if team else None,
            marketing_ops_email=self.settings.notify_marketing_ops_email or None,
            notify=notify,
        )
        context = {
            "policy_id": p.policy_id,
            "due_at": getattr(p, "due_at", None) and p.due_at.isoformat(),  # type: ignore[union-attr]
            "rep_id": p.rep_id,
            "detail": detail,
        }
        for to in recipients:
            await self._tell(uow, event, kind, to, context)
        if kind != "sla_warning":
            await self._tell_channel(uow, event, kind, team.team_id if team else None)

    async def _tell(
        self, uow: UnitOfWork, event: Envelope, kind: str, to: str, context: dict[str, Any]
    ) -> None:
        await self.people.refresh(uow)
        delivery = domain.delivery_for(self.people.preferences.get(to.lower()))  # type: ignore[arg-type]
        status = {"send": "pending", "digest": "digest", "drop": "dropped"}[delivery]
        mid = message_id(event, kind, to)
        subject = None
        if delivery == "digest":
            subject = f"{kind.replace('_', ' ')}: lead {event.lead_id}"
        added = await store.add_message(
            uow.tx,
            message_id=mid,
            kind=kind,
            channel="email",
            recipient=to.lower(),
            lead_id=event.lead_id,
            status=status,
            subject=subject,
            context=context,
            caused_by=event.event_type,
            caused_event_id=event.event_id,
            caused_recorded_at=event.recorded_at,
        )
        if not added:
            return
        now = uow.clock.now()
        if delivery == "send":
            await uow.timers.schedule(f"mail:{mid}", now, DELIVER, lead_id=event.lead_id)
        elif delivery == "digest":
            due = domain.next_digest_at(now, self.settings.notify_digest_hour)
            # One digest timer per person: not moved by the next held message.
            await uow.timers.ensure_many([Timer(f"digest:{to.lower()}", DIGEST, due, {}, None)])
        else:
            await uow.append(
                event.lead_id,
                NotificationSuppressed(
                    kind=kind,
                    recipient=to.lower(),
                    reason="preference_off",
                    caused_by=event.event_type,
                ),
            )

    async def _tell_channel(
        self, uow: UnitOfWork, event: Envelope, kind: str, team_id: str | None
    ) -> None:
        await self.people.refresh(uow)
        url = self.people.channels.get(team_id or "") or self.settings.notify_slack_webhook_url
        if not url:
            return
        mid = message_id(event, kind, f"slack:{team_id}")
        added = await store.add_message(
            uow.tx,
            message_id=mid,
            kind=kind,
            channel="slack",
            recipient=f"team:{team_id or '-'}",
            lead_id=event.lead_id,
            status="pending",
            subject=None,
            context={"url": url},
            caused_by=event.event_type,
            caused_event_id=event.event_id,
            caused_recorded_at=event.recorded_at,
        )
        if added:
            await uow.timers.schedule(
                f"mail:{mid}", uow.clock.now(), DELIVER, lead_id=event.lead_id
            )

    # -- nurture ---------------------------------------------------------------------------

    async def on_touch_due(self, event: Envelope, uow: UnitOfWork) -> None:
        """The decision waits for the timer (consent may change before it fires)."""
        p = event.payload
        assert isinstance(p, NurtureTouchDue)
        if p.channel != "email":
            return
        await uow.timers.schedule(
            f"nurture:{event.event_id}",
            uow.clock.now(),
            NURTURE,
            {
                "track_id": p.track_id,
                "step": p.step,
                "content_id": p.content_id,
                "subject": p.subject,
                "body": p.body,
            },
            lead_id=event.lead_id,
        )

    # -- webhooks --------------------------------------------------------------------------

    async def fan_out(self, event: Envelope, uow: UnitOfWork) -> None:
        """Every consumed event, to each enabled endpoint subscribed to its type, in the
        lead's queue for that endpoint (one timer per queue keeps the lead's order)."""
        endpoints = [
            e
            for e in await self.endpoints.get(uow)
            if domain.subscribed(e.events, event.event_type)
        ]
        if not endpoints:
            return
        payload = event.payload
        data = payload.model_dump(mode="json", exclude=set(payload.personal_fields))
        body = orjson.dumps(
            domain.webhook_body(
                event.event_type,
                event.occurred_at,
                {
                    "lead_id": str(event.lead_id),
                    "event_id": str(event.event_id),
                    "producer": event.producer,
                    **data,
                },
            )
        ).decode()
        now = uow.clock.now()
        queues: list[Timer] = []
        for endpoint in endpoints:
            added = await wh.enqueue(
                uow.tx,
                message_id=webhook_message_id(event, endpoint.endpoint_id),
                endpoint_id=endpoint.endpoint_id,
                lead_id=event.lead_id,
                event_id=event.event_id,
                event_type=event.event_type,
                body=body,
            )
            if added:
                key = f"wh:{endpoint.endpoint_id}:{event.lead_id}"
                queues.append(Timer(key, WEBHOOK, now, {}, event.lead_id))
        # A queue's timer waiting out a backoff is not pulled forward by this message.
        await uow.timers.ensure_many(queues)

    # -- the map -----------------------------------------------------------------------------

    def handlers(self) -> dict[type[EventPayload] | str, Handler]:
        specific: dict[type[EventPayload], Handler] = {
            LeadCaptured: self.news,
            LeadProfileUpdated: self.news,
            ConsentChanged: self.on_consent,
            DoNotContactChanged: self.on_do_not_contact,
            LeadErased: self.on_erased,
            LeadScored: self.news,
            LeadQualified: self.news,
            NurtureTouchDue: self.on_touch_due,
            LeadAssigned: self.on_assigned,
            LeadReassigned: self.on_assigned,
            SlaWarning: self.on_sla,
            SlaBreached: self.on_sla,
            EscalationRaised: self.on_sla,
        }
        out: dict[type[EventPayload] | str, Handler] = {}
        for cls in registry.all():
            if cls.producer in CONSUMES:
                out[cls] = _both(specific.get(cls), self.fan_out)
        return out


def _both(first: Handler | None, then: Handler) -> Handler:
    if first is None:
        return then

    async def handle(event: Envelope, uow: UnitOfWork) -> None:
        await first(event, uow)
        await then(event, uow)

    return handle


AsyncFn = Callable[[], Awaitable[None]]
