"""Generate the checked-in event contracts from the catalogue code, or check they still match.

``python -m leadflow.events.schemagen`` writes

* ``libs/events/schemas/<event_type>.v<version>.json`` — one JSON Schema (2020-12) per payload
  type and version, plus ``envelope.json`` for the envelope every event travels in;
* ``docs/asyncapi.yaml`` — an AsyncAPI 3.0 document: the topics (``leadflow.<producer>`` and
  their ``.dlq``), record key and headers, the messages per topic, and which service sends
  and receives what (ARCHITECTURE §1);
* ``docs/events.md`` — the human catalogue: a table per topic and the lifecycle moves.

``--check`` writes nothing and exits 1 listing every file that differs, is missing or is
extra, so CI (and ``tests/unit/events/test_schemas_in_sync.py``) fails when code and
contracts disagree. Output is deterministic (sorted keys, fixed ordering) so the comparison
is byte for byte. ``make schemas`` runs this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from leadflow.events.catalogue.activities import CATALOGUE as ACTIVITY_CATALOGUE
from leadflow.events.envelope import Envelope, EventPayload, dlq_topic_for, topic_for
from leadflow.events.lifecycle import (
    ACTIVE_STAGES,
    EXPANSION_MOVES,
    MOVES,
    STAGE_ORDER,
    Stage,
    target_stage,
    transition_table,
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


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def events_markdown(classes: Sequence[type[EventPayload]]) -> str:
    out = [
        "# Leadflow event catalogue",
        "",
        "<!-- Generated by `python -m leadflow.events.schemagen` (make schemas) from "
        "libs/events/src/leadflow/events/catalogue and lifecycle.py. Do not edit by hand. -->",
        "",
        "Every event is a JSON envelope (`event_id` UUIDv7, `event_type`, `schema_version`, "
        "`lead_id`, `stream_version`, `occurred_at`, `recorded_at`, `producer`, "
        "`correlation_id`, `causation_id`, `traceparent`, `payload`) on the topic of the "
        "service that produced it. The record key is `lead_id`; the headers `event_type`, "
        "`schema_version`, `event_id` and `traceparent` repeat the envelope. Consumers that "
        "cannot process a record after their retries send it to `<topic>.dlq`.",
        "",
        f"Machine-readable: [`asyncapi.yaml`](asyncapi.yaml), JSON Schemas in "
        f"[`{SCHEMAS_DIR}/`](../{SCHEMAS_DIR}/). *Personal fields* are crypto-shredded on "
        "erasure; consumers must drop what they copied from them on `lead.erased`. "
        "*Moves lead to* is the lifecycle stage the event moves a lead to "
        "(see [Lifecycle](#lifecycle)); `—` means it never changes the stage.",
        "",
    ]
    for producer in PRODUCERS:
        consumers = [s.name for s in SERVICES if producer in s.consumes]
        out += [
            f"## {topic_for(producer)}",
            "",
            f"{TOPIC_PURPOSE[producer]}",
            "",
            f"Produced by **{_producer_name(producer)}**; consumed by "
            f"{', '.join(f'**{c}**' for c in consumers) or 'outside subscribers only'}. "
            f"Dead letters: `{dlq_topic_for(producer)}`.",
            "",
            "| event type | version | summary | personal fields | moves lead to | schema |",
            "|---|---|---|---|---|---|",
        ]
        for cls in classes:
            if cls.producer != producer:
                continue
            stage = target_stage(cls.event_type)
            moves = stage.value if stage else "—"
            if cls.event_type in MOVES and MOVES[cls.event_type].keeps:
                moves += " (new or re-engaged lead)"
            personal = ", ".join(f"`{f}`" for f in sorted(cls.personal_fields)) or "—"
            schema_file = schema_path(cls)
            out.append(
                f"| `{cls.event_type}` | {cls.schema_version} | {_cell(cls.summary)} | "
                f"{personal} | {moves} | "
                f"[{Path(schema_file).name}](../{schema_file}) |"
            )
        out.append("")
    out += _activities_markdown()
    out += _historical_markdown(classes)
    out += _lifecycle_markdown()
    return "\n".join(out).rstrip("\n") + "\n"


def _activities_markdown() -> list[str]:
    """The activity vocabulary intake accepts and scoring models may name."""
    out = [
        "## Activity types",
        "",
        "The `activity_type` of `activity.recorded`, from "
        "`leadflow.events.catalogue.activities`: intake's `POST /v1/activities` accepts a "
        "name or an alias (any spelling: `Email Opened` is `email_opened`) and records the "
        "canonical name; scoring refuses to publish a model whose engagement rule names a "
        "type that is not here (422 naming `engagement_rules[i].activity_types[j]`). "
        "`inquiry` is recorded by scoring for every inquiry intake captures; it is not "
        "posted as an activity. Properties are text, numbers or booleans.",
        "",
        "| type | aliases | how it arrives | meaning | properties |",
        "|---|---|---|---|---|",
    ]
    for kind in ACTIVITY_CATALOGUE.types:
        aliases = ", ".join(f"`{a}`" for a in kind.aliases) or "—"
        door = "`POST /v1/activities`" if kind.door == "activities" else "every inquiry"
        props = "; ".join(f"`{k}`: {v}" for k, v in kind.properties.items()) or "—"
        out.append(
            f"| `{kind.name}` | {aliases} | {door} | {_cell(kind.description)} | {_cell(props)} |"
        )
    out.append("")
    return out


def _historical_markdown(classes: Sequence[type[EventPayload]]) -> list[str]:
    """The ``historical`` payload flag: what it means and which events carry it."""
    flagged = [c.event_type for c in classes if "historical" in c.model_fields]
    return [
        "## Historical events",
        "",
        "Payload field `historical` (boolean, default `false`) on "
        + ", ".join(f"`{t}`" for t in flagged)
        + ". It is `true` for history loaded from another system (an import that maps an "
        "outcome column; `history.*` events always carry it): the fact happened in the past, "
        "at the envelope's `occurred_at` (the file's date, or the import time when it has "
        "none). Every consumer records such an event but acts on nothing because of it: "
        "scoring keeps the lead's features and outcome for predictive training but neither "
        "qualifies it nor enrols it in nurture (so routing and sla-monitor never see it; they "
        "also skip any flagged event they receive), sla-monitor starts no clock, and notify "
        "sends nothing (all three wrap their handlers in the kernel's "
        "`leadflow.events.consumer.skip_historical`; a new consumer that acts must too). Analytics counts it in the funnel by the lead's inquiry "
        "cohort. Test it with `leadflow.events.catalogue.intake.is_historical(payload)`.",
        "",
    ]


def _lifecycle_markdown() -> list[str]:
    table = transition_table()
    out = [
        "## Lifecycle",
        "",
        "`inquiry → (nurture ⇄) mql → sal → sql → opportunity → won → customer | lost`, plus "
        "`disqualified` and `on_hold` from any open stage, and `churned` after `customer` "
        "(ARCHITECTURE §2). A lead's lifecycle carries a cycle: `new_business`, or "
        "`expansion` from `expansion.opened` on (a customer's new buying cycle re-running the "
        "same stages). The allowed moves, from `leadflow.events.lifecycle.MOVES`:",
        "",
        "| from | to | by |",
        "|---|---|---|",
    ]
    for source in [None, *STAGE_ORDER]:
        targets = table.get(source, {})
        for target in STAGE_ORDER:
            if target in targets:
                name = "(new lead)" if source is None else source.value
                events = ", ".join(f"`{e}`" for e in targets[target])
                out.append(f"| {name} | {target.value} | {events} |")
    out += [
        "",
        "In an expansion cycle, `leadflow.events.lifecycle.EXPANSION_MOVES` replaces these "
        "entries:",
        "",
        "| event | from | to |",
        "|---|---|---|",
    ]
    for event_type in sorted(EXPANSION_MOVES):
        move = EXPANSION_MOVES[event_type]
        sources = ", ".join(s.value for s in STAGE_ORDER if s in move.sources)
        out.append(f"| `{event_type}` | {sources} | {move.target.value} |")
    hand_raises = sorted(t for t, m in MOVES.items() if m.keeps)
    active = ", ".join(s.value for s in STAGE_ORDER if s in ACTIVE_STAGES)
    out += [
        "",
        "Also accepted, without changing the stage: "
        f"{', '.join(f'`{e}`' for e in hand_raises)} on a lead in an open stage, `won` or "
        "`customer` (scoring decides whether a customer's hand-raise opens an expansion); "
        "an event whose stage is the lead's current open stage (a repeat). From "
        f"`{Stage.ON_HOLD.value}` a lead may also return to the stage it was held from "
        f"({active}) or make any move allowed from that stage. `won` is followed at once "
        "by `customer.became`; `lost`, `disqualified` and `churned` are terminal; lost and "
        "disqualified leads may re-engage (back to inquiry or nurture), churned ones by a new "
        "hand-raise (a new-business win-back). Anything else raises `TransitionRefused` "
        "(HTTP 409).",
        "",
    ]
    return out


# -- render, write, check -------------------------------------------------------------------


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # repeated sub-objects are written out, never as &anchors


def _yaml(data: Any) -> str:
    header = "# Generated by `python -m leadflow.events.schemagen` (make schemas). Do not edit.\n"
    body = yaml.dump(
        _sorted(data, top_level=True),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return header + body


_TOP_ORDER = (
    "asyncapi",
    "info",
    "defaultContentType",
    "servers",
    "channels",
    "operations",
    "components",
)


def _sorted(data: Any, *, top_level: bool = False) -> Any:
    """Dicts with sorted keys (the top level in the usual AsyncAPI order), recursively."""
    if isinstance(data, dict):
        keys = sorted(data, key=lambda k: (_TOP_ORDER.index(k), k)) if top_level else sorted(data)
        return {k: _sorted(data[k]) for k in keys}
    if isinstance(data, list):
        return [_sorted(item) for item in data]
    return data


def generate(reg: Registry | None = None) -> dict[str, str]:
    """Relative path (POSIX) → file content, for every generated file."""
    classes = payload_classes(reg)
    files = {schema_path(cls): _json(payload_schema(cls)) for cls in classes}
    files[ENVELOPE_SCHEMA] = _json(envelope_schema())
    files[ASYNCAPI_PATH] = _yaml(asyncapi_document(classes))
    files[EVENTS_MD_PATH] = events_markdown(classes)
    return dict(sorted(files.items()))


def _extra_schema_files(root: Path, expected: Iterable[str]) -> list[str]:
    wanted = set(expected)
    folder = root / SCHEMAS_DIR
    if not folder.is_dir():
        return []
    found = (p.relative_to(root).as_posix() for p in folder.glob("*.json"))
    return sorted(p for p in found if p not in wanted)


def check(root: Path, reg: Registry | None = None) -> list[str]:
    """Problems (``differs: path`` / ``missing: path`` / ``extra: path``); empty when in sync."""
    files = generate(reg)
    problems = []
    for rel, content in files.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_bytes() != content.encode():
            problems.append(f"differs: {rel}")
    problems += [f"extra: {rel}" for rel in _extra_schema_files(root, files)]
    return problems


def write(root: Path, reg: Registry | None = None) -> list[str]:
    """Write every generated file, remove stale schema files; return what changed."""
    files = generate(reg)
    changed = []
    for rel, content in files.items():
        path = root / rel
        if path.is_file() and path.read_bytes() == content.encode():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode())
        changed.append(f"wrote: {rel}")
    for rel in _extra_schema_files(root, files):
        (root / rel).unlink()
        changed.append(f"removed: {rel}")
    return changed


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest directory holding libs/events/pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "libs/events/pyproject.toml").is_file():
            return candidate
    source_root = Path(__file__).resolve().parents[5]
    if (source_root / "libs/events/pyproject.toml").is_file():
        return source_root
    raise SystemExit("cannot find the repository root (libs/events/pyproject.toml); use --root")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow.events.schemagen",
        description="Write (or --check) the event JSON Schemas, docs/asyncapi.yaml and "
        "docs/events.md generated from the catalogue.",
    )
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    args = parser.parse_args(argv)
    root = args.root.resolve() if args.root else find_root()
    if args.check:
        problems = check(root)
        if problems:
            print("event contracts are out of date with the catalogue code:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            print(f"regenerate them with: {REGENERATE}", file=sys.stderr)
            return 1
        print(f"event contracts in sync ({len(generate())} files)")
        return 0
    changes = write(root)
    for change in changes:
        print(change)
    print(f"{len(changes)} file(s) changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
