"""A consumer batch is decided together: same outcome as one event at a time, fixed SQL cost.

Consumers are off (``run_consumers=False``); a batch is handed to the real handler inside one
real unit of work exactly as the kernel's runner does (``uow.causation`` set per event, one
flush before commit).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import LeadContacted, LeadReassigned
from leadflow.events.catalogue.scoring import LeadQualified, NurtureEnrolled, NurtureTouchDue
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.uow import handlers_by_type
from leadflow.sla_monitor.settings import SlaSettings
from leadflow.testing import StatementLog
from tests.integration.sla_monitor.helpers import (
    MONDAY_10,
    accepted,
    assigned,
    deliver,
    envelope,
    kit_of_app,
    sla_app,
    sla_events,
)

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def sla(
    settings_for: Callable[..., SlaSettings],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with sla_app(settings_for) as running:
        yield running


async def as_one_batch(app: FastAPI, events: Sequence[Envelope]) -> None:
    """What the consumer runner does with one ``getmany`` batch."""
    kit = kit_of_app(app)
    handlers = handlers_by_type(kit.handlers)
    async with kit.unit_of_work() as uow:
        for e in events:
            uow.causation = e
            await handlers[e.event_type](e, uow)


def qualified(lead: uuid.UUID, at: datetime) -> Envelope:
    payload = LeadQualified(
        fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1, lead=LeadSnapshot()
    )
    return envelope(payload, lead, at)


def lifecycle(kind: int, lead: uuid.UUID) -> list[Envelope]:
    """Per lead, a story touching starts, meets, stops, restarts and cross-topic disorder."""
    t = MONDAY_10
    if kind == 0:  # assignment consumed before its qualification; accepted; contacted
        return [
            assigned(lead, t + timedelta(minutes=5)),
            qualified(lead, t),
            accepted(lead, t + timedelta(hours=1)),
            envelope(LeadContacted(rep_id="rep-1"), lead, t + timedelta(hours=3)),
        ]
    if kind == 1:  # reassigned after the accept clock breached in business time; accepted
        reassigned = LeadReassigned(
            from_rep_id="rep-1",
            assignee_kind="rep",
            rep_id="rep-2",
            team_id="team-b",
            reason="sla_breach",
        )
        return [
            assigned(lead, t),
            envelope(reassigned, lead, t + timedelta(hours=5)),
            accepted(lead, t + timedelta(hours=6), rep="rep-2"),
        ]
    touch = NurtureTouchDue(
        track_id="t1", step=1, content_id="c", channel="email", due_at=t + timedelta(days=10)
    )
    return [  # nurture cadence: a touch meets the running clock and starts the next one
        envelope(NurtureEnrolled(track_id="t1"), lead, t),
        envelope(touch, lead, t + timedelta(days=10)),
    ]


def interleave(stories: Sequence[list[Envelope]]) -> list[Envelope]:
    """Round-robin across leads: each lead's own order kept, leads mixed as in a batch."""
    mixed = itertools.zip_longest(*stories)
    return [e for row in mixed for e in row if e is not None]


async def outcome(app: FastAPI, client: httpx.AsyncClient, lead: uuid.UUID) -> dict[str, Any]:
    """Everything observable about a lead's clocks, without the random sla ids."""
    kit = kit_of_app(app)
    events = await sla_events(kit, lead)
    published = [
        (
            e.event_type,
            e.occurred_at,
            {
                k: v
                for k, v in e.payload.model_dump(mode="json").items()
                if k not in ("sla_id", "schema_version")
            },
        )
        for e in events
    ]
    view = (await client.get(f"/v1/leads/{lead}/sla")).json()["slas"]
    rows = [{k: v for k, v in s.items() if k not in ("sla_id", "lead_id")} for s in view]
    async with kit.connect() as conn:
        timers = await conn.fetch(
            "SELECT kind, due_at FROM timers WHERE lead_id = :id ORDER BY due_at, kind", id=lead
        )
        facts = await conn.fetchrow(
            "SELECT grade, region, country, channel, rep_id, team_id, seen "
            "FROM sla_leads WHERE lead_id = :id",
            id=lead,
        )
    return {
        "events": published,
        "clocks": rows,
        "timers": [tuple(t) for t in timers],
        "facts": tuple(facts),
    }


async def test_a_batch_decides_its_events_in_order_exactly_as_one_at_a_time(sla: Any) -> None:
    app, client = sla
    alone = [lifecycle(k, new_id()) for k in range(3)]
    batched = [lifecycle(k, new_id()) for k in range(3)]
    await deliver(app, *[e for story in alone for e in story])
    await as_one_batch(app, interleave(batched))

    for a, b in zip(alone, batched, strict=True):
        expected = await outcome(app, client, a[0].lead_id)
        got = await outcome(app, client, b[0].lead_id)
        assert got == expected
        assert expected["events"], "the story produced SLA events"

    # The stories did what they say (so the comparison is not between two empty results).
    disorder = await outcome(app, client, batched[0][0].lead_id)
    statuses = {c["policy_id"]: c["status"] for c in disorder["clocks"]}
    assert statuses == {
        "mql-assigned-30m": "met",
        "accept-4bh": "met",
        "contact-1bd": "met",
        "sal-max-14d": "open",
    }
    assert [kind for kind, _ in disorder["timers"]] == ["sla.warn", "sla.breach"]
    reassign = await outcome(app, client, batched[1][0].lead_id)
    assert [(c["status"], c["rep_id"]) for c in reassign["clocks"]][:2] == [
        ("stopped", "rep-1"),
        ("met", "rep-2"),
    ]


async def test_each_sla_event_of_a_batch_names_the_event_that_caused_it(sla: Any) -> None:
    app, _ = sla
    lead_a, lead_b = new_id(), new_id()
    a1, b1 = assigned(lead_a, MONDAY_10), assigned(lead_b, MONDAY_10)
    a2 = accepted(lead_a, MONDAY_10 + timedelta(minutes=20))
    await as_one_batch(app, [a1, b1, a2])
    kit = kit_of_app(app)
    by_cause = {
        (e.event_type, e.causation_id)
        for e in (await sla_events(kit, lead_a)) + (await sla_events(kit, lead_b))
    }
    assert by_cause == {
        ("sla.started", a1.event_id),
        ("sla.started", b1.event_id),
        ("sla.met", a2.event_id),
        ("sla.started", a2.event_id),
    }
    met = [e for e in await sla_events(kit, lead_a) if e.event_type == "sla.met"]
    assert met[0].correlation_id == (a2.correlation_id or a2.event_id)


async def test_configuration_changed_by_any_writer_applies_to_the_next_batch(sla: Any) -> None:
    app, _ = sla
    kit = kit_of_app(app)
    before, after_calendar, after_policy = new_id(), new_id(), new_id()
    await as_one_batch(app, [assigned(before, MONDAY_10)])
    # Another replica (or an operator with psql) edits the tables directly: no API call here
    # can have invalidated this process's cache, only the revision the triggers bump.
    async with kit.unit_of_work() as uow:
        await uow.tx.execute(
            "UPDATE sla_calendars SET body = jsonb_set(body, '{timezone}', "
            "'\"America/New_York\"') WHERE calendar_id = 'default'"
        )
    await as_one_batch(app, [assigned(after_calendar, MONDAY_10)])
    async with kit.unit_of_work() as uow:
        await uow.tx.execute(
            "INSERT INTO sla_policy_sets (version, doc) "
            "SELECT 7, jsonb_build_object('policies', jsonb_agg(p)) FROM "
            "(SELECT jsonb_set(jsonb_set(p, '{duration,amount}', '1'), '{warn_at_pct}', "
            "'null') AS p FROM jsonb_array_elements(CAST(:defaults AS jsonb)) AS p) AS t",
            defaults=_default_policies_json(),
        )
    await as_one_batch(app, [assigned(after_policy, MONDAY_10)])

    def started(events: list[Envelope]) -> Any:
        (s,) = [e for e in events if e.event_type == "sla.started"]
        return s.payload

    old = started(await sla_events(kit, before))
    assert old.due_at == MONDAY_10 + timedelta(hours=4)  # 09-17 UTC
    new_cal = started(await sla_events(kit, after_calendar))
    # 09-17 New York (EDT from 8 March) = 13:00-21:00 UTC: opens 13:00, +4h = 17:00 UTC
    assert new_cal.due_at == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    new_policy = started(await sla_events(kit, after_policy))
    assert new_policy.policy_version == 7
    assert new_policy.due_at == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # 1 business hour
    assert new_policy.warn_at is None


async def test_a_batch_costs_the_same_few_statements_whatever_its_size(sla: Any) -> None:
    app, _ = sla
    kit = kit_of_app(app)
    # Warm the configuration cache and the connections' prepared statements (asyncpg
    # introspects a statement's types the first time a connection sees it).
    for _ in range(3):
        await as_one_batch(app, lifecycle(0, new_id()))
    with StatementLog(kit.db) as log:
        await as_one_batch(app, lifecycle(0, new_id()))
        small = list(log.statements)
        log.statements.clear()
        stories = [lifecycle(k % 3, new_id()) for k in range(30)]
        big = interleave(stories)
        await as_one_batch(app, big)
        large = list(log.statements)
    assert len(big) >= 90
    # BEGIN, sla-monitor's three (lock leads + config revision, running clocks, one write of
    # facts and clocks), the kernel's timers (cancel, schedule) and append (stream versions;
    # event log, outbox and notify in one), COMMIT.
    assert len(large) == len(small), large
    assert len(large) <= 9, large


def _default_policies_json() -> str:
    import orjson

    from leadflow.sla_monitor.domain import default_policies

    return orjson.dumps([p.model_dump(mode="json") for p in default_policies()]).decode()
