"""The checked-in event contracts (JSON Schemas, AsyncAPI, docs/events.md) match the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

import leadflow.events.catalogue  # noqa: F401 - registers the catalogue
from leadflow.events import schemagen
from leadflow.events.envelope import dlq_topic_for, topic_for
from leadflow.events.lifecycle import target_stage
from leadflow.events.registry import registry

ROOT = schemagen.find_root(Path(__file__).parent)


def test_checked_in_contracts_match_the_catalogue_code() -> None:
    problems = schemagen.check(ROOT)
    assert not problems, (
        "event contracts out of date with the catalogue code:\n  "
        + "\n  ".join(problems)
        + f"\nregenerate them with: {schemagen.REGENERATE}"
    )


def test_generation_is_deterministic() -> None:
    first = schemagen.generate()
    assert first == schemagen.generate()
    assert list(first) == sorted(first)


def test_check_lists_differing_missing_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = schemagen.write(tmp_path)
    assert len(written) == len(schemagen.generate())
    assert schemagen.check(tmp_path) == []
    assert schemagen.main(["--check", "--root", str(tmp_path)]) == 0

    captured = tmp_path / "libs/events/schemas/lead.captured.v1.json"
    captured.write_text(captured.read_text().replace('"inquiry_id"', '"inquiry"'))
    (tmp_path / "docs/events.md").unlink()
    (tmp_path / "libs/events/schemas/lead.teleported.v1.json").write_text("{}\n")

    assert schemagen.check(tmp_path) == [
        "missing: docs/events.md",
        "differs: libs/events/schemas/lead.captured.v1.json",
        "extra: libs/events/schemas/lead.teleported.v1.json",
    ]
    capsys.readouterr()
    assert schemagen.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "differs: libs/events/schemas/lead.captured.v1.json" in err
    assert "python -m leadflow.events.schemagen" in err

    assert schemagen.main(["--root", str(tmp_path)]) == 0
    assert schemagen.check(tmp_path) == []
    assert not (tmp_path / "libs/events/schemas/lead.teleported.v1.json").exists()


def test_every_event_type_and_version_has_a_valid_json_schema() -> None:
    files = schemagen.generate()
    for cls in schemagen.payload_classes():
        schema = json.loads(files[schemagen.schema_path(cls)])
        Draft202012Validator.check_schema(schema)
        assert schema["x-event-type"] == cls.event_type
        assert schema["x-schema-version"] == cls.schema_version
        assert set(schema["properties"]) == set(cls.model_fields)
        stage = target_stage(cls.event_type)
        assert schema["x-lifecycle-stage"] == (stage.value if stage else None)
    Draft202012Validator.check_schema(json.loads(files[schemagen.ENVELOPE_SCHEMA]))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_describes_topics_keys_headers_and_who_sends_and_receives() -> None:
    doc = yaml.safe_load(schemagen.generate()[schemagen.ASYNCAPI_PATH])
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        _resolve(doc, ref)  # every $ref points at something

    producers = ["intake", "scoring", "routing", "sla", "notify"]
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {topic_for(p) for p in producers} | {dlq_topic_for(p) for p in producers}

    for producer in producers:
        channel = doc["channels"][producer]
        messages = [_resolve(doc, m["$ref"]) for m in channel["messages"].values()]
        assert {m["name"] for m in messages} == {
            c.event_type for c in registry.by_producer(producer)
        }
        for message in messages:
            assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
            headers = _resolve(doc, message["headers"]["allOf"][0]["$ref"])
            assert set(headers["required"]) == {
                "event_type",
                "schema_version",
                "traceparent",
                "event_id",
            }

    ops = doc["operations"]
    sends = {
        (o["channel"]["$ref"].rsplit("/", 1)[1]) for n, o in ops.items() if n.endswith("_send")
    }
    assert sends == set(producers)
    assert ops["intake_send"]["action"] == "send"
    expected_receives = {
        "scoring": {"intake", "routing"},
        "routing": {"intake", "scoring", "sla"},
        "sla_monitor": {"routing", "scoring"},
        "analytics": {"intake", "scoring", "routing", "sla"},
        "notify": {"intake", "scoring", "routing", "sla"},
    }
    for service, topics in expected_receives.items():
        received = {
            o["channel"]["$ref"].rsplit("/", 1)[1]
            for n, o in ops.items()
            if n.startswith(f"{service}_receive_") and o["action"] == "receive"
        }
        assert received == topics, service
    assert not any(n.startswith("intake_receive_") for n in ops)


def test_events_md_has_a_row_per_event_with_its_stage() -> None:
    text = schemagen.generate()[schemagen.EVENTS_MD_PATH]
    for cls in schemagen.payload_classes():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{cls.event_type}` |"))
        stage = target_stage(cls.event_type)
        assert cls.summary in row
        assert (stage.value if stage else "—") in row
        for field in cls.personal_fields:
            assert f"`{field}`" in row
    assert "## leadflow.sla" in text and "## Lifecycle" in text
