"""``docs/asyncapi.yaml``: the AsyncAPI 3.0 document of the topics, their messages and
who sends and receives them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic.json_schema import models_json_schema

from leadflow.events.envelope import EventPayload, dlq_topic_for, topic_for
from leadflow.events.schemagen.contracts import (
    EVENTS_MD_PATH,
    KAFKA_BINDING_VERSION,
    PRODUCERS,
    SERVICES,
    TOPIC_PURPOSE,
    _description,
    _dlq_headers_schema,
    _extensions,
    _headers_schema,
    _key_binding,
    envelope_schema,
    message_id,
)


def asyncapi_document(classes: Sequence[type[EventPayload]]) -> dict[str, Any]:
    refs, top = models_json_schema(
        [(cls, "serialization") for cls in classes],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    envelope = envelope_schema()
    envelope.pop("$schema")
    schemas["Envelope"] = envelope
    schemas["EventHeaders"] = _headers_schema()
    schemas["DeadLetterHeaders"] = _dlq_headers_schema()

    messages: dict[str, Any] = {}
    for cls in classes:
        payload_ref = refs[(cls, "serialization")]["$ref"]
        messages[message_id(cls)] = {
            "bindings": _key_binding(),
            "contentType": "application/json",
            "description": _description(cls),
            "headers": {
                "allOf": [
                    {"$ref": "#/components/schemas/EventHeaders"},
                    {
                        "properties": {
                            "event_type": {"const": cls.event_type},
                            "schema_version": {"const": str(cls.schema_version)},
                        }
                    },
                ]
            },
            "name": cls.event_type,
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "properties": {
                            "event_type": {"const": cls.event_type},
                            "payload": {"$ref": payload_ref},
                            "producer": {"const": cls.producer},
                            "schema_version": {"const": cls.schema_version},
                        },
                        "required": ["event_type", "payload", "producer", "schema_version"],
                    },
                ]
            },
            "summary": cls.summary,
            "title": f"{cls.__name__} v{cls.schema_version}",
            **_extensions(cls),
        }
    messages["dead_letter"] = {
        "bindings": _key_binding(),
        "description": "A record a consumer gave up on after its retries (or could not decode "
        "at all): the original key and value unchanged, the original headers plus error "
        "headers. Replay it to the main topic once the cause is fixed.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "name": "dead_letter",
        "payload": {"description": "The original record value, byte for byte (may be invalid)."},
        "summary": "A record that could not be processed.",
        "title": "Dead letter",
    }

    channels: dict[str, Any] = {}
    for producer in PRODUCERS:
        channel_messages = {
            message_id(cls): {"$ref": f"#/components/messages/{message_id(cls)}"}
            for cls in classes
            if cls.producer == producer
        }
        channels[producer] = {
            "address": topic_for(producer),
            "bindings": {
                "kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "topic": topic_for(producer)}
            },
            "description": f"{TOPIC_PURPOSE[producer]} Produced only by {_producer_name(producer)}"
            "; keyed by lead_id. Deployments may prefix topic names (LEADFLOW_TOPIC_PREFIX).",
            "messages": channel_messages,
            "title": topic_for(producer),
        }
        channels[f"{producer}_dlq"] = {
            "address": dlq_topic_for(producer),
            "bindings": {
                "kafka": {
                    "bindingVersion": KAFKA_BINDING_VERSION,
                    "topic": dlq_topic_for(producer),
                }
            },
            "description": f"Dead letters of consumers of {topic_for(producer)}.",
            "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
            "title": dlq_topic_for(producer),
        }

    operations: dict[str, Any] = {}
    for service in SERVICES:
        if service.produces is not None:
            operations[f"{service.op_name}_send"] = _operation(
                "send",
                service.produces,
                channels,
                f"{service.name} publishes its events (from its outbox) to "
                f"{topic_for(service.produces)}.",
            )
        for producer in service.consumes:
            operations[f"{service.op_name}_receive_{producer}"] = _operation(
                "receive",
                producer,
                channels,
                f"{service.name} consumes {topic_for(producer)}.",
            )
            operations[f"{service.op_name}_dead_letter_{producer}"] = _operation(
                "send",
                f"{producer}_dlq",
                channels,
                f"{service.name} dead-letters records of {topic_for(producer)} it cannot process.",
            )

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Leadflow events",
            "version": "1.0.0",
            "description": "The events Leadflow's services publish on Kafka: one topic per "
            "producing service, keyed by lead_id, JSON envelopes with typed payloads. "
            "Schema evolution is additive; a breaking change gets a new schema_version and "
            f"an upcaster. Generated by `python -m leadflow.events.schemagen`; see "
            f"{EVENTS_MD_PATH} for the human catalogue.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "description": "The local KRaft broker (deploy/local); elsewhere "
                "KAFKA_BOOTSTRAP_SERVERS.",
                "host": "localhost:9092",
                "protocol": "kafka",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _producer_name(producer: str) -> str:
    return next(s.name for s in SERVICES if s.produces == producer)


def _operation(
    action: str, channel_id: str, channels: Mapping[str, Any], summary: str
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [
            {"$ref": f"#/channels/{channel_id}/messages/{mid}"}
            for mid in channels[channel_id]["messages"]
        ],
        "summary": summary,
    }


# -- docs/events.md -------------------------------------------------------------------------
