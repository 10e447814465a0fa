"""The event contracts' common parts: where they are written, the services and topics
they describe, the payload classes of the catalogue and their JSON Schemas (with the
envelope's, its headers' and the record key's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadflow.events.envelope import Envelope, EventPayload, topic_for
from leadflow.events.lifecycle import (
    target_stage,
)
from leadflow.events.registry import Registry

SCHEMAS_DIR = "libs/events/schemas"
ASYNCAPI_PATH = "docs/asyncapi.yaml"
EVENTS_MD_PATH = "docs/events.md"
ENVELOPE_SCHEMA = f"{SCHEMAS_DIR}/envelope.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
REGENERATE = "uv run python -m leadflow.events.schemagen   (or: make schemas)"


@dataclass(frozen=True)
class Service:
    """A service as ARCHITECTURE §1 lists it: the topic it produces and the ones it consumes."""

    name: str
    produces: str | None
    consumes: tuple[str, ...]

    @property
    def op_name(self) -> str:
        return self.name.replace("-", "_")


SERVICES: tuple[Service, ...] = (
    Service("intake", "intake", ()),
    Service("scoring", "scoring", ("intake", "routing")),
    Service("routing", "routing", ("intake", "scoring", "sla")),
    Service("sla-monitor", "sla", ("routing", "scoring")),
    Service("analytics", None, ("intake", "scoring", "routing", "sla")),
    Service("notify", "notify", ("intake", "scoring", "routing", "sla")),
)
PRODUCERS: tuple[str, ...] = ("intake", "scoring", "routing", "sla", "notify")
TOPIC_PURPOSE: Mapping[str, str] = {
    "intake": "Capture at the edge: new leads, inquiries, profile changes, merges, "
    "engagement activity, consent and erasure.",
    "scoring": "Qualification: scores, MQL and disqualification decisions, nurture "
    "enrolment and cadence, scoring model versions.",
    "routing": "Distribution and hand-off: assignments and the sales side's answers "
    "(accept, reject, contacted, SQL, opportunity, won, lost, hold, recycle), rule versions.",
    "sla": "Service levels: SLA clocks started, warned, breached and met; escalations; "
    "policy versions.",
    "notify": "Outbound delivery facts: reps, managers and team channels told, nurture "
    "e-mails sent or withheld, webhook endpoints disabled.",
}

DLQ_HEADERS: Mapping[str, str] = {
    "dlq.error": "Why the record could not be processed (truncated to 4000 characters).",
    "dlq.original_topic": "The topic the record was read from.",
    "dlq.original_partition": "Its partition.",
    "dlq.original_offset": "Its offset.",
    "dlq.consumer_group": "The consumer group that gave up on it.",
    "dlq.failed_at": "When it was dead-lettered (ISO 8601, UTC).",
}


# -- catalogue access ---------------------------------------------------------------------


def payload_classes(reg: Registry | None = None) -> list[type[EventPayload]]:
    """Every registered payload class, all versions, by producer, event type and version."""
    if reg is None:
        import leadflow.events.catalogue  # noqa: F401 - registers the catalogue
        from leadflow.events.registry import registry

        reg = registry
    return reg.all_versions()


def schema_path(cls: type[EventPayload]) -> str:
    return f"{SCHEMAS_DIR}/{cls.event_type}.v{cls.schema_version}.json"


def message_id(cls: type[EventPayload]) -> str:
    return f"{cls.event_type}.v{cls.schema_version}".replace(".", "_")


def _description(cls: type[EventPayload]) -> str:
    doc = (cls.__doc__ or "").strip()
    summary = cls.summary.strip()
    if doc and doc != summary:
        return f"{summary}\n\n{doc}" if summary else doc
    return summary


# -- JSON Schemas ---------------------------------------------------------------------------


def payload_schema(cls: type[EventPayload]) -> dict[str, Any]:
    """A standalone JSON Schema of one payload type/version, as producers serialise it."""
    schema = cls.model_json_schema(mode="serialization")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["description"] = _description(cls)
    schema.update(_extensions(cls))
    return schema


def _extensions(cls: type[EventPayload]) -> dict[str, Any]:
    stage = target_stage(cls.event_type)
    return {
        "x-event-type": cls.event_type,
        "x-schema-version": cls.schema_version,
        "x-producer": cls.producer,
        "x-topic": topic_for(cls.producer),
        "x-personal-fields": sorted(cls.personal_fields),
        "x-lifecycle-stage": stage.value if stage is not None else None,
    }


def envelope_schema() -> dict[str, Any]:
    """The envelope, with ``payload`` left open: each message schema narrows it."""
    schema = Envelope.model_json_schema(mode="serialization")
    schema.pop("$defs", None)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["description"] = (
        "The envelope every Leadflow event travels in (Kafka record value, JSON). "
        "`lead_id` is also the record key; `event_type`, `schema_version`, `event_id` and "
        "`traceparent` are repeated as record headers."
    )
    schema["properties"]["payload"] = {
        "description": "The event's payload; its schema is `<event_type>.v<schema_version>.json`.",
        "title": "Payload",
        "type": "object",
    }
    return schema


# -- AsyncAPI -------------------------------------------------------------------------------


def _headers_schema() -> dict[str, Any]:
    return {
        "description": "Kafka record headers (UTF-8 strings) every event carries.",
        "properties": {
            "event_id": {"description": "The envelope's event_id.", "format": "uuid"},
            "event_type": {"description": "The envelope's event_type.", "type": "string"},
            "schema_version": {
                "description": "The payload schema version, as a decimal string.",
                "pattern": "^[1-9][0-9]*$",
                "type": "string",
            },
            "traceparent": {
                "description": "W3C trace context, carried across services.",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "type": "string",
            },
        },
        "required": ["event_id", "event_type", "schema_version", "traceparent"],
        "type": "object",
    }


def _dlq_headers_schema() -> dict[str, Any]:
    return {
        "additionalProperties": {"type": "string"},
        "description": "The original record's headers plus the consumer runner's error headers.",
        "properties": {
            name: {"description": text, "type": "string"} for name, text in DLQ_HEADERS.items()
        },
        "required": sorted(DLQ_HEADERS),
        "type": "object",
    }


def _key_binding() -> dict[str, Any]:
    return {
        "kafka": {
            "bindingVersion": KAFKA_BINDING_VERSION,
            "key": {
                "description": "The lead_id (for non-lead streams such as rule, model or "
                "policy versions, the stream id derived from the stream's name): all events "
                "of one lead from one producer stay in one partition, in order.",
                "format": "uuid",
                "type": "string",
            },
        }
    }
