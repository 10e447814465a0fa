"""The per-service event store: ``event_log`` + ``outbox`` written in the caller's transaction.

``append`` takes envelopes for many leads at once and writes them with two multi-row
statements (log and outbox), so a consumer batch costs a handful of round trips however
many events it produces. Optimistic concurrency comes from ``UNIQUE (lead_id,
stream_version)``: a racing writer surfaces as ``ConcurrencyError``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from leadflow.events.envelope import Envelope, json_default, topic_for, utcnow
from leadflow.events.errors import ConcurrencyError, UniqueViolation
from leadflow.events.sql import Tx


@dataclass(frozen=True)
class StoredEvent:
    position: int
    envelope: Envelope


class PayloadCodec(Protocol):
    """Transforms payload JSON on its way into and out of ``event_log`` (intake encrypts
    personal fields with a per-lead key here, so erasing the key shreds them)."""

    async def encode(self, tx: Tx, envelope: Envelope, data: dict[str, Any]) -> dict[str, Any]: ...

    async def decode(
        self, tx: Tx, lead_id: uuid.UUID, event_type: str, data: dict[str, Any]
    ) -> dict[str, Any]: ...


# The hot statement of every service.
_INSERT_LOG = """
    INSERT INTO event_log (event_id, lead_id, stream_version, event_type, schema_version,
                           payload, metadata, occurred_at, recorded_at)
    SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:lead_ids AS uuid[]),
                         CAST(:versions AS integer[]), CAST(:types AS text[]),
                         CAST(:schema_versions AS integer[]), CAST(:payloads AS jsonb[]),
                         CAST(:metadatas AS jsonb[]), CAST(:occurred AS timestamptz[]),
                         CAST(:recorded AS timestamptz[]))
    """
_INSERT_LOG_AND_OUTBOX = """
    WITH logged AS (
        INSERT INTO event_log (event_id, lead_id, stream_version, event_type, schema_version,
                               payload, metadata, occurred_at, recorded_at)
        SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:lead_ids AS uuid[]),
                             CAST(:versions AS integer[]), CAST(:types AS text[]),
                             CAST(:schema_versions AS integer[]), CAST(:payloads AS jsonb[]),
                             CAST(:metadatas AS jsonb[]), CAST(:occurred AS timestamptz[]),
                             CAST(:recorded AS timestamptz[]))
        RETURNING 1
    ), boxed AS (
        INSERT INTO outbox (event_id, lead_id, topic, key, value, headers)
        SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:lead_ids AS uuid[]),
                             CAST(:topics AS text[]), CAST(:keys AS bytea[]),
                             CAST(:values AS bytea[]), CAST(:headers AS jsonb[]))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM logged), (SELECT count(*) FROM boxed),
           CASE WHEN :channel <> '' THEN pg_notify(:channel, '') END
    """
_STREAM_VERSIONS = (
    "SELECT lead_id, max(stream_version) FROM event_log "
    "WHERE lead_id = ANY(CAST(:ids AS uuid[])) GROUP BY lead_id"
)
# The lock's one row drives the join, so it is taken even when no lead has events yet.
_LOCKED_STREAM_VERSIONS = """
    WITH appenders AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext('event_log')))
    SELECT e.lead_id, max(e.stream_version)
    FROM appenders LEFT JOIN event_log e ON e.lead_id = ANY(CAST(:ids AS uuid[]))
    GROUP BY e.lead_id
    """
_SELECT_COLUMNS = (
    "global_position, event_id, lead_id, stream_version, event_type, schema_version, "
    "payload, metadata, occurred_at, recorded_at"
)
# Positions in a row of _SELECT_COLUMNS that the payload codec needs.
_LEAD_ID, _EVENT_TYPE, _PAYLOAD = 2, 4, 6
_READ_ALL = (
    f"SELECT {_SELECT_COLUMNS} FROM event_log WHERE global_position > :after "
    "ORDER BY global_position LIMIT :limit"
)
_READ_STREAM = (
    f"SELECT {_SELECT_COLUMNS} FROM event_log WHERE lead_id = :lead_id ORDER BY stream_version"
)


class EventStore:
    def __init__(
        self,
        producer: str,
        *,
        topic_prefix: str = "",
        codec: PayloadCodec | None = None,
        notify_channel: str = "",
        publish: bool = True,
        serialize_appends: bool = False,
    ) -> None:
        self.producer = producer
        self.topic = topic_for(producer, topic_prefix)
        self.codec = codec
        self.notify_channel = notify_channel
        self.publish = publish
        # When a projection tails this log by position, appends take turns (an advisory lock
        # held to commit) so positions become visible in order and none is ever skipped.
        self.serialize_appends = serialize_appends

    async def stream_version(self, tx: Tx, lead_id: uuid.UUID) -> int:
        version = await tx.fetchval(
            "SELECT max(stream_version) FROM event_log WHERE lead_id = :lead_id", lead_id=lead_id
        )
        return int(version or 0)

    async def stream_versions(
        self, tx: Tx, lead_ids: Sequence[uuid.UUID], *, lock: bool = False
    ) -> dict[uuid.UUID, int]:
        """Current version per lead (absent: no events yet). With ``lock`` the appenders'
        advisory lock is taken by the same statement (one round trip, not two)."""
        statement = _LOCKED_STREAM_VERSIONS if lock else _STREAM_VERSIONS
        rows = await tx.fetch(statement, ids=list(lead_ids))
        return {row[0]: int(row[1]) for row in rows if row[0] is not None}

    async def append(
        self,
        tx: Tx,
        events: Sequence[Envelope],
        *,
        expected_versions: Mapping[uuid.UUID, int] | None = None,
        known_versions: dict[uuid.UUID, int] | None = None,
        notify: bool = True,
    ) -> list[Envelope]:
        """Append events (any number of leads) in the caller's transaction.

        ``notify``: wake the outbox relay with NOTIFY at commit. Every listening session of
        the database is woken by every NOTIFY, whatever its channel, so a caller whose own
        process runs the active relay wakes it in-process after commit instead
        (``UnitOfWork.notify_relay``).

        ``expected_versions`` pins a lead's stream version before this append; a mismatch,
        or a concurrent writer winning the race, raises ``ConcurrencyError``. A lead expected
        at version 0 (a stream the caller just created) is not read at all: if it has
        events after all, its version 1 collides with theirs and the append is refused.

        ``known_versions``: versions the caller read earlier in this transaction (a
        consumer batch reads its leads' with the inbox claim); those leads are not read
        again, and the map is moved on to what this append wrote. A writer that appended
        in between collides on ``UNIQUE (lead_id, stream_version)``: ``ConcurrencyError``,
        as if it had won the race after the read. Ignored when appends are serialised
        (their read takes the appenders' lock).
        """
        if not events:
            return []
        by_lead: dict[uuid.UUID, list[Envelope]] = defaultdict(list)
        for event in events:
            by_lead[event.lead_id].append(event)
        expected_at = expected_versions or {}
        known = {} if known_versions is None or self.serialize_appends else known_versions
        current = {lead: known[lead] for lead in by_lead if lead in known}
        to_read = [lead for lead in by_lead if expected_at.get(lead) != 0 and lead not in known]
        if to_read or self.serialize_appends:
            current.update(await self.stream_versions(tx, to_read, lock=self.serialize_appends))
        for lead_id, expected in expected_at.items():
            if current.get(lead_id, 0) != expected:
                raise ConcurrencyError(lead_id, expected)
        now = utcnow()
        stored: list[Envelope] = []
        next_version = dict(current)
        for event in events:
            version = next_version.get(event.lead_id, 0) + 1
            next_version[event.lead_id] = version
            stored.append(event.with_position(version, now))
        await self._write(tx, stored, notify=notify)
        if known_versions is not None and not self.serialize_appends:
            known_versions.update((lead, next_version[lead]) for lead in by_lead)
        return stored

    async def _write(self, tx: Tx, stored: list[Envelope], *, notify: bool = True) -> None:
        """Event log, outbox and the relay's wake-up in ONE statement (one round trip)."""
        payloads: list[str] = []
        values: list[bytes] = []  # the records' (before the codec: Kafka has them in clear)
        for event in stored:
            data = event.payload.model_dump(mode="json")
            if self.publish:
                values.append(event.to_json(payload=data))
            if self.codec is not None:
                data = await self.codec.encode(tx, event, data)
            payloads.append(orjson.dumps(data).decode())
        params: dict[str, Any] = {
            "event_ids": [e.event_id for e in stored],
            "lead_ids": [e.lead_id for e in stored],
            "versions": [e.stream_version for e in stored],
            "types": [e.event_type for e in stored],
            "schema_versions": [e.schema_version for e in stored],
            "payloads": payloads,
            "metadatas": [metadata_json(e) for e in stored],
            "occurred": [e.occurred_at for e in stored],
            "recorded": [e.recorded_at for e in stored],
        }
        statement = _INSERT_LOG
        if self.publish:
            statement = _INSERT_LOG_AND_OUTBOX
            params.update(
                {
                    "topics": [self.topic] * len(stored),
                    "keys": [e.record_key() for e in stored],
                    "values": values,
                    "headers": [e.record_headers_json() for e in stored],
                    "channel": self.notify_channel if notify else "",
                }
            )
        try:
            await tx.execute(statement, **params)
        except UniqueViolation as exc:
            if exc.constraint == "event_log_stream_version_unique":
                raise ConcurrencyError(stored[0].lead_id, None) from exc
            raise

    async def read_stream(self, tx: Tx, lead_id: uuid.UUID) -> list[Envelope]:
        rows = await tx.fetch(_READ_STREAM, lead_id=lead_id)
        return [stored.envelope for stored in await self._decode(tx, rows)]

    async def read_all(
        self, tx: Tx, after_position: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        rows = await tx.fetch(_READ_ALL, after=after_position, limit=limit)
        return await self._decode(tx, rows)

    async def head_position(self, tx: Tx) -> int:
        return int(await tx.fetchval("SELECT coalesce(max(global_position), 0) FROM event_log"))

    async def _decode(self, tx: Tx, rows: Sequence[Any]) -> list[StoredEvent]:
        """Rows of ``_SELECT_COLUMNS`` as events."""
        if self.codec is None:
            return [stored_event(row, row[_PAYLOAD]) for row in rows]
        decoded: list[StoredEvent] = []
        for row in rows:
            payload = await self.codec.decode(tx, row[_LEAD_ID], row[_EVENT_TYPE], row[_PAYLOAD])
            decoded.append(stored_event(row, payload))
        return decoded


def metadata_json(event: Envelope) -> str:
    """The ``metadata`` column: the envelope's provenance."""
    metadata = {
        "producer": event.producer,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "traceparent": event.traceparent,
    }
    return orjson.dumps(metadata, default=json_default).decode()


def stored_event(row: Sequence[Any], payload: dict[str, Any]) -> StoredEvent:
    """A row of ``_SELECT_COLUMNS`` with its (decoded) payload. Read by position: by name,
    each column of an asyncpg row goes through ``Row.__getattr__`` in Python."""
    (
        position,
        event_id,
        lead_id,
        version,
        event_type,
        schema_version,
        _,
        meta,
        occurred,
        recorded,
    ) = row
    meta = meta or {}
    envelope = Envelope.from_dict(
        {
            "event_id": event_id,
            "event_type": event_type,
            "schema_version": schema_version,
            "lead_id": lead_id,
            "stream_version": version,
            "occurred_at": occurred,
            "recorded_at": recorded,
            "producer": meta.get("producer", ""),
            "correlation_id": meta.get("correlation_id"),
            "causation_id": meta.get("causation_id"),
            "traceparent": meta.get("traceparent"),
            "payload": payload,
        }
    )
    return StoredEvent(position, envelope)
