"""Ingest: every consumed event is appended once to ``lead_event_log``, a consumer batch
with one statement (written at the unit of work's flush, before the commit), in the order
its events were recorded (``causal_order``).

Personal fields (``EventPayload.personal_fields``) are split off into ``lead_personal``,
which ``lead.erased`` deletes, so the log itself stays append-only and never holds personal
data. Dedup is twofold: the kernel's inbox, and ``ON CONFLICT (event_id) DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events import Handler, UnitOfWork
from leadflow.events.db import DriverSql
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.registry import registry

# One statement for a whole consumer batch; positions follow the batch's order. Positions
# must become visible in order, or a projection that has read past a position still being
# committed would skip it: writers of the log take turns (to commit), the lock taken by the
# same statement before any position is drawn (its one row drives the join).
_INSERT_BATCH = DriverSql(
    """
    WITH writers AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext('lead_event_log')))
    INSERT INTO lead_event_log (event_id, lead_id, producer, event_type, schema_version,
                                stream_version, occurred_at, recorded_at, payload, metadata)
    SELECT e, l, p, t, v, sv, oa, ra, pl, md
    FROM writers, unnest(CAST(:event_ids AS uuid[]), CAST(:lead_ids AS uuid[]),
                CAST(:producers AS text[]), CAST(:types AS text[]),
                CAST(:schema_versions AS integer[]), CAST(:stream_versions AS integer[]),
                CAST(:occurred AS timestamptz[]), CAST(:recorded AS timestamptz[]),
                CAST(:payloads AS jsonb[]), CAST(:metadatas AS jsonb[]))
         WITH ORDINALITY AS b(e, l, p, t, v, sv, oa, ra, pl, md, n)
    ORDER BY n
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)
_ERASED = DriverSql(
    "INSERT INTO erased_leads (lead_id, erased_at) "
    "SELECT * FROM unnest(CAST(:lead_ids AS uuid[]), CAST(:at AS timestamptz[])) "
    "ON CONFLICT (lead_id) DO NOTHING"
)
# After _ERASED: a personal event of a lead erased in this batch or before (another
# partition, a replay) must not bring the data back, whatever its place in the batch.
_PERSONAL = DriverSql(
    """
    INSERT INTO lead_personal (lead_id, event_id, fields)
    SELECT l, e, f FROM unnest(CAST(:lead_ids AS uuid[]), CAST(:event_ids AS uuid[]),
                               CAST(:fields AS jsonb[])) AS b(l, e, f)
    WHERE NOT EXISTS (SELECT 1 FROM erased_leads x WHERE x.lead_id = b.l)
    ON CONFLICT DO NOTHING
    """
)
_FORGET = DriverSql("DELETE FROM lead_personal WHERE lead_id = ANY(CAST(:lead_ids AS uuid[]))")


def split_personal(payload: EventPayload) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload without personal fields, the personal fields that were set)."""
    data = payload.model_dump(mode="json")
    personal = {k: data.pop(k) for k in payload.personal_fields if k in data}
    return data, {k: v for k, v in personal.items() if v is not None}


def causal_order(events: Sequence[Envelope]) -> list[Envelope]:
    """A batch in the order its events were recorded by their producers (stable: a
    producer's events recorded together keep their stream order).

    A consumer batch mixes partitions of several topics in no particular order, and Kafka
    orders nothing across topics: routing's ``lead.assigned`` could come before the scoring
    ``lead.qualified`` that caused it and be folded for a lead still at ``inquiry``. An
    effect is recorded after its cause was consumed, so recording time restores the order
    within a batch."""
    return sorted(events, key=lambda e: e.recorded_at)


async def record_event(envelope: Envelope, uow: UnitOfWork) -> None:
    """Collect the event; the whole batch is logged at the unit of work's flush."""
    uow.batch(write_log, list, partial(write_log, uow.conn)).append(envelope)


async def write_log(conn: AsyncConnection, events: Sequence[Envelope]) -> None:
    """Append events to the analytics log (each once) and keep their personal fields aside:
    one statement for a batch, four at most (a batch with erasures), whatever its size."""
    if not events:
        return
    events = causal_order(events)
    split = [split_personal(e.payload) for e in events]
    rows = await _INSERT_BATCH.fetch(
        conn,
        {
            "event_ids": [e.event_id for e in events],
            "lead_ids": [e.lead_id for e in events],
            "producers": [e.producer for e in events],
            "types": [e.event_type for e in events],
            "schema_versions": [e.schema_version for e in events],
            "stream_versions": [e.stream_version for e in events],
            "occurred": [e.occurred_at for e in events],
            "recorded": [e.recorded_at for e in events],
            "payloads": [orjson.dumps(data).decode() for data, _ in split],
            "metadatas": [orjson.dumps(_metadata(e)).decode() for e in events],
        },
    )
    logged = {row[0] for row in rows}  # the rest were already logged: redeliveries
    fresh = [
        (e, personal)
        for e, (_, personal) in zip(events, split, strict=True)
        if e.event_id in logged
    ]
    erased = [e for e, _ in fresh if e.event_type == "lead.erased"]
    if erased:
        await _ERASED.execute(
            conn,
            {"lead_ids": [e.lead_id for e in erased], "at": [e.occurred_at for e in erased]},
        )
    personal = [(e, fields) for e, fields in fresh if fields and e.event_type != "lead.erased"]
    if personal:
        await _PERSONAL.execute(
            conn,
            {
                "lead_ids": [e.lead_id for e, _ in personal],
                "event_ids": [e.event_id for e, _ in personal],
                "fields": [orjson.dumps(fields).decode() for _, fields in personal],
            },
        )
    if erased:
        await _FORGET.execute(conn, {"lead_ids": [e.lead_id for e in erased]})


def _metadata(envelope: Envelope) -> dict[str, Any]:
    return {
        "correlation_id": str(envelope.correlation_id) if envelope.correlation_id else None,
        "causation_id": str(envelope.causation_id) if envelope.causation_id else None,
        "traceparent": envelope.traceparent,
    }


def all_handlers() -> dict[type[EventPayload] | str, Handler]:
    """One handler for every event type in the catalogue: analytics logs everything."""
    import leadflow.events.catalogue  # noqa: F401  (registers every event type)

    return {cls: record_event for cls in registry.all()}


CONSUMES: tuple[str, ...] = ("intake", "scoring", "routing", "sla")
