"""notify's decisions, without I/O: who is told what, how a mail reads, how a webhook is
signed, when a failed delivery is tried again.

A consumed event becomes zero or more ``Outgoing`` items (an e-mail to a person, a post to
a team channel); a person's preference decides whether an item goes at once, waits for the
daily digest or is dropped. Webhooks follow the Standard Webhooks specification
(standardwebhooks.com): ``whsec_`` secrets, ``webhook-id`` / ``webhook-timestamp`` /
``webhook-signature`` headers, signatures ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from leadflow.events.catalogue.intake import LeadCaptured, LeadProfileUpdated
from leadflow.events.catalogue.scoring import LeadQualified, LeadScored
from leadflow.events.envelope import EventPayload

Preference = Literal["immediate", "daily_digest", "off"]
PREFERENCES: tuple[Preference, ...] = ("immediate", "daily_digest", "off")
Delivery = Literal["send", "digest", "drop"]


# -- what notify learns of a lead ----------------------------------------------------------


@dataclass(frozen=True)
class LeadNews:
    """What a consumer batch learnt of one lead, written at the batch's end with one
    statement per table: ``contact`` fields merged in event order (None: no contact event),
    the last consent stated, the latest score summary (None: not scored in the batch)."""

    contact: Mapping[str, Any] | None = None
    consent: bool | None = None
    scoring: Mapping[str, Any] | None = None


def score_summary(p: LeadScored | LeadQualified) -> dict[str, Any]:
    """The grade, fit, engagement and five strongest reasons a rep's mail shows."""
    reasons = p.contributions if isinstance(p, LeadScored) else p.reasons
    top = sorted(reasons, key=lambda c: -abs(c.points))[:5]
    return {
        "grade": p.grade,
        "fit": p.fit,
        "engagement": p.engagement,
        "reasons": [f"{c.reason or c.rule_id} ({c.points:+g})" for c in top],
    }


def learn(news: LeadNews | None, payload: EventPayload) -> LeadNews:
    """``news`` with one more event: a capture or profile update adds contact fields (later
    ones win; a capture's consent, when stated, replaces the one before), a score replaces
    the summary. Other events teach nothing here."""
    news = news or LeadNews()
    if isinstance(payload, LeadCaptured | LeadProfileUpdated):
        contact = {**(news.contact or {}), **payload.contact.model_dump(exclude_none=True)}
        consent = news.consent
        if isinstance(payload, LeadCaptured) and payload.consent is not None:
            consent = payload.consent.marketing_opt_in
        return LeadNews(contact=contact, consent=consent, scoring=news.scoring)
    if isinstance(payload, LeadScored | LeadQualified):
        return LeadNews(contact=news.contact, consent=news.consent, scoring=score_summary(payload))
    return news


# -- people and what they are told --------------------------------------------------------


@dataclass(frozen=True)
class LeadCard:
    """What a rep needs to call the lead: from intake's contact and scoring's reasons."""

    lead_id: str
    name: str | None = None
    company: str | None = None
    title: str | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    grade: str | None = None
    reasons: tuple[str, ...] = ()

    @staticmethod
    def from_row(
        lead_id: str, contact: Mapping[str, Any] | None, scoring: Mapping[str, Any] | None
    ) -> LeadCard:
        c = contact or {}
        s = scoring or {}
        name = " ".join(p for p in (c.get("first_name"), c.get("last_name")) if p) or None
        return LeadCard(
            lead_id=lead_id,
            name=name,
            company=c.get("company"),
            title=c.get("title"),
            email=c.get("email"),
            phone=c.get("phone"),
            country=c.get("country"),
            grade=s.get("grade"),
            reasons=tuple(s.get("reasons") or ()),
        )


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    html: str | None = None


def delivery_for(preference: Preference | None) -> Delivery:
    """Immediate unless the person said otherwise: a new lead is worth an interruption."""
    if preference == "off":
        return "drop"
    if preference == "daily_digest":
        return "digest"
    return "send"


def lead_link(console_url: str, lead_id: str) -> str:
    return f"{console_url.rstrip('/')}/leads/{lead_id}"


def _card_lines(card: LeadCard, console_url: str) -> list[str]:
    who = card.name or "(name not captured)"
    lines = [
        f"Name:     {who}",
        f"Company:  {card.company or '-'}",
        f"Title:    {card.title or '-'}",
        f"Phone:    {card.phone or '-'}",
        f"E-mail:   {card.email or '-'}",
        f"Country:  {card.country or '-'}",
        f"Grade:    {card.grade or '-'}",
    ]
    if card.reasons:
        lines += ["", "Why it scored:"] + [f"  - {r}" for r in card.reasons]
    lines += ["", f"Open the lead: {lead_link(console_url, card.lead_id)}"]
    return lines


def assignment_mail(
    to: str,
    card: LeadCard,
    *,
    console_url: str,
    reassigned: bool = False,
    rep_name: str | None = None,
    reason: str = "",
) -> Mail:
    """The e-mail that starts the five-minute clock: who to call, why, and where."""
    label = card.name or card.company or card.lead_id
    subject = f"Lead reassigned to you: {label}" if reassigned else f"New lead for you: {label}"
    if card.company and card.name:
        subject += f" ({card.company})"
    greeting = f"Hello {rep_name}," if rep_name else "Hello,"
    intro = (
        "A lead was reassigned to you. Please contact them now."
        if reassigned
        else "A new lead was assigned to you. Leads contacted within five minutes qualify "
        "far more often: please call now."
    )
    lines = [greeting, "", intro, "", *_card_lines(card, console_url)]
    if reason:
        lines += ["", f"Routing: {reason}"]
    return Mail(to=to, subject=subject, text="\n".join(lines) + "\n")


SlaKind = Literal["sla_warning", "sla_breach", "escalation"]


def sla_recipients(
    kind: SlaKind,
    *,
    owner_email: str | None,
    manager_email: str | None,
    marketing_ops_email: str | None,
    notify: Sequence[str] = (),
) -> list[str]:
    """Warnings go to the owner (there is still time), breaches to the manager (there is
    not); an escalation to whoever its policy step names."""
    if kind == "sla_warning":
        wanted = ["owner"]
    elif kind == "sla_breach":
        wanted = ["manager"]
    else:
        wanted = list(notify) or ["manager"]
    by_role = {"owner": owner_email, "manager": manager_email, "marketing_ops": marketing_ops_email}
    out: list[str] = []
    for role in wanted:
        address = by_role.get(role)
        if address and address not in out:
            out.append(address)
    return out


def sla_mail(
    to: str,
    kind: SlaKind,
    card: LeadCard,
    *,
    console_url: str,
    policy_id: str,
    due_at: str | None,
    rep_id: str | None,
    detail: str = "",
) -> Mail:
    label = card.name or card.company or card.lead_id
    title = {
        "sla_warning": f"SLA warning: {label} is due soon",
        "sla_breach": f"SLA breached: {label} was not handled in time",
        "escalation": f"SLA escalation: {label}",
    }[kind]
    lines = [
        title + ".",
        "",
        f"Policy:   {policy_id}",
        f"Due:      {due_at or '-'}",
        f"Owner:    {rep_id or '(queue)'}",
    ]
    if detail:
        lines.append(f"Detail:   {detail}")
    lines += ["", *_card_lines(card, console_url)]
    return Mail(to=to, subject=title, text="\n".join(lines) + "\n")


def digest_mail(to: str, items: Sequence[Mapping[str, Any]], day: str) -> Mail:
    """One mail with everything held for a person who chose the daily digest."""
    lines = [f"Your Leadflow digest for {day}: {len(items)} notification(s).", ""]
    for item in items:
        lines.append(f"- {item['subject']}")
        if item.get("link"):
            lines.append(f"  {item['link']}")
    return Mail(
        to=to,
        subject=f"Leadflow digest: {len(items)} notification(s)",
        text="\n".join(lines) + "\n",
    )


def next_digest_at(now: datetime, hour: int) -> datetime:
    """The next ``hour``:00 (in ``now``'s zone) strictly after now."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def _slack_escape(value: str) -> str:
    """Slack's three control characters in text that came from a lead (its mrkdwn rules)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(subject: str, link: str | None, card: LeadCard | None = None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body: ``text`` (what Mattermost, Rocket.Chat and
    Slack's notifications show) plus Block Kit ``blocks`` with the lead's card, which Slack
    renders and the others ignore."""
    title = _slack_escape(subject)
    text = f"{title} <{link}|open>" if link else title
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*<{link}|{title}>*" if link else f"*{title}*"},
        }
    ]
    if card is not None:
        facts = [
            ("Company", card.company),
            ("Title", card.title),
            ("Phone", card.phone),
            ("Grade", card.grade),
        ]
        fields = [
            {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"}
            for name, value in facts
            if value
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        if card.reasons:
            why = ", ".join(_slack_escape(r) for r in card.reasons)
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Why: {why}"}]}
            )
    return {"text": text, "blocks": blocks}


# -- nurture --------------------------------------------------------------------------------

Withheld = Literal[
    "no_consent", "opted_out", "do_not_contact", "erased", "no_address", "throttled", "no_template"
]


def nurture_verdict(
    *,
    email: str | None,
    consent: bool | None,
    opted_out: bool,
    erased: bool,
    do_not_contact: bool = False,
    last_sent_at: datetime | None,
    now: datetime,
    min_gap: timedelta,
    has_template: bool,
) -> Withheld | None:
    """Why a due touch must not become an e-mail, or None when it may (order: the reasons
    that are the person's own choice first)."""
    if erased:
        return "erased"
    if do_not_contact:
        return "do_not_contact"
    if opted_out:
        return "opted_out"
    if consent is not True:
        return "no_consent"
    if not email:
        return "no_address"
    if not has_template:
        return "no_template"
    if last_sent_at is not None and now - last_sent_at < min_gap:
        return "throttled"
    return None


class _Fields(string.Formatter):
    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(str(key)) or ""


def render_template(template: str, fields: Mapping[str, Any]) -> str:
    """``{first_name}``-style placeholders from the lead's fields; unknown ones are empty."""
    try:
        return _Fields().vformat(template, (), dict(fields))
    except (ValueError, IndexError, AttributeError):
        return template


# -- webhooks -------------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"


def new_secret(random_bytes: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after ``whsec_``."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (Standard Webhooks)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per live secret (during a rotation both verify)."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


# The Standard Webhooks reference schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# then every 10 h until the endpoint has failed for the give-up period.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)


def retry_delay(failed_attempts: int) -> timedelta:
    """How long after the ``failed_attempts``-th failure the next attempt is made."""
    index = max(failed_attempts, 1) - 1
    return RETRY_SCHEDULE[min(index, len(RETRY_SCHEDULE) - 1)]


def gives_up(failing_since: datetime | None, now: datetime, give_up_after: timedelta) -> bool:
    return failing_since is not None and now - failing_since >= give_up_after


def is_success(status: int) -> bool:
    return 200 <= status < 300


def subscribed(filters: Sequence[str], event_type: str) -> bool:
    """An endpoint's ``events``: exact types, ``prefix.*`` wildcards, or ``*`` for all."""
    for f in filters:
        if f == "*" or f == event_type or (f.endswith(".*") and event_type.startswith(f[:-1])):
            return True
    return False


def refused_address(address: str) -> str | None:
    """Why an IP address is no place for a webhook (SSRF: the metadata service, the
    cluster's own services, localhost), or None when it is a public address."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "reserved"
    return None


def webhook_body(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return {"type": event_type, "timestamp": occurred_at.isoformat(), "data": dict(data)}
