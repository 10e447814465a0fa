"""Ingest: every consumed event is appended once to ``lead_event_log``, a consumer batch
with one statement, in the order its events were recorded (``causal_order``).

Personal fields (``EventPayload.personal_fields``) are split off into ``lead_personal``,
which ``lead.erased`` deletes, so the log itself stays append-only and never holds personal
data. Dedup is twofold: the kernel's inbox, and ``ON CONFLICT (event_id) DO NOTHING``.

The ingest is a kernel ``BatchHandler`` (``EventLogIngest``): the log is what a lead's
events leave behind, so a lead's state in a batch is its new log entries (``LogEntry``),
decided purely from each event (``log_entry``: the payload without personal data, the
personal fields, the event's place in the batch); ``save`` writes the batch's entries with
one statement. There is nothing to load: the log is append-only and the folds that read it
are the kernel's projection runner's (``fold_group``), not this consumer's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from leadflow.events import Handler
from leadflow.events.batch import Appended, Decision, on_batch
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.registry import registry
from leadflow.events.sql import Tx

# One statement for a whole consumer batch; positions follow the batch's order. Positions
# must become visible in order, or a projection that has read past a position still being
# committed would skip it: writers of the log take turns (to commit), the lock taken by the
# same statement before any position is drawn (its one row drives the join).
_INSERT_BATCH = """
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
_ERASED = (
    "INSERT INTO erased_leads (lead_id, erased_at) "
    "SELECT * FROM unnest(CAST(:lead_ids AS uuid[]), CAST(:at AS timestamptz[])) "
    "ON CONFLICT (lead_id) DO NOTHING"
)
# After _ERASED: a personal event of a lead erased in this batch or before (another
# partition, a replay) must not bring the data back, whatever its place in the batch.
_PERSONAL = """
    INSERT INTO lead_personal (lead_id, event_id, fields)
    SELECT l, e, f FROM unnest(CAST(:lead_ids AS uuid[]), CAST(:event_ids AS uuid[]),
                               CAST(:fields AS jsonb[])) AS b(l, e, f)
    WHERE NOT EXISTS (SELECT 1 FROM erased_leads x WHERE x.lead_id = b.l)
    ON CONFLICT DO NOTHING
"""
_FORGET = "DELETE FROM lead_personal WHERE lead_id = ANY(CAST(:lead_ids AS uuid[]))"


def split_personal(payload: EventPayload) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload without personal fields, the personal fields that were set)."""
    data = payload.model_dump(mode="json")
    personal = {k: data.pop(k) for k in payload.personal_fields if k in data}
    return data, {k: v for k, v in personal.items() if v is not None}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What one consumed event adds to the analytics log: the event, its payload without
    personal data, the personal fields it set (kept aside), its place in the batch."""

    envelope: Envelope
    payload: dict[str, Any]
    personal: dict[str, Any]
    arrival: int

    @property
    def erases(self) -> bool:
        return self.envelope.event_type == "lead.erased"


LeadEntries = tuple[LogEntry, ...]
"""A lead's state in an ingest batch: the log entries its events of the batch add."""


@dataclass(frozen=True, slots=True)
class IngestBatch:
    """The batch's context: each event's place in the consumer batch (its arrival)."""

    arrival: Mapping[UUID, int]


def log_entry(event: Envelope, arrival: int) -> LogEntry:
    """Pure: the log entry of ``event``."""
    data, personal = split_personal(event.payload)
    return LogEntry(event, data, personal, arrival)


def causal_order(entries: Sequence[LogEntry]) -> list[LogEntry]:
    """A batch in the order its events were recorded by their producers (stable: events
    recorded together keep their arrival order, so a producer's keep their stream order).

    A consumer batch mixes partitions of several topics in no particular order, and Kafka
    orders nothing across topics: routing's ``lead.assigned`` could come before the scoring
    ``lead.qualified`` that caused it and be folded for a lead still at ``inquiry``. An
    effect is recorded after its cause was consumed, so recording time restores the order
    within a batch."""
    return sorted(entries, key=lambda e: (e.envelope.recorded_at, e.arrival))


class EventLogIngest:
    """The ingest as a kernel ``BatchHandler[LeadEntries, IngestBatch]``: nothing to load,
    each event decided into its log entry, the batch's entries saved with one statement."""

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> IngestBatch:
        return IngestBatch({e.event_id: i for i, e in enumerate(events)})

    async def load(
        self, tx: Tx, lead_ids: Sequence[UUID], ctx: IngestBatch
    ) -> dict[UUID, LeadEntries]:
        return {}  # append-only: no lead state to read or lock

    def decide(
        self, state: LeadEntries | None, event: Envelope, ctx: IngestBatch
    ) -> Decision[LeadEntries]:
        entry = log_entry(event, ctx.arrival.get(event.event_id, 0))
        return Decision(state=(*(state or ()), entry))

    async def save(
        self, tx: Tx, changed: Mapping[UUID, LeadEntries], ctx: IngestBatch
    ) -> Sequence[Appended]:
        await write_log(tx, [entry for entries in changed.values() for entry in entries])
        return ()


async def write_log(tx: Tx, entries: Sequence[LogEntry]) -> None:
    """Append entries to the analytics log (each event once) and keep their personal fields
    aside: one statement for a batch, four at most (a batch with erasures), whatever its
    size."""
    if not entries:
        return
    entries = causal_order(entries)
    events = [e.envelope for e in entries]
    rows = await tx.fetch(
        _INSERT_BATCH,
        event_ids=[e.event_id for e in events],
        lead_ids=[e.lead_id for e in events],
        producers=[e.producer for e in events],
        types=[e.event_type for e in events],
        schema_versions=[e.schema_version for e in events],
        stream_versions=[e.stream_version for e in events],
        occurred=[e.occurred_at for e in events],
        recorded=[e.recorded_at for e in events],
        payloads=[orjson.dumps(e.payload).decode() for e in entries],
        metadatas=[orjson.dumps(_metadata(e)).decode() for e in events],
    )
    logged = {row[0] for row in rows}  # the rest were already logged: redeliveries
    fresh = [e for e in entries if e.envelope.event_id in logged]
    erased = [e.envelope for e in fresh if e.erases]
    if erased:
        await tx.execute(
            _ERASED,
            lead_ids=[e.lead_id for e in erased],
            at=[e.occurred_at for e in erased],
        )
    personal = [e for e in fresh if e.personal and not e.erases]
    if personal:
        await tx.execute(
            _PERSONAL,
            lead_ids=[e.envelope.lead_id for e in personal],
            event_ids=[e.envelope.event_id for e in personal],
            fields=[orjson.dumps(e.personal).decode() for e in personal],
        )
    if erased:
        await tx.execute(_FORGET, lead_ids=[e.lead_id for e in erased])


def _metadata(envelope: Envelope) -> dict[str, Any]:
    return {
        "correlation_id": str(envelope.correlation_id) if envelope.correlation_id else None,
        "causation_id": str(envelope.causation_id) if envelope.causation_id else None,
        "traceparent": envelope.traceparent,
    }


def all_handlers() -> dict[type[EventPayload] | str, Handler]:
    """One handler for every event type in the catalogue: analytics logs everything."""
    import leadflow.events.catalogue  # noqa: F401  (registers every event type)

    ingest = on_batch(EventLogIngest())
    return {cls: ingest for cls in registry.all()}


CONSUMES: tuple[str, ...] = ("intake", "scoring", "routing", "sla")
