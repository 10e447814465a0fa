"""The batched decision path keeps routing's guarantees: a whole batch of ``LeadQualified``
decided in one transaction, two deciders at once (two instances, one database), caps never
exceeded, exactly one assignment per lead, weighted round-robin shares exact, and the
maintained open-lead counters equal to what the lead rows say."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.scoring import LeadDisqualified, LeadQualified, NurtureEnrolled
from leadflow.events.catalogue.sla import SlaBreached, SlaMet, SlaStarted
from leadflow.events.db import plain_url, upgrade_async
from leadflow.events.envelope import Envelope, EventPayload, new_id
from leadflow.events.kit import ServiceKit
from leadflow.routing import store
from leadflow.routing.app import MIGRATIONS, create_app
from leadflow.routing.handlers import RoutingHandlers
from leadflow.routing.settings import RoutingSettings
from leadflow.routing.store import ConfigCache
from leadflow.testing import app_client, consume_topic, produce_events, wait_until

pytestmark = [pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}
US = LeadSnapshot(country="US", industry="Software", company_size=300, grade="A")
DE = LeadSnapshot(country="DE", industry="Retail", company_size=50, grade="B")
# na: uncapped pool, weights 3:2:1. eu: two capped reps, overflow to a queue.
NA = {"a": 3, "b": 2, "c": 1}
CAPS = {"x": {"max_open": 7}, "y": {"max_new_per_day": 5}}


def qualified(lead_id: uuid.UUID, lead: LeadSnapshot) -> Envelope:
    payload = LeadQualified(
        fit=80, engagement=60, grade=lead.grade or "A", matrix_cell="A1", model_version=1, lead=lead
    )
    return Envelope.new(payload, lead_id=lead_id)


def _kit(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client._transport.app.state.kit  # type: ignore[attr-defined]
    return kit


async def configure(client: httpx.AsyncClient) -> None:
    for rep_id, weight in NA.items():
        body = {"team_id": "na", "weight": weight}
        assert (await client.put(f"/v1/routing/reps/{rep_id}", json=body, headers=AUTH)).is_success
    for rep_id, caps in CAPS.items():
        body = {"team_id": "eu", **caps}
        assert (await client.put(f"/v1/routing/reps/{rep_id}", json=body, headers=AUTH)).is_success
    docs: list[tuple[str, dict[str, object]]] = [
        ("/v1/routing/teams/na", {"members": list(NA)}),
        ("/v1/routing/teams/eu", {"members": list(CAPS), "queue_id": "eu-overflow"}),
        ("/v1/routing/queues/unassigned", {}),
        ("/v1/routing/queues/eu-overflow", {"team_id": "eu"}),
    ]
    for path, doc in docs:
        assert (await client.put(path, json=doc, headers=AUTH)).is_success
    r = await client.post(
        "/v1/routing/rules",
        json={
            "rules": [
                {
                    "id": "eu",
                    "when": {"country": ["DE"]},
                    "target": {"kind": "team", "team_id": "eu"},
                },
                {
                    "id": "na",
                    "when": {"country": ["US"]},
                    "target": {"kind": "team", "team_id": "na"},
                },
            ]
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text


async def rows(client: httpx.AsyncClient, sql: str) -> list[Any]:
    async with _kit(client).connect() as tx:
        return [tuple(r) for r in await tx.fetch(sql)]


async def deliver(client: httpx.AsyncClient, events: list[Envelope]) -> None:
    """Hand ``events`` to the routing handlers in one unit of work: one consumer batch."""
    handlers = RoutingHandlers(ConfigCache()).handlers()
    async with _kit(client).unit_of_work() as uow:
        for event in events:
            uow.causation = event
            await handlers[type(event.payload)](event, uow)


async def check_invariants(client: httpx.AsyncClient, us: int, de: int) -> None:
    """Every lead one decision; na shares exact; eu caps held, the rest queued."""
    assert (
        await rows(client, "SELECT lead_id FROM assignments GROUP BY lead_id HAVING count(*) > 1")
        == []
    )
    assert len(await rows(client, "SELECT 1 FROM assignments")) == us + de
    owners = Counter(
        r[0] or f"queue:{r[1]}"
        for r in await rows(client, "SELECT rep_id, queue_id FROM leads WHERE stage = 'mql'")
    )
    unit = us // sum(NA.values())
    assert owners == {
        **{rep: w * unit for rep, w in NA.items()},
        "x": 7,
        "y": 5,
        "queue:eu-overflow": de - 12,
    }
    events = await rows(
        client,
        "SELECT lead_id, count(*) FROM event_log WHERE event_type = 'lead.assigned' GROUP BY 1",
    )
    assert len(events) == us + de and all(n == 1 for _, n in events)
    await check_counters(client)


async def check_counters(client: httpx.AsyncClient) -> None:
    """The maintained open-lead counters (folded + pending deltas) equal a GROUP BY."""
    truth = dict(
        await rows(
            client,
            "SELECT rep_id, count(*) FROM leads WHERE rep_id IS NOT NULL AND stage = ANY("
            "'{mql,sal,sql,opportunity,on_hold}') GROUP BY rep_id",
        )
    )
    kept = await rows(
        client,
        "SELECT rep_id, sum(n) FROM (SELECT rep_id, open AS n FROM rep_load UNION ALL "
        "SELECT rep_id, delta FROM rep_load_delta) t GROUP BY rep_id",
    )
    assert {k: int(v) for k, v in kept if v} == truth


async def test_two_deciders_with_whole_batches_in_one_transaction_keep_every_guarantee(
    settings_for: Callable[..., Any], isolation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handler sets (two instances' caches) each decide a 100-lead batch in one
    transaction, at the same time, on one database."""
    # Make the race real: a decider that has read the state waits (bounded) for the other
    # to read it too. With the decision lock the other cannot until the first committed,
    # so the wait runs out and nothing changes; without it both would decide on the same
    # credits and counts, and the shares and caps below would break.
    real_load = store.load_state
    loaded: list[bool] = []
    both_loaded = asyncio.Event()

    async def load_then_wait_for_the_other(*args: Any, **kwargs: Any) -> Any:
        state = await real_load(*args, **kwargs)
        loaded.append(True)
        if len(loaded) >= 2:
            both_loaded.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both_loaded.wait(), 1.0)
        return state

    monkeypatch.setattr(store, "load_state", load_then_wait_for_the_other)
    app = create_app(settings_for(RoutingSettings, run_consumers=False))
    async with app_client(app) as client:
        await configure(client)
        kit = _kit(client)
        us = [qualified(new_id(), US) for _ in range(120)]
        de = [qualified(new_id(), DE) for _ in range(80)]
        # interleaved, and one lead qualified twice inside the same batch
        batches = [us[:60] + de[:40] + [qualified(us[0].lead_id, US)], us[60:] + de[40:]]

        async def decide_batch(events: list[Envelope]) -> None:
            handlers = RoutingHandlers(ConfigCache())
            async with kit.unit_of_work() as uow:
                for event in events:
                    uow.causation = event
                    await handlers.on_lead_qualified(event, uow)

        await asyncio.gather(*(decide_batch(b) for b in batches))
        await check_invariants(client, us=120, de=80)
        # each LeadAssigned names the qualification that caused it
        caused = await rows(
            client,
            "SELECT lead_id, metadata->>'causation_id' FROM event_log "
            "WHERE event_type = 'lead.assigned'",
        )
        by_lead = {e.lead_id: str(e.event_id) for e in [*us, *de]}
        assert all(by_lead[lead] == cause for lead, cause in caused)

        # leads leaving sales release their rep's capacity: x takes exactly as many again
        freed = await rows(client, "SELECT lead_id FROM leads WHERE rep_id = 'x' LIMIT 3")
        handlers = RoutingHandlers(ConfigCache())
        more = [qualified(new_id(), DE) for _ in range(5)]
        async with kit.unit_of_work() as uow:
            for (lead_id,) in freed:
                event = Envelope.new(LeadDisqualified(reason="competitor"), lead_id=lead_id)
                uow.causation = event
                await handlers.on_left_sales(event, uow)
            for event in more:
                uow.causation = event
                await handlers.on_lead_qualified(event, uow)
        x_open = await rows(
            client, "SELECT count(*) FROM leads WHERE rep_id = 'x' AND stage = 'mql'"
        )
        assert x_open == [(7,)]
        await check_counters(client)


@pytest.mark.kafka
async def test_two_instances_batching_one_burst_keep_caps_shares_and_one_assignment(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    settings = settings_for(RoutingSettings, consumer_batch_size=500)
    async with app_client(create_app(settings)) as one, app_client(create_app(settings)) as two:
        await configure(one)
        await wait_until(
            lambda: all(
                k.consumer is not None
                and k.consumer._consumer is not None
                and k.consumer._consumer.assignment()
                for k in (_kit(one), _kit(two))
            ),
            timeout=60,
            message="both instances own partitions of the consumer group",
        )
        us = [qualified(new_id(), US) for _ in range(120)]
        de = [qualified(new_id(), DE) for _ in range(80)]
        burst = [e for pair in zip(us[:80], de, strict=True) for e in pair] + us[80:]
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [*burst, *burst]
        )

        async def settled() -> bool:
            done = await rows(one, "SELECT count(DISTINCT event_id) FROM inbox")
            pending = await rows(one, "SELECT count(*) FROM outbox")
            return done == [(200,)] and pending == [(0,)]

        await wait_until(settled, timeout=90, message="all 200 leads decided and published")
        await check_invariants(one, us=120, de=80)
        published = await consume_topic(
            isolation.kafka_bootstrap,
            isolation.topic("routing"),
            until=lambda evs: sum(e.event_type == "lead.assigned" for e in evs) >= 200,
        )
        assert len({e.lead_id for e in published if e.event_type == "lead.assigned"}) == 200
        both = [k.consumer.processed for k in (_kit(one), _kit(two))]  # type: ignore[union-attr]
        assert all(n > 0 for n in both), f"each instance handled records: {both}"


async def test_upgrading_to_maintained_counters_counts_leads_already_open(isolation: Any) -> None:
    """Migration 0002 back-fills ``rep_load`` from the leads open before it, and from then
    on the trigger follows every change."""
    schema = isolation.schema
    await upgrade_async(isolation.database_url, schema, MIGRATIONS, revision="0001")
    conn = await asyncpg.connect(plain_url(isolation.database_url))
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.executemany(
            "INSERT INTO leads (lead_id, stage, rep_id) VALUES ($1, $2, $3)",
            [
                (new_id(), "mql", "a"),
                (new_id(), "sal", "a"),
                (new_id(), "won", "a"),
                (new_id(), "opportunity", "b"),
                (new_id(), "mql", None),
            ],
        )
        await upgrade_async(isolation.database_url, schema, MIGRATIONS)
        assert dict(await conn.fetch("SELECT rep_id, open FROM rep_load")) == {"a": 2, "b": 1}
        await conn.execute("UPDATE leads SET stage = 'lost' WHERE rep_id = 'b'")
        await conn.execute("UPDATE leads SET rep_id = 'b' WHERE stage = 'sal'")
        deltas = await conn.fetch("SELECT rep_id, sum(delta) FROM rep_load_delta GROUP BY 1")
        assert {r[0]: int(r[1]) for r in deltas} == {"a": -1, "b": 0}
    finally:
        await conn.close()


async def test_a_batch_of_sla_events_writes_every_clock_as_one_by_one_delivery_would(
    settings_for: Callable[..., Any],
) -> None:
    """Clocks started, met and breached in one consumer batch end as sequential handling
    would leave them: a status after its start applies; one before a start of an unknown
    clock was a no-op (the clock starts open); one for a clock started earlier applies."""
    app = create_app(settings_for(RoutingSettings, run_consumers=False))
    due = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    lead = new_id()

    def started(sla_id: str, minutes: int) -> Envelope:
        payload = SlaStarted(
            sla_id=sla_id,
            policy_id="mql-accept",
            started_by_event="lead.assigned",
            started_at=due - timedelta(hours=1),
            due_at=due + timedelta(minutes=minutes),
            warn_at=None,
            rep_id="a",
        )
        return Envelope.new(payload, lead_id=lead)

    def status(sla_id: str, kind: type[SlaMet] | type[SlaBreached]) -> Envelope:
        if kind is SlaMet:
            payload: EventPayload = SlaMet(
                sla_id=sla_id,
                policy_id="mql-accept",
                met_by_event="lead.accepted",
                elapsed_seconds=60.0,
                elapsed_business_seconds=60.0,
                on_time=True,
            )
        else:
            payload = SlaBreached(sla_id=sla_id, policy_id="mql-accept", due_at=due)
        return Envelope.new(payload, lead_id=lead)

    async with app_client(app) as client:
        await deliver(client, [started("earlier", 0)])
        batch = [
            status("earlier", SlaBreached),  # a clock from an earlier batch
            status("unknown", SlaMet),  # no such clock yet: nothing to update
            started("unknown", 5),
            *[started(f"s{i}", i) for i in range(30)],
            *[status(f"s{i}", SlaMet) for i in range(10)],
            *[status(f"s{i}", SlaBreached) for i in range(10, 15)],
            started("s0", 99),  # restarted (re-timed) after it was met: stays met
        ]
        await deliver(client, batch)
        clocks = {
            r[0]: (r[1], r[2])
            for r in await rows(client, "SELECT sla_id, status, due_at FROM sla_clocks")
        }
        expected = {
            "earlier": ("breached", due),
            "unknown": ("open", due + timedelta(minutes=5)),
            **{f"s{i}": ("met", due + timedelta(minutes=i)) for i in range(1, 10)},
            **{f"s{i}": ("breached", due + timedelta(minutes=i)) for i in range(10, 15)},
            **{f"s{i}": ("open", due + timedelta(minutes=i)) for i in range(15, 30)},
            "s0": ("met", due + timedelta(minutes=99)),
        }
        assert clocks == expected


async def test_a_batch_mixing_qualified_and_leads_leaving_sales_decides_as_sequential_handling(
    settings_for: Callable[..., Any],
) -> None:
    """Leaving sales is decided in the same batch as the assignments, in delivery order: a
    lead disqualified mid-batch frees its capped rep for the next lead of the same batch."""
    app = create_app(settings_for(RoutingSettings, run_consumers=False))
    async with app_client(app) as client:
        await configure(client)
        await deliver(client, [qualified(new_id(), DE) for _ in range(12)])  # x: 7 open, y: 5 today
        (freed,) = (await rows(client, "SELECT lead_id FROM leads WHERE rep_id = 'x' LIMIT 1"))[0]
        first, second, unseen = new_id(), new_id(), new_id()
        enrolled = NurtureEnrolled(track_id="t")
        await deliver(
            client,
            [
                Envelope.new(LeadDisqualified(reason="competitor"), lead_id=freed),
                qualified(first, DE),  # takes the place the disqualification freed
                Envelope.new(enrolled, lead_id=unseen),  # a lead routing never saw
                qualified(second, DE),  # no capacity left: the overflow queue
            ],
        )
        leads = {
            r[0]: (r[1], r[2], r[3])
            for r in await rows(client, "SELECT lead_id, stage, rep_id, queue_id FROM leads")
        }
        assert leads[freed][0] == "disqualified"
        assert leads[first] == ("mql", "x", None)
        assert leads[second] == ("mql", None, "eu-overflow")
        assert leads[unseen] == ("nurture", None, None)
        await check_counters(client)
