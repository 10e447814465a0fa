"""Every environment variable a service reads is documented and shipped everywhere it runs.

The variables are DISCOVERED from each service's settings class (pydantic-settings fields and
aliases), so a new setting without an entry in .env.example, the Kubernetes ConfigMaps/Secrets
and the README's table fails here, naming it. The shipped values must also be accepted by the
settings classes themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy._support import (
    DEPLOY,
    K8S,
    OVERLAYS,
    ROOT,
    SERVICES,
    Rendered,
    env_file,
    is_secret,
    render,
    service_variables,
    settings_class,
)


@pytest.fixture(scope="module")
def variables() -> dict[str, set[str]]:
    return service_variables()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    out = tmp_path_factory.mktemp("k8s-env")
    result = {overlay: render(overlay, out) for overlay in OVERLAYS}
    for r in result.values():
        assert r.returncode == 0, r.output
    return result


def _env_sources(r: Rendered, service: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """ConfigMap data and Secret keys reachable from the service container's envFrom/env."""
    deployment = r.named("Deployment", service)
    container = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == service
    )
    config: dict[str, str] = {}
    secrets: dict[str, set[str]] = {}
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in r.of_kind("ConfigMap")}
    shipped_secrets = {o["metadata"]["name"]: o for o in r.of_kind("Secret")}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config.update(configmaps[source["configMapRef"]["name"]])
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            secrets[name] = _secret_keys(r, name, shipped_secrets)
    for item in container.get("env", []):
        config[item["name"]] = item.get("value", "")
    return config, secrets


def _secret_keys(r: Rendered, name: str, shipped: dict[str, Any]) -> set[str]:
    if name in shipped:
        secret = shipped[name]
        return set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    # Not shipped (prod): the overlay documents the keys it expects in secrets/<name>.env.example.
    example = K8S / "overlays" / r.overlay / "secrets" / f"{name}.env.example"
    return set(env_file(example)) if example.exists() else set()


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_every_variable_is_in_env_example(service: str, variables: dict[str, set[str]]) -> None:
    documented = set(env_file(ROOT / ".env.example"))
    missing = sorted(variables[service] - documented)
    assert not missing, f".env.example lacks variables {service} reads: {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_every_variable_reaches_the_kubernetes_pod(
    service: str, overlay: str, variables: dict[str, set[str]], rendered: dict[str, Rendered]
) -> None:
    config, secrets = _env_sources(rendered[overlay], service)
    secret_keys = set().union(*secrets.values()) if secrets else set()
    missing = sorted(variables[service] - set(config) - secret_keys)
    assert not missing, (
        f"{overlay}: {service}'s ConfigMaps/Secrets lack {missing} "
        f"(plain settings go in deploy/k8s/base/*.env, secrets in the Secrets)"
    )
    leaked = sorted(name for name in config if is_secret(name))
    assert not leaked, f"{overlay}: secret-looking variables in a ConfigMap of {service}: {leaked}"


def test_prod_documents_every_secret_key_dev_generates(rendered: dict[str, Rendered]) -> None:
    dev_secrets = {
        o["metadata"]["name"].rsplit("-", 1)[0]: set(o.get("data") or {})
        for o in rendered["dev"].of_kind("Secret")
        if o["metadata"]["name"].startswith("leadflow-")
    }
    assert "leadflow-secrets" in dev_secrets
    for name, keys in dev_secrets.items():
        example = K8S / "overlays" / "prod" / "secrets" / f"{name}.env.example"
        assert example.exists(), f"prod overlay does not document Secret {name} ({example})"
        assert set(env_file(example)) == keys, f"{name}: dev and prod disagree on the keys"


def test_every_variable_is_in_the_readme_table(variables: dict[str, set[str]]) -> None:
    readme = ROOT / "README.md"
    wanted = set().union(*variables.values())
    if not readme.exists():
        pytest.fail(f"README.md missing: its configuration table must list {sorted(wanted)}")
    table_text = "\n".join(
        line for line in readme.read_text().splitlines() if line.lstrip().startswith("|")
    )
    in_table = set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", table_text))
    missing = sorted(wanted - in_table)
    assert not missing, f"README.md configuration table lacks: {missing}"


def _settings_from(env: dict[str, str], service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    cls = settings_class(next(s for s in SERVICES if s.name == service))
    import os

    for name in list(os.environ):
        if name.startswith("LEADFLOW_") or name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)


@pytest.mark.parametrize("service", [s for s in SERVICES], ids=lambda s: s.name)
def test_env_example_values_are_accepted_by_the_settings(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose_env = {k: v for k, v in env_file(ROOT / ".env.example").items() if v is not None}
    compose_env |= {"LEADFLOW_DB_SCHEMA": service.schema, "LEADFLOW_PORT": str(service.port)}
    settings = _settings_from(compose_env, service.name, monkeypatch)
    assert settings.port == service.port
    assert settings.schema_name == service.schema
    assert settings.host == "0.0.0.0"
    assert settings.migrate_on_start is False  # compose runs the migrate-<svc> jobs first


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", [s for s in SERVICES], ids=lambda s: s.name)
def test_configmap_values_are_accepted_by_the_settings(
    service: Any, overlay: str, rendered: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = _env_sources(rendered[overlay], service.name)
    settings = _settings_from(config, service.name, monkeypatch)
    assert settings.port == service.port
    assert settings.schema_name == service.schema
    assert settings.host == "0.0.0.0"


def test_compose_loads_the_env_example() -> None:
    import yaml

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in SERVICES:
        paths = [Path(e["path"]).name for e in compose["services"][service.name]["env_file"]]
        assert ".env.example" in paths, f"{service.name} does not load .env.example"


# Read by deploy tooling (entrypoint, compose interpolation), not by the settings classes.
DEPLOY_ONLY = {
    "LEADFLOW_SERVICE",
    "LEADFLOW_TOPIC_PARTITIONS",
    "LEADFLOW_IMAGE_REGISTRY",
    "LEADFLOW_IMAGE_TAG",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
}


def test_env_example_has_no_stale_variables(variables: dict[str, set[str]]) -> None:
    read = set().union(*variables.values())
    stale = sorted(set(env_file(ROOT / ".env.example")) - read - DEPLOY_ONLY)
    assert not stale, f".env.example documents variables no service reads: {stale}"


@pytest.mark.parametrize("service", [s for s in SERVICES], ids=lambda s: s.name)
def test_service_configmap_has_no_stale_variables(
    service: Any, variables: dict[str, set[str]]
) -> None:
    shipped = set(env_file(K8S / "base" / f"{service.name}.env"))
    stale = sorted(shipped - variables[service.name])
    assert not stale, f"deploy/k8s/base/{service.name}.env sets variables it ignores: {stale}"


def test_common_configmap_holds_only_what_every_service_reads(
    variables: dict[str, set[str]],
) -> None:
    shared = set.intersection(*variables.values())
    extra = sorted(set(env_file(K8S / "base" / "common.env")) - shared)
    assert not extra, f"common.env sets variables not every service reads: {extra}"
