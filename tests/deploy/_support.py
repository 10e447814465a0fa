"""Shared helpers of the deploy/ tests: paths, settings discovery, the k8svalidate tool.

Kept free of fixtures so every test module can import what it needs.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
TOOL_DIR = DEPLOY / "tools" / "k8svalidate"


@dataclass(frozen=True)
class Service:
    name: str  # directory under services/, compose and Kubernetes name
    module: str  # python package leadflow.<module>
    schema: str  # Postgres schema
    port: int
    consumer: bool  # consumes Kafka topics (HPA bounded by partitions)


SERVICES = (
    Service("console", "console", "console", 8000, False),
    Service("intake", "intake", "intake", 8001, False),
    Service("scoring", "scoring", "scoring", 8002, True),
    Service("routing", "routing", "routing", 8003, True),
    Service("sla-monitor", "sla_monitor", "sla", 8004, True),
    Service("analytics", "analytics", "analytics", 8005, True),
    Service("notify", "notify", "notify", 8006, True),
)

# Promised by the kernel's contract; checked even before settings modules exist.
KERNEL_VARIABLES = frozenset(
    {
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "LEADFLOW_DB_SCHEMA",
        "LEADFLOW_TOPIC_PREFIX",
        "LEADFLOW_ADMIN_TOKEN",
        "LEADFLOW_HOST",
        "LEADFLOW_PORT",
        "LEADFLOW_MAX_BODY_BYTES",
        "LEADFLOW_CONSUMER_BATCH_SIZE",
        "LEADFLOW_MAX_ATTEMPTS",
        "LEADFLOW_RUN_CONSUMERS",
        "LEADFLOW_LOG_LEVEL",
        "LEADFLOW_SHUTDOWN_GRACE_SECONDS",
    }
)
# Fields that are settings in code but not configuration for operators.
NOT_OPERATOR_FACING = frozenset({"LEADFLOW_SERVICE_NAME"})
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|_KEY$|^DATABASE_URL$)")


def is_secret(variable: str) -> bool:
    return bool(SECRET_NAME.search(variable))


# --------------------------------------------------------------------------- settings discovery


def settings_class(service: Service) -> type[Any]:
    """The service's ServiceSettings subclass. Every service ships one: a missing settings
    module is a defect the deploy checks report (an import error), never a reason to skip."""
    base = importlib.import_module("leadflow.events.settings").ServiceSettings
    module = importlib.import_module(f"leadflow.{service.module}.settings")
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{module.__name__} should define one ServiceSettings subclass: {found}"
    return found[0]


def env_names(cls: type[Any]) -> set[str]:
    """Environment variables a pydantic-settings class reads (primary name of each field)."""
    from pydantic import AliasChoices, AliasPath

    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            first = alias.choices[0]
            alias = first if isinstance(first, str) else None
        if isinstance(alias, AliasPath):
            alias = str(alias.path[0])
        name = alias if isinstance(alias, str) else prefix + field_name
        names.add(name.upper())
    return names - NOT_OPERATOR_FACING


def service_variables() -> dict[str, set[str]]:
    """The environment variables each service reads."""
    return {
        service.name: env_names(settings_class(service)) | KERNEL_VARIABLES for service in SERVICES
    }


# --------------------------------------------------------------------------- files


def env_file(path: Path) -> dict[str, str | None]:
    """KEY=VALUE lines of a dotenv file; a commented-out assignment counts as documented (None)."""
    values: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not match:
            continue
        if match.group(1):
            values.setdefault(match.group(2), None)
        else:
            values[match.group(2)] = match.group(3)
    return values


def load_yaml_stream(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# --------------------------------------------------------------------------- k8svalidate


def _tool_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(TOOL_DIR.glob("*")):
        if path.suffix in (".go", ".mod", ".sum"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


NETWORK_TROUBLE = ("dial tcp", "no such host", "i/o timeout", "connection refused", "TLS handshake")


def k8svalidate() -> Path:
    """The validator binary: $LEADFLOW_K8SVALIDATE, else built once per source version into
    ~/.cache/leadflow (Go's module and build caches under $HOME make rebuilds cheap)."""
    configured = os.environ.get("LEADFLOW_K8SVALIDATE")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("LEADFLOW_CACHE_DIR", Path.home() / ".cache" / "leadflow"))
    binary = cache / f"k8svalidate-{_tool_digest()}"
    if binary.exists():
        return binary
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        pytest.skip(
            "k8svalidate cannot be built: no Go toolchain (install Go, or set LEADFLOW_K8SVALIDATE)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(f".tmp{os.getpid()}")
    print(f"building {binary} (first run on this machine: downloads modules, ~2-3 min) ...")
    result = subprocess.run(
        [go, "build", "-trimpath", "-buildvcs=false", "-o", str(tmp), "."],
        cwd=TOOL_DIR,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    if result.returncode != 0:
        if any(marker in result.stderr for marker in NETWORK_TROUBLE):
            pytest.skip(
                "k8svalidate cannot be built: Go module proxy unreachable:\n"
                + result.stderr[-2000:]
            )
        pytest.fail(f"go build of k8svalidate failed:\n{result.stderr[-4000:]}")
    tmp.replace(binary)
    return binary


@dataclass
class Rendered:
    overlay: str
    returncode: int
    output: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, (
            f"{self.overlay}: expected one {kind}/{name}, found {len(matches)}"
        )
        return matches[0]


def render(overlay: str, out_dir: Path) -> Rendered:
    out = out_dir / f"{overlay}.yaml"
    result = subprocess.run(
        [str(k8svalidate()), "-o", str(out), str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    objects = load_yaml_stream(out.read_text()) if out.exists() else []
    return Rendered(overlay, result.returncode, result.stdout + result.stderr, objects)
