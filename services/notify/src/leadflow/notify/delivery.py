"""Timer handlers: what was recorded is sent, after the consumer's commit.

Mails due in one timer sweep are rendered, then handed to the relay concurrently (the SMTP
sessions only: one database connection serves the sweep, so every read and write stays
sequential), then their outcomes are written. A failure is recorded and retried later by
re-scheduling the message's own timer, never raised: raising would make the kernel fire
the sweep again, and send again what already went out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx

from leadflow.events import UnitOfWork
from leadflow.events.catalogue.notify import (
    NotificationSent,
    NotificationSuppressed,
    NurtureEmailSent,
    NurtureEmailWithheld,
    WebhookEndpointDisabled,
)
from leadflow.events.envelope import stream_id
from leadflow.events.timers import Timer
from leadflow.notify import domain, links, store
from leadflow.notify import webhook_store as wh
from leadflow.notify.handlers import DELIVER, DIGEST, INTAKE_CALL, NURTURE, WEBHOOK
from leadflow.notify.mailer import Mailer
from leadflow.notify.settings import NotifySettings
from leadflow.notify.webhooks import Attempt, TargetRefused, check_target, post_signed

log = logging.getLogger("leadflow.notify")
MAIL_ATTEMPTS = 8
QUEUE_BURST = 20


def mail_retry(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 5 * 3 ** max(attempts - 1, 0)))


class Delivery:
    def __init__(self, settings: NotifySettings, mailer: Mailer) -> None:
        self.settings = settings
        self.mailer = mailer
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.notify_webhook_timeout_seconds, follow_redirects=False
            )
        return self._http

    async def close(self) -> None:
        await self.mailer.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def timer_handlers(self) -> dict[str, Any]:
        return {
            DELIVER: self.on_deliver,
            DIGEST: self.on_digest,
            WEBHOOK: self.on_webhook,
            NURTURE: self.on_nurture,
            INTAKE_CALL: self.on_intake_call,
        }

    async def _retry(self, timer: Timer, uow: UnitOfWork, error: str) -> None:
        """The timer again, later, with its attempts counted (never raised: see above)."""
        attempts = int(timer.payload.get("attempts", 0)) + 1
        log.warning("%s failed (attempt %d): %s", timer.key, attempts, error)
        await uow.timers.schedule(
            timer.key,
            uow.clock.now() + mail_retry(attempts),
            timer.kind,
            {**timer.payload, "attempts": attempts, "last_error": error[:500]},
            lead_id=timer.lead_id,
        )

    # -- mail and channels -------------------------------------------------------------------

    async def on_deliver(self, timer: Timer, uow: UnitOfWork) -> None:
        ids = uow.batch((self, DELIVER), list, partial(self._deliver, uow))
        ids.append(timer.key.removeprefix("mail:"))

    async def _deliver(self, uow: UnitOfWork, ids: list[str]) -> None:
        rows = [r for r in await store.messages_by_id(uow.tx, ids) if r.status == "pending"]
        if not rows:
            return
        leads = await store.get_leads(uow.tx, [r.lead_id for r in rows if r.lead_id])
        rendered = [(row, self._render(row, leads.get(row.lead_id))) for row in rows]
        outcomes = await asyncio.gather(*(self._send(row, what) for row, what in rendered))
        now = uow.clock.now()
        sent: list[tuple[str, str | None]] = []
        for (row, what), error in zip(rendered, outcomes, strict=True):
            subject = what.subject if isinstance(what, domain.Mail) else what.get("text")
            if error is None:
                sent.append((row.message_id, subject))
                latency = None
                if row.caused_recorded_at is not None:
                    latency = round((now - row.caused_recorded_at).total_seconds() * 1000, 1)
                await uow.append(
                    row.lead_id or stream_id("notify"),
                    NotificationSent(
                        notification_id=row.message_id,
                        kind=row.kind,
                        channel=row.channel,
                        recipient=row.recipient,
                        caused_by=row.caused_by,
                        caused_by_event_id=row.caused_event_id,
                        latency_ms=latency,
                    ),
                )
                continue
            attempts = row.attempts + 1
            log.warning(
                "%s to %s failed (attempt %d): %s", row.kind, row.recipient, attempts, error
            )
            if attempts >= MAIL_ATTEMPTS:
                await store.message_done(
                    uow.tx, row.message_id, status="failed", subject=subject, at=now, error=error
                )
                await uow.append(
                    row.lead_id or stream_id("notify"),
                    NotificationSuppressed(
                        kind=row.kind,
                        recipient=row.recipient,
                        reason="gave_up",
                        caused_by=row.caused_by,
                    ),
                )
                continue
            await store.message_done(
                uow.tx, row.message_id, status="pending", subject=subject, at=now, error=error
            )
            await uow.timers.schedule(
                f"mail:{row.message_id}", now + mail_retry(attempts), DELIVER, lead_id=row.lead_id
            )
        await store.messages_sent(uow.tx, sent, now)

    def _render(self, row: Any, lead: Any) -> domain.Mail | dict[str, Any]:
        lead_id = str(row.lead_id)
        card = domain.LeadCard.from_row(
            lead_id, lead.contact if lead else None, lead.scoring if lead else None
        )
        ctx = row.context or {}
        console = self.settings.console_url
        if row.kind in ("assignment", "reassignment"):
            mail = domain.assignment_mail(
                row.recipient,
                card,
                console_url=console,
                reassigned=row.kind == "reassignment",
                rep_name=ctx.get("rep_name"),
                reason=ctx.get("reason") or "",
            )
        else:
            mail = domain.sla_mail(
                row.recipient,
                row.kind,
                card,
                console_url=console,
                policy_id=ctx.get("policy_id") or "-",
                due_at=ctx.get("due_at"),
                rep_id=ctx.get("rep_id"),
                detail=ctx.get("detail") or "",
            )
        if row.channel == "slack":
            return domain.slack_message(mail.subject, domain.lead_link(console, lead_id), card)
        return mail

    async def _send(self, row: Any, what: domain.Mail | dict[str, Any]) -> str | None:
        try:
            if isinstance(what, domain.Mail):
                await self.mailer.send(what, row.message_id)
            else:
                response = await self.http.post(row.context["url"], json=what)
                if not domain.is_success(response.status_code):
                    return f"HTTP {response.status_code}: {response.text[:200]}"
        except Exception as exc:  # the relay's refusal or absence: retried later
            return f"{type(exc).__name__}: {exc}"[:500]
        return None

    async def on_digest(self, timer: Timer, uow: UnitOfWork) -> None:
        recipient = timer.key.removeprefix("digest:")
        taken = await store.take_digest(uow.tx, recipient)
        if not taken:
            return
        # Each held notification rendered as it would have been sent at once (who, which
        # company, the console link), in the order it arrived: the digest is read instead.
        rows = await store.messages_by_id(uow.tx, [i.message_id for i in taken])
        leads = await store.get_leads(uow.tx, [r.lead_id for r in rows if r.lead_id])
        items = []
        for row in rows:
            what = self._render(row, leads.get(row.lead_id))
            subject = what.subject if isinstance(what, domain.Mail) else what.get("text")
            link = domain.lead_link(self.settings.console_url, str(row.lead_id))
            items.append({"subject": subject or row.subject, "link": link if row.lead_id else None})
        now = uow.clock.now()
        mail = domain.digest_mail(recipient, items, now.date().isoformat())
        try:
            await self.mailer.send(mail)
        except Exception as exc:
            await store.undo_digest(uow.tx, [i.message_id for i in taken])
            await self._retry(timer, uow, repr(exc))
            return
        await uow.append(
            stream_id(f"notify-digest:{recipient}"),
            NotificationSent(
                notification_id=f"digest:{recipient}:{now.date()}",
                kind="digest",
                channel="email",
                recipient=recipient,
                caused_by="digest",
            ),
        )

    # -- nurture ------------------------------------------------------------------------------

    async def on_nurture(self, timer: Timer, uow: UnitOfWork) -> None:
        assert timer.lead_id is not None
        p = timer.payload
        lead = await store.get_lead(uow.tx, timer.lead_id)
        now = uow.clock.now()
        contact = (lead.contact or {}) if lead else {}
        verdict = domain.nurture_verdict(
            email=contact.get("email"),
            consent=lead.consent if lead else None,
            opted_out=bool(lead and lead.opted_out),
            erased=bool(lead and lead.erased),
            do_not_contact=bool(lead and lead.do_not_contact),
            last_sent_at=lead.last_nurture_at if lead else None,
            now=now,
            min_gap=timedelta(hours=self.settings.notify_nurture_min_hours),
            has_template=bool(p.get("subject") and p.get("body")),
        )
        base = {"track_id": p["track_id"], "step": p["step"], "content_id": p["content_id"]}
        if verdict is not None:
            await uow.append(timer.lead_id, NurtureEmailWithheld(**base, reason=verdict))
            return
        message_id = f"nm_{uuid.uuid5(timer.lead_id, timer.key).hex}"
        mail = links.nurture_mail(self.settings, timer.lead_id, message_id, contact, p)
        try:
            await self.mailer.send(mail, message_id)
        except Exception as exc:
            await self._retry(timer, uow, repr(exc))
            return
        await store.note_nurture_sent(uow.tx, timer.lead_id, now)
        await uow.append(timer.lead_id, NurtureEmailSent(**base, message_id=message_id))

    # -- calls to intake (opt-outs, opens, clicks) ---------------------------------------------

    async def on_intake_call(self, timer: Timer, uow: UnitOfWork) -> None:
        p = timer.payload
        s = self.settings
        headers = (
            {"Authorization": f"Bearer {s.admin_token}"}
            if p["auth"] == "admin"
            else {"X-Api-Key": s.notify_intake_api_key}
        )
        try:
            response = await self.http.post(
                s.intake_url.rstrip("/") + p["path"], json=p["json"], headers=headers
            )
        except httpx.HTTPError as exc:
            await self._retry(timer, uow, repr(exc))
            return
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            await self._retry(timer, uow, f"HTTP {response.status_code}: {response.text[:300]}")
        elif not domain.is_success(response.status_code):
            log.error(
                "intake refused %s: %s %s", p["path"], response.status_code, response.text[:500]
            )

    # -- webhooks -------------------------------------------------------------------------------

    async def on_webhook(self, timer: Timer, uow: UnitOfWork) -> None:
        """One lead's queue for one endpoint: oldest first, stopping at the first failure so
        a later event never overtakes an earlier one."""
        _, endpoint_id, lead = timer.key.split(":", 2)
        lead_id = uuid.UUID(lead)
        endpoint = await wh.endpoint(uow.tx, endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return  # re-enabling (or a replay) schedules the queue again
        queue = await wh.queue_head(uow.tx, endpoint_id, lead_id, QUEUE_BURST)
        now = uow.clock.now()
        secrets = [endpoint.secret]
        if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
            secrets.append(endpoint.previous_secret)
        for message in queue:
            attempt = await self._attempt(endpoint.url, message, secrets)
            ok = attempt.status is not None and domain.is_success(attempt.status)
            await wh.record_attempt(
                uow.tx,
                message.message_id,
                at=now,
                status=attempt.status,
                error=attempt.error,
                latency_ms=attempt.latency_ms,
                delivered=ok,
            )
            if not ok:
                await self._failed(
                    uow, endpoint, timer.key, lead_id, message.attempts + 1, attempt, now
                )
                return
            await wh.note_healthy(uow.tx, endpoint_id)
        if len(queue) == QUEUE_BURST:
            await uow.timers.schedule(
                timer.key, now + timedelta(milliseconds=1), WEBHOOK, lead_id=lead_id
            )

    async def _attempt(self, url: str, message: Any, secrets: list[str]) -> Attempt:
        try:
            await check_target(url, allow_private=self.settings.notify_webhooks_allow_private)
        except TargetRefused as exc:
            return Attempt(None, str(exc), 0.0)
        return await post_signed(
            self.http,
            url,
            msg_id=message.message_id,
            body=message.body.encode(),
            secrets=secrets,
            timestamp=int(time.time()),
        )

    async def _failed(
        self,
        uow: UnitOfWork,
        endpoint: Any,
        key: str,
        lead_id: uuid.UUID,
        attempts: int,
        attempt: Attempt,
        now: datetime,
    ) -> None:
        since = await wh.note_failing(uow.tx, endpoint.endpoint_id, now)
        give_up = timedelta(hours=self.settings.notify_webhook_give_up_hours)
        if domain.gives_up(since, now, give_up):
            reason = f"failing since {since.isoformat()}: {attempt.error or attempt.status}"
            await wh.set_enabled(uow.tx, endpoint.endpoint_id, False, now, reason)
            await uow.append(
                stream_id("webhook-endpoints"),
                WebhookEndpointDisabled(
                    endpoint_id=endpoint.endpoint_id,
                    url=endpoint.url,
                    failing_since=since.isoformat(),
                    attempts=attempts,
                    last_error=(attempt.error or f"HTTP {attempt.status}")[:500],
                ),
            )
            log.error("webhook endpoint %s disabled: %s", endpoint.endpoint_id, reason)
            return
        await uow.timers.schedule(key, now + domain.retry_delay(attempts), WEBHOOK, lead_id=lead_id)
