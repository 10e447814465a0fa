"""The runbook and the probes describe the services as they are, not as they were planned.

Each service's app is built (no I/O happens before its lifespan starts) and its OpenAPI paths
are compared with what docs/runbook.md tells an SRE to call and what the manifests probe.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

import pytest
import yaml

from tests.deploy._support import DEPLOY, ROOT, SERVICES, Service

RUNBOOK = ROOT / "docs" / "runbook.md"

# (service, method, path) the runbook sends operators to.
RUNBOOK_ENDPOINTS = [
    ("intake", "post", "/v1/admin/api-keys"),
    ("intake", "get", "/v1/admin/api-keys"),
    ("intake", "delete", "/v1/admin/api-keys/{key_id}"),
    ("intake", "delete", "/v1/leads/{lead_id}"),
    ("intake", "get", "/v1/leads"),
    ("analytics", "post", "/v1/projections/{name}/rebuild"),
    ("analytics", "get", "/v1/projections/{name}"),
    ("analytics", "get", "/v1/projections"),
]


@cache
def _paths(service: Service) -> dict[str, Any]:
    module = importlib.import_module(f"leadflow.{service.module}.app")
    paths: dict[str, Any] = module.create_app().openapi()["paths"]
    return paths


def _service(name: str) -> Service:
    return next(s for s in SERVICES if s.name == name)


def test_runbook_covers_the_operations_sres_need() -> None:
    text = RUNBOOK.read_text().lower()
    for topic in (
        "starting",
        "scaling",
        "partitions",
        "dead-letter",
        "replay",
        "rebuilding a projection",
        "rotating keys",
        "erasing a lead",
        "upgrading",
        "migrations",
    ):
        assert topic in text, f"runbook lacks a section on {topic!r}"


@pytest.mark.parametrize("service, method, path", RUNBOOK_ENDPOINTS)
def test_runbook_endpoints_exist(service: str, method: str, path: str) -> None:
    paths = _paths(_service(service))
    assert method in paths.get(path, {}), f"{service} does not serve {method.upper()} {path}"
    # The runbook writes placeholders its own way (<lead_id>, <name>): match any segment.
    pattern = re.sub(r"\\\{[^}]+\\\}", r"[^/\\s?\"]+", re.escape(path)) + r"(?![\w/-])"
    assert re.search(pattern, RUNBOOK.read_text()), f"runbook does not mention {path}"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_probed_paths_are_served(service: Service) -> None:
    paths = _paths(service)
    manifest = yaml.safe_load_all((DEPLOY / "k8s" / "base" / f"{service.name}.yaml").read_text())
    deployment = next(d for d in manifest if d["kind"] == "Deployment")
    probed = {
        container[probe]["httpGet"]["path"]
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
        if probe in container
    }
    assert probed == {"/healthz", "/readyz"}
    for path in probed | {"/metrics"}:
        assert "get" in paths.get(path, {}), f"{service.name} does not serve GET {path}"


def test_analytics_rebuild_cli_names_match_the_runbook() -> None:
    projections = importlib.import_module("leadflow.analytics.projections")
    names = list(projections.PROJECTION_NAMES)
    assert names, "analytics has no projections"
    assert "python -m leadflow.analytics rebuild <name|all>" in RUNBOOK.read_text()
