"""A scripted lead history with hand-computed expectations (integration + browser tests).

T0 = Monday 2025-03-03 09:00 UTC; the clock reads NOW = T0 + 29 days.

| lead | source (channel / campaign) | what happens |
|---|---|---|
| L1 | web_form / spring | webinar touch, MQL, r1 accepts, SQL, opp 1000, won 1200; |
|    |                   | SLA p1 met on time |
| L2 | web_form / spring | MQL, r1 rejects (bad_fit) -> nurture; SLA p1 breached |
| L3 | badge_scan / expo (event expo25) | MQL, r2 accepts, SQL, r2 recycles (timing); |
|    |                   | SLA p1 breached then met late |
| L4 | badge_scan / expo | disqualified (student), then erased |
| L5 | web_form / spring | nothing more: an inquiry stuck for 27 days |
| L6 | web_form / spring | MQL, r2 accepts, SQL, inquiry at expo, opp 3000, lost (price) |
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from leadflow.events.catalogue.common import SourceInfo
from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    Contact,
    InquiryReceived,
    LeadCaptured,
    LeadErased,
)
from leadflow.events.catalogue.routing import (
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadRecycled,
    LeadRejected,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadQualified, NurtureEnrolled
from leadflow.events.catalogue.sla import SlaBreached, SlaMet, SlaStarted
from leadflow.events.db import plain_url
from leadflow.events.envelope import Envelope, EventPayload, topic_for
from leadflow.testing import produce_events, wait_until

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=29)
LEADS = {name: uuid.UUID(int=i + 1) for i, name in enumerate(["L1", "L2", "L3", "L4", "L5", "L6"])}
EMAIL = {name: f"{name.lower()}@example.com" for name in LEADS}


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _captured(name: str, channel: str, campaign: str, event_id: str | None = None) -> LeadCaptured:
    return LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="badge_scan" if channel == "badge_scan" else "web_form",
        contact=Contact(email=EMAIL[name], first_name=name),
        source=SourceInfo(channel=channel, campaign=campaign, event_id=event_id),
    )


def _mql() -> LeadQualified:
    return LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1)


def _assigned(rep: str, team: str) -> LeadAssigned:
    return LeadAssigned(assignee_kind="rep", rep_id=rep, team_id=team, method="round_robin")


def _sla_started(rep: str, team: str, at: float) -> SlaStarted:
    return SlaStarted(
        sla_id=f"s-{rep}-{at}",
        policy_id="p1",
        started_by_event="lead.assigned",
        rep_id=rep,
        team_id=team,
        started_at=h(at),
        due_at=h(at + 4),
    )


def history() -> list[tuple[str, float, EventPayload]]:
    """(lead, hours after T0, payload) in the order they are produced."""
    return [
        ("L1", 0, _captured("L1", "web_form", "spring")),
        (
            "L1",
            12,
            ActivityRecorded(
                activity_id="a1",
                activity_type="webinar",
                campaign="webinar",
                properties={"channel": "webinar"},
                channel="webinar",
            ),
        ),
        ("L1", 24, _mql()),
        ("L1", 25, _assigned("r1", "t1")),
        ("L1", 25, _sla_started("r1", "t1", 25)),
        ("L1", 26, LeadAccepted(rep_id="r1")),
        (
            "L1",
            26,
            SlaMet(
                sla_id="s-r1-25",
                policy_id="p1",
                met_by_event="lead.accepted",
                elapsed_seconds=3600,
                elapsed_business_seconds=3600,
                on_time=True,
                rep_id="r1",
                team_id="t1",
            ),
        ),
        ("L1", 72, LeadSalesQualified(rep_id="r1")),
        (
            "L1",
            120,
            OpportunityOpened(
                opportunity_id="o1", amount=Decimal("1000"), currency="USD", rep_id="r1"
            ),
        ),
        ("L1", 240, DealWon(opportunity_id="o1", amount=Decimal("1200"), rep_id="r1")),
        ("L2", 24, _captured("L2", "web_form", "spring")),
        ("L2", 48, _mql()),
        ("L2", 48, _assigned("r1", "t1")),
        ("L2", 48, _sla_started("r1", "t1", 48)),
        (
            "L2",
            52,
            SlaBreached(sla_id="s-r1-48", policy_id="p1", due_at=h(52), rep_id="r1", team_id="t1"),
        ),
        ("L2", 72, LeadRejected(rep_id="r1", reason_code="bad_fit")),
        ("L2", 72, NurtureEnrolled(track_id="t-rejected", reason="rejected")),
        ("L3", 168, _captured("L3", "badge_scan", "expo", "expo25")),
        ("L3", 192, _mql()),
        ("L3", 192, _assigned("r2", "t2")),
        ("L3", 192, _sla_started("r2", "t2", 192)),
        ("L3", 196, SlaBreached(sla_id="s-r2-192", policy_id="p1", due_at=h(196))),
        ("L3", 196, LeadAccepted(rep_id="r2")),
        (
            "L3",
            196,
            SlaMet(
                sla_id="s-r2-192",
                policy_id="p1",
                met_by_event="lead.accepted",
                elapsed_seconds=7200,
                elapsed_business_seconds=7200,
                on_time=False,
            ),
        ),
        ("L3", 216, LeadSalesQualified(rep_id="r2")),
        ("L3", 288, LeadRecycled(rep_id="r2", reason_code="timing")),
        ("L4", 168, _captured("L4", "badge_scan", "expo")),
        ("L4", 169, LeadDisqualified(reason="student")),
        ("L4", 300, LeadErased(reason="gdpr request")),
        ("L5", 48, _captured("L5", "web_form", "spring")),
        ("L6", 72, _captured("L6", "web_form", "spring")),
        ("L6", 120, _mql()),
        ("L6", 120, _assigned("r2", "t2")),
        ("L6", 121, LeadAccepted(rep_id="r2")),
        ("L6", 144, LeadSalesQualified(rep_id="r2")),
        (
            "L6",
            168,
            InquiryReceived(
                inquiry_id=uuid.uuid4(),
                capture_method="badge_scan",
                source=SourceInfo(channel="badge_scan", campaign="expo"),
            ),
        ),
        (
            "L6",
            192,
            OpportunityOpened(
                opportunity_id="o6", amount=Decimal("3000"), currency="USD", rep_id="r2"
            ),
        ),
        ("L6", 480, DealLost(opportunity_id="o6", reason_code="price", rep_id="r2")),
    ]


def envelopes() -> list[Envelope]:
    return [
        Envelope.new(p, lead_id=LEADS[lead], occurred_at=h(hours)) for lead, hours, p in history()
    ]


# -- expectations (computed by hand; see the module docstring) ----------------------------

WATERFALL = {"inquiry": 6, "mql": 4, "sal": 3, "sql": 3, "opportunity": 2, "won": 1}
CONVERSION_TO_NEXT = {
    "inquiry": 0.6667,
    "mql": 0.75,
    "sal": 1.0,
    "sql": 0.6667,
    "opportunity": 0.5,
    "won": None,
}
WEEKLY = {
    "2025-03-03": {"inquiry": 4, "mql": 3, "sal": 2, "sql": 2, "opportunity": 2, "won": 1},
    "2025-03-10": {"inquiry": 2, "mql": 1, "sal": 1, "sql": 1, "opportunity": 0, "won": 0},
}
# stays in hours -> median / p90 in days (linear interpolation)
VELOCITY_DAYS = {
    "inquiry": (1.0, 1.6),  # [1, 24, 24, 24, 48] h
    "mql": (0.125, 0.75),  # [1, 2, 4, 24] h
    "sal": (0.9583, 1.725),  # [20, 23, 46] h
    "sql": (2.0, 2.8),  # [48, 48, 72] h
    "opportunity": (8.5, 11.3),  # [120, 288] h
}
OPEN_AGE_DAYS = (27.0, 27.8)  # L3 22 d, L5 27 d, L2 28 d


# -- loading it through the real broker -----------------------------------------------------


async def produce(iso: Any, events: list[Envelope]) -> None:
    by_topic: dict[str, list[Envelope]] = {}
    for e in events:
        by_topic.setdefault(topic_for(e.producer, iso.topic_prefix), []).append(e)
    for topic, batch in by_topic.items():
        await produce_events(iso.kafka_bootstrap, topic, batch)


async def log_count(iso: Any) -> int:
    """Events in the analytics log of the test's analytics schema."""
    from leadflow.analytics.settings import AnalyticsSettings

    schema = iso.schema_for(AnalyticsSettings)
    conn = await asyncpg.connect(plain_url(iso.database_url))
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".lead_event_log'))
    finally:
        await conn.close()


async def caught_up(client: httpx.AsyncClient) -> bool:
    # /v1/projections needs operations (the test admin token), whatever the client carries.
    admin = {"Authorization": "Bearer test-admin-token"}
    body = (await client.get("/v1/projections", headers=admin)).json()
    return bool(body["head"] > 0 and all(p["lag"] == 0 for p in body["projections"]))


async def load(iso: Any, scripted: list[Envelope]) -> None:
    """Produce the history to the topics and wait until analytics logged all of it.

    Consecutive events of one producer go together; before switching topic we wait until
    they are logged, so the log order is the scripted order (across topics Kafka gives no
    order, and a lead's stage stays depend on it).
    """
    runs: list[list[Envelope]] = []
    for e in scripted:
        if runs and runs[-1][0].producer == e.producer:
            runs[-1].append(e)
        else:
            runs.append([e])
    done = 0
    for run in runs:
        await produce(iso, run)
        done += len(run)

        async def logged(n: int = done) -> bool:
            return await log_count(iso) == n

        await wait_until(logged, timeout=60, message=f"{done} events logged")
