"""The catalogue on the wire: every event type round-trips through a Kafka record, bad records
raise typed ``DecodeError``s, old versions are upcast, and the generated schemas accept what
the code produces."""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import orjson
import pytest
import yaml
from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from referencing import Registry as SchemaRegistry
from referencing.jsonschema import DRAFT202012

import leadflow.events.catalogue  # noqa: F401 - registers the catalogue
import leadflow.events.registry as registry_module
from leadflow.events import schemagen
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.events.errors import DecodeError, UnknownEventType
from leadflow.events.registry import Registry, registry

ROOT = schemagen.find_root(Path(__file__).parent)
CLASSES = registry.all()
LEAD_ID = uuid.UUID("0190f5c2-8a8e-7c3a-9d6e-2f1b3c4d5e6f")
M = TypeVar("M", bound=BaseModel)
WHEN = datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)


def sample_value(annotation: Any, name: str) -> Any:
    """A representative value for a field, every optional part filled in."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(a for a in args if a is not type(None)), name)
    if origin is Literal:
        return args[-1]
    if origin is list:
        return [sample_value(args[0], name)]
    if origin is dict:
        return {"key": sample_value(args[1], name)}
    if origin is frozenset or origin is set:
        return {sample_value(args[0], name)}
    if annotation is Any:
        return {"nested": [1, "two"]}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample_model(annotation)
    simple: dict[Any, Any] = {
        str: f"{name}-value",
        int: 7,
        float: 12.5,
        bool: True,
        uuid.UUID: uuid.UUID("0190f5c2-8a8e-7c3a-9d6e-aaaaaaaaaaaa"),
        datetime: WHEN,
        Decimal: Decimal("1234.50"),
    }
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"test helper cannot sample field {name!r} of type {annotation!r}")


def sample_model(cls: type[M]) -> M:
    values = {n: sample_value(f.annotation, n) for n, f in cls.model_fields.items()}
    return cls(**values)


def sample_envelope(cls: type[EventPayload]) -> Envelope:
    return Envelope.new(sample_model(cls), lead_id=LEAD_ID, occurred_at=WHEN).with_position(3, WHEN)


def record_of(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return envelope.record_key(), envelope.to_json(), envelope.record_headers()


def test_the_catalogue_holds_every_lifecycle_event_of_the_issue() -> None:
    required = {
        "intake": {
            "lead.captured",
            "inquiry.received",
            "lead.profile_updated",
            "leads.merged",
            "activity.recorded",
            "consent.changed",
            "lead.erased",
        },
        "scoring": {
            "lead.scored",
            "lead.qualified",
            "lead.disqualified",
            "nurture.enrolled",
            "nurture.touch_due",
            "nurture.exited",
        },
        "routing": {
            "lead.assigned",
            "lead.reassigned",
            "lead.accepted",
            "lead.rejected",
            "lead.recycled",
            "lead.contacted",
            "lead.sales_qualified",
            "opportunity.opened",
            "deal.won",
            "deal.lost",
            "lead.put_on_hold",
        },
        "sla": {"sla.started", "sla.warning", "sla.breached", "sla.met", "sla.escalation_raised"},
    }
    for producer, types_ in required.items():
        registered = {c.event_type for c in registry.by_producer(producer)}
        assert types_ <= registered, (producer, types_ - registered)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.event_type)
def test_every_event_type_declares_what_the_docs_and_topics_need(
    cls: type[EventPayload],
) -> None:
    assert cls.producer in schemagen.PRODUCERS
    assert cls.summary.strip(), f"{cls.__name__} needs a summary for docs/events.md"
    assert cls.schema_version >= 1
    assert cls.personal_fields <= set(cls.model_fields), "personal fields must be real fields"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.event_type)
def test_every_event_type_round_trips_through_a_kafka_record(cls: type[EventPayload]) -> None:
    envelope = sample_envelope(cls)
    key, value, headers = record_of(envelope)

    assert key == str(LEAD_ID).encode()
    header_map = dict(headers)
    assert header_map["event_type"] == cls.event_type.encode()
    assert header_map["schema_version"] == str(cls.schema_version).encode()
    assert header_map["event_id"] == str(envelope.event_id).encode()
    assert header_map["traceparent"].startswith(b"00-")

    decoded = Envelope.from_record(key, value, headers)
    assert type(decoded.payload) is cls
    assert decoded.traceparent == header_map["traceparent"].decode()
    assert decoded.model_copy(update={"traceparent": None}) == envelope
    assert decoded.occurred_at == WHEN and decoded.stream_version == 3


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.event_type)
def test_an_envelope_is_written_as_pydantic_writes_it(cls: type[EventPayload]) -> None:
    plain = sample_envelope(cls)
    berlin = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    caused = Envelope.new(sample_model(cls), lead_id=LEAD_ID, occurred_at=berlin, causation=plain)
    # A lead id read from Postgres is asyncpg's own UUID class.
    from_db = plain.model_copy(update={"lead_id": AsyncpgUUID(str(LEAD_ID))})
    for envelope in (plain, caused, from_db):
        assert envelope.to_json() == envelope.model_dump_json().encode()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.event_type)
def test_generated_json_schema_accepts_what_the_code_produces(cls: type[EventPayload]) -> None:
    envelope = sample_envelope(cls)
    wire = orjson.loads(envelope.to_json())
    payload_schema = json.loads((ROOT / schemagen.schema_path(cls)).read_text())
    payload_errors = list(Draft202012Validator(payload_schema).iter_errors(wire["payload"]))
    assert payload_errors == [], [e.message for e in payload_errors]
    envelope_schema = json.loads((ROOT / schemagen.ENVELOPE_SCHEMA).read_text())
    envelope_errors = list(Draft202012Validator(envelope_schema).iter_errors(wire))
    assert envelope_errors == [], [e.message for e in envelope_errors]


def test_asyncapi_message_schemas_accept_what_the_code_produces() -> None:
    doc = yaml.safe_load((ROOT / schemagen.ASYNCAPI_PATH).read_text())
    refs = SchemaRegistry().with_resource("urn:asyncapi", DRAFT202012.create_resource(doc))
    for cls in CLASSES:
        envelope = sample_envelope(cls)
        message = f"urn:asyncapi#/components/messages/{schemagen.message_id(cls)}"
        payload = Draft202012Validator({"$ref": f"{message}/payload"}, registry=refs)
        payload.validate(orjson.loads(envelope.to_json()))
        headers = Draft202012Validator({"$ref": f"{message}/headers"}, registry=refs)
        headers.validate({k: v.decode() for k, v in envelope.record_headers()})
        # and it really constrains: another event's envelope is not this message
        other = next(c for c in CLASSES if c is not cls)
        assert not payload.is_valid(orjson.loads(sample_envelope(other).to_json()))


# -- what cannot be decoded raises a DecodeError the consumer dead-letters -----------------


def _wire(**changes: Any) -> dict[str, Any]:
    envelope = Envelope.new(
        sample_model(registry.latest("lead.accepted")), lead_id=LEAD_ID, occurred_at=WHEN
    )
    data = envelope.to_dict()
    data.update(changes)
    return data


def test_unknown_event_type_raises_unknown_event_type() -> None:
    data = _wire(event_type="lead.teleported")
    with pytest.raises(UnknownEventType) as error:
        Envelope.from_record(str(LEAD_ID).encode(), orjson.dumps(data))
    assert isinstance(error.value, DecodeError)
    assert error.value.event_type == "lead.teleported"


def test_a_newer_schema_version_than_this_code_knows_raises_unknown_event_type() -> None:
    data = _wire(schema_version=registry.latest("lead.accepted").schema_version + 1)
    with pytest.raises(UnknownEventType):
        Envelope.from_json(orjson.dumps(data))


@pytest.mark.parametrize(
    "value",
    [b"{not json", b"[1, 2]", b'"a string"', b"", b"\xff\xfe"],
    ids=["truncated", "array", "string", "empty", "binary"],
)
def test_malformed_values_raise_decode_error(value: bytes) -> None:
    with pytest.raises(DecodeError):
        Envelope.from_record(str(LEAD_ID).encode(), value)


def test_a_tombstone_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="tombstone"):
        Envelope.from_record(str(LEAD_ID).encode(), None)


def test_a_key_that_is_not_the_lead_id_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="key"):
        Envelope.from_record(str(uuid.uuid4()).encode(), orjson.dumps(_wire()))


@pytest.mark.parametrize(
    ("change", "remove"),
    [
        ({}, "payload"),
        ({}, "event_type"),
        ({"payload": ["not", "an", "object"]}, None),
        ({"payload": {}}, None),  # lead.accepted requires rep_id
        ({"payload": {"rep_id": ["not", "a", "string"]}}, None),
        ({"lead_id": "not-a-uuid"}, None),
        ({"schema_version": "one"}, None),
        ({"occurred_at": "2026-03-14T09:26:53"}, None),  # not time-zone aware
    ],
    ids=[
        "missing-payload",
        "missing-event-type",
        "payload-not-object",
        "payload-missing-field",
        "payload-wrong-type",
        "bad-lead-id",
        "bad-version",
        "naive-time",
    ],
)
def test_malformed_envelopes_raise_decode_error(change: dict[str, Any], remove: str | None) -> None:
    data = _wire(**change)
    if remove:
        del data[remove]
    with pytest.raises(DecodeError):
        Envelope.from_json(orjson.dumps(data))


def test_additive_unknown_fields_are_ignored() -> None:
    original = Envelope.new(
        sample_model(registry.latest("deal.won")), lead_id=LEAD_ID, occurred_at=WHEN
    )
    data = original.to_dict()
    data["payload"]["discount_pct"] = 12  # a field a newer producer added
    data["region_hint"] = "emea"  # and one on the envelope
    decoded = Envelope.from_record(original.record_key(), orjson.dumps(data))
    assert decoded == original
    assert not hasattr(decoded.payload, "discount_pct")


# -- upcasting, on a private registry so the global catalogue stays clean ------------------


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Route class registration and decoding to a fresh ``Registry`` for one test."""
    fresh = Registry()
    monkeypatch.setattr(registry_module, "registry", fresh)
    return fresh


def test_old_versions_are_upcast_to_the_newest_class(private_registry: Registry) -> None:
    class WidgetResizedV1(EventPayload):
        event_type: ClassVar[str] = "test.widget_resized"
        producer: ClassVar[str] = "intake"
        size: int

    class WidgetResizedV2(EventPayload):
        event_type: ClassVar[str] = "test.widget_resized"
        schema_version: ClassVar[int] = 2
        producer: ClassVar[str] = "intake"
        width: int
        height: int

    @private_registry.upcaster("test.widget_resized", from_version=1)
    def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
        size = payload.pop("size")
        return {**payload, "width": size, "height": size}

    old = Envelope.new(WidgetResizedV1(size=4), lead_id=LEAD_ID)
    assert old.schema_version == 1
    decoded = Envelope.from_record(*record_of(old))
    assert decoded.payload == WidgetResizedV2(width=4, height=4)
    assert decoded.schema_version == 2
    assert private_registry.latest("test.widget_resized") is WidgetResizedV2
    assert "test.widget_resized" not in {c.event_type for c in registry.all()}


def test_a_missing_upcaster_raises_decode_error(private_registry: Registry) -> None:
    class GadgetV1(EventPayload):
        event_type: ClassVar[str] = "test.gadget"
        producer: ClassVar[str] = "intake"
        a: int

    class GadgetV2(EventPayload):
        event_type: ClassVar[str] = "test.gadget"
        schema_version: ClassVar[int] = 2
        producer: ClassVar[str] = "intake"
        b: int

    old = Envelope.new(GadgetV1(a=1), lead_id=LEAD_ID)
    with pytest.raises(DecodeError, match="no upcaster"):
        Envelope.from_record(*record_of(old))


def test_the_private_registry_left_the_global_catalogue_untouched() -> None:
    assert registry_module.registry is registry
    assert not {c.event_type for c in registry.all()} & {"test.widget_resized", "test.gadget"}
