"""deploy/compose.yaml is a valid Compose file (compose-spec JSON Schema, offline) and starts
things in the right order: Kafka and Postgres healthy, then topics and per-schema migrations
completed, then the services; with named volumes, limits and hardening.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy._support import DEPLOY, ROOT, SERVICES, env_file

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    raw = (SCHEMA_DIR / "compose-spec.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "vendored schema changed: see README"
    schema = json.loads(raw)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    "mutate, where",
    [
        (
            lambda c: c["services"]["scoring"]["depends_on"]["kafka"].update(condition="healthy"),
            "condition",
        ),
        (lambda c: c["services"]["intake"].update(restart_policy="always"), "restart_policy"),
        (lambda c: c["services"]["kafka"]["deploy"]["resources"]["limits"].update(ram="1G"), "ram"),
    ],
    ids=["bad-depends-on-condition", "unknown-service-key", "unknown-limit"],
)
def test_schema_validation_catches_mistakes(
    compose: dict[str, Any], validator: jsonschema.Draft202012Validator, mutate: Any, where: str
) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    messages = [e.message for e in validator.iter_errors(broken)]
    assert messages, "a broken compose file validated"
    assert any(where in m for m in messages), messages


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the topics job decides partitions
    assert "healthcheck" in kafka and "healthcheck" in compose["services"]["postgres"]
    assert compose["services"]["postgres"]["image"].startswith("postgres:")


def test_pinned_kafka_version_matches_the_local_launcher(compose: dict[str, Any]) -> None:
    pom = (DEPLOY / "local" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version, "deploy/local/kafka/pom.xml has no kafka.version"
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"


def test_topics_job_runs_once_after_kafka_is_healthy(compose: dict[str, Any]) -> None:
    topics = compose["services"]["topics"]
    assert topics["command"][:4] == ["python", "-m", "leadflow.events.cli", "create-topics"]
    assert "--partitions" in topics["command"] and "--replication-factor" in topics["command"]
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert topics["restart"] == "no"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_one_migration_job_per_schema_before_its_service(
    compose: dict[str, Any], service: Any
) -> None:
    migrate = compose["services"][f"migrate-{service.name}"]
    assert migrate["command"] == ["python", "-m", "leadflow.events.cli", "migrate", service.name]
    assert migrate["environment"]["LEADFLOW_DB_SCHEMA"] == service.schema
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    assert migrate["image"] == compose["services"][service.name]["image"]

    depends = compose["services"][service.name]["depends_on"]
    assert depends[f"migrate-{service.name}"] == {"condition": "service_completed_successfully"}
    if service.name != "console":  # the console neither produces nor consumes events
        assert depends["topics"] == {"condition": "service_completed_successfully"}
        assert depends["kafka"] == {"condition": "service_healthy"}
    assert depends["postgres"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_is_configured_limited_hardened_and_health_checked(
    compose: dict[str, Any], service: Any
) -> None:
    svc = compose["services"][service.name]
    assert svc["environment"]["LEADFLOW_PORT"] == str(service.port)
    assert svc["environment"]["LEADFLOW_DB_SCHEMA"] == service.schema
    assert svc["ports"] == [f"{service.port}:{service.port}"]
    assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert svc["build"]["args"]["SERVICE"] == service.name
    assert (ROOT / "deploy" / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()
    assert {"cpus", "memory"} <= set(svc["deploy"]["resources"]["limits"])
    assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    assert svc["user"] != "0" and not svc["user"].startswith("0:")
    assert svc["healthcheck"]["test"][:2] == ["CMD", "python"]
    grace = float(env_file(ROOT / ".env.example")["LEADFLOW_SHUTDOWN_GRACE_SECONDS"] or 0)
    assert int(svc["stop_grace_period"].rstrip("s")) > grace


def test_every_container_has_resource_limits(compose: dict[str, Any]) -> None:
    unlimited = [
        n
        for n, s in compose["services"].items()
        if "limits" not in s.get("deploy", {}).get("resources", {})
    ]
    assert not unlimited, unlimited


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"{name} uses a bind mount: {volume}"
            used.add(source)
    assert used == declared == {"kafka-data", "postgres-data"}


def test_interpolated_variables_are_defined_in_env_example() -> None:
    text = COMPOSE.read_text()
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    defined = {k for k, v in env_file(ROOT / ".env.example").items() if v is not None}
    assert referenced <= defined, sorted(referenced - defined)
