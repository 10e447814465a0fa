"""Ingest: every consumed event is appended once to ``lead_event_log``.

Personal fields (``EventPayload.personal_fields``) are split off into ``lead_personal``,
which ``lead.erased`` deletes, so the log itself stays append-only and never holds personal
data. Dedup is twofold: the kernel's inbox, and ``ON CONFLICT (event_id) DO NOTHING``.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text

from leadflow.events.consumer import Handler, UnitOfWork
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.registry import registry

_INSERT = text(
    "INSERT INTO lead_event_log (event_id, lead_id, producer, event_type, schema_version, "
    "stream_version, occurred_at, recorded_at, payload, metadata) VALUES (:event_id, :lead_id, "
    ":producer, :event_type, :schema_version, :stream_version, :occurred_at, :recorded_at, "
    "CAST(:payload AS jsonb), CAST(:metadata AS jsonb)) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING global_position"
)


def split_personal(payload: EventPayload) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload without personal fields, the personal fields that were set)."""
    data = payload.model_dump(mode="json")
    personal = {k: data.pop(k) for k in payload.personal_fields if k in data}
    return data, {k: v for k, v in personal.items() if v is not None}


async def record_event(envelope: Envelope, uow: UnitOfWork) -> None:
    """Append the event to the analytics log (once) and keep its personal fields aside."""
    conn = uow.conn
    if not getattr(uow, "analytics_log_locked", False):
        # Positions must become visible in order, or a projection that has read past a
        # position still being committed would skip it: writers of the log take turns.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lead_event_log'))"))
        uow.analytics_log_locked = True  # type: ignore[attr-defined]
    data, personal = split_personal(envelope.payload)
    metadata = {
        "correlation_id": str(envelope.correlation_id) if envelope.correlation_id else None,
        "causation_id": str(envelope.causation_id) if envelope.causation_id else None,
        "traceparent": envelope.traceparent,
    }
    inserted = await conn.scalar(
        _INSERT,
        {
            "event_id": envelope.event_id,
            "lead_id": envelope.lead_id,
            "producer": envelope.producer,
            "event_type": envelope.event_type,
            "schema_version": envelope.schema_version,
            "stream_version": envelope.stream_version,
            "occurred_at": envelope.occurred_at,
            "recorded_at": envelope.recorded_at,
            "payload": orjson.dumps(data).decode(),
            "metadata": orjson.dumps(metadata).decode(),
        },
    )
    if inserted is None:
        return  # already logged: a redelivery
    if envelope.event_type == "lead.erased":
        await conn.execute(
            text(
                "INSERT INTO erased_leads (lead_id, erased_at) VALUES (:l, :at) "
                "ON CONFLICT (lead_id) DO NOTHING"
            ),
            {"l": envelope.lead_id, "at": envelope.occurred_at},
        )
        await conn.execute(
            text("DELETE FROM lead_personal WHERE lead_id = :l"), {"l": envelope.lead_id}
        )
    elif personal:
        # A personal event that arrives after the erasure (another partition, a replay)
        # must not bring the data back.
        await conn.execute(
            text(
                "INSERT INTO lead_personal (lead_id, event_id, fields) "
                "SELECT :l, :e, CAST(:f AS jsonb) "
                "WHERE NOT EXISTS (SELECT 1 FROM erased_leads WHERE lead_id = :l) "
                "ON CONFLICT DO NOTHING"
            ),
            {"l": envelope.lead_id, "e": envelope.event_id, "f": orjson.dumps(personal).decode()},
        )


def all_handlers() -> dict[type[EventPayload] | str, Handler]:
    """One handler for every event type in the catalogue: analytics logs everything."""
    import leadflow.events.catalogue  # noqa: F401  (registers every event type)

    return {cls: record_event for cls in registry.all()}


CONSUMES: tuple[str, ...] = ("intake", "scoring", "routing", "sla")
