"""notify's pure decisions: signatures, retry schedule, who is told, nurture gates, links."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.notify import domain, links
from leadflow.notify.mailer import SmtpTarget
from leadflow.notify.settings import NotifySettings

NOW = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def test_signature_matches_the_standard_webhooks_published_example() -> None:
    # The example of the Standard Webhooks specification (and its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = domain.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert domain.verify(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, f"v1,x {signature}"
    )
    assert not domain.verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, signature)


def test_retries_follow_the_spec_schedule_then_every_ten_hours() -> None:
    delays = [domain.retry_delay(n) for n in range(1, 9)]
    assert delays[:6] == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
    ]
    assert delays[6:] == [timedelta(hours=10)] * 2
    assert not domain.gives_up(NOW, NOW + timedelta(hours=71), timedelta(hours=72))
    assert domain.gives_up(NOW, NOW + timedelta(hours=72), timedelta(hours=72))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.8", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "private"),
        ("93.184.216.34", None),
    ],
)
def test_private_and_loopback_addresses_are_refused(address: str, reason: str | None) -> None:
    assert domain.refused_address(address) == reason


def test_event_filters() -> None:
    assert domain.subscribed(["lead.*"], "lead.assigned")
    assert not domain.subscribed(["lead.*"], "leads.merged")
    assert domain.subscribed(["*"], "sla.breached")
    assert domain.subscribed(["deal.won"], "deal.won") and not domain.subscribed(
        ["deal.won"], "deal.lost"
    )


def test_warnings_go_to_the_owner_breaches_to_the_manager_escalations_as_named() -> None:
    people = {"owner_email": "rep@x.io", "manager_email": "boss@x.io", "marketing_ops_email": None}
    assert domain.sla_recipients("sla_warning", **people) == ["rep@x.io"]
    assert domain.sla_recipients("sla_breach", **people) == ["boss@x.io"]
    assert domain.sla_recipients(
        "escalation", **people, notify=["owner", "manager", "marketing_ops"]
    ) == [
        "rep@x.io",
        "boss@x.io",
    ]
    assert (
        domain.sla_recipients(
            "sla_breach", owner_email="rep@x.io", manager_email=None, marketing_ops_email=None
        )
        == []
    )


def test_preferences() -> None:
    assert domain.delivery_for(None) == "send"
    assert domain.delivery_for("immediate") == "send"
    assert domain.delivery_for("daily_digest") == "digest"
    assert domain.delivery_for("off") == "drop"
    assert domain.next_digest_at(NOW, 8) == datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    assert domain.next_digest_at(NOW, 11) == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)


def _verdict(**overrides: object) -> str | None:
    values: dict[str, object] = {
        "email": "a@b.io",
        "consent": True,
        "opted_out": False,
        "erased": False,
        "last_sent_at": None,
        "now": NOW,
        "min_gap": timedelta(hours=24),
        "has_template": True,
    }
    values.update(overrides)
    return domain.nurture_verdict(**values)  # type: ignore[arg-type]


def test_nurture_needs_consent_and_respects_opt_out_do_not_contact_erasure_and_throttle() -> None:
    assert _verdict() is None
    assert _verdict(consent=None) == "no_consent"
    assert _verdict(consent=False, opted_out=True) == "opted_out"
    assert _verdict(erased=True, consent=True) == "erased"
    assert _verdict(do_not_contact=True) == "do_not_contact"
    assert _verdict(email=None) == "no_address"
    assert _verdict(has_template=False) == "no_template"
    assert _verdict(last_sent_at=NOW - timedelta(hours=23)) == "throttled"
    assert _verdict(last_sent_at=NOW - timedelta(hours=24)) is None


def test_templates_fill_the_leads_fields_and_leave_unknown_ones_empty() -> None:
    assert (
        domain.render_template(
            "Hi {first_name} at {company}{nope}", {"first_name": "Ada", "company": "AE"}
        )
        == "Hi Ada at AE"
    )
    assert domain.render_template("Broken {", {}) == "Broken {"


def test_assignment_mail_says_who_why_and_where() -> None:
    card = domain.LeadCard.from_row(
        "L1",
        {"first_name": "Ada", "last_name": "Lovelace", "company": "AE", "phone": "+44 1"},
        {"grade": "A", "reasons": ["demo (+30)"]},
    )
    mail = domain.assignment_mail("r@x.io", card, console_url="https://c.io/", rep_name="Rep")
    assert mail.subject == "New lead for you: Ada Lovelace (AE)"
    assert "Phone:    +44 1" in mail.text and "  - demo (+30)" in mail.text
    assert "Open the lead: https://c.io/leads/L1" in mail.text


def test_link_tokens_are_signed() -> None:
    settings = NotifySettings(admin_token="secret-a")
    lead = uuid.uuid4()
    token = links.make_token(settings, lead, "nm_1")
    assert links.read_token(settings, token) == (lead, "nm_1")
    assert links.read_token(NotifySettings(admin_token="secret-b"), token) is None
    assert links.read_token(settings, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert links.read_token(settings, "garbage") is None


def test_smtp_urls() -> None:
    assert SmtpTarget.parse("smtp://127.0.0.1:1025") == SmtpTarget("127.0.0.1", 1025, False)
    assert SmtpTarget.parse("smtps://u%40x:p@relay.io") == SmtpTarget(
        "relay.io", 465, True, "u@x", "p"
    )
    with pytest.raises(ValueError):
        SmtpTarget.parse("http://relay.io")
