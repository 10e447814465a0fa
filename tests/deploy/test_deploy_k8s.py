"""The kustomize overlays render, validate against the Kubernetes types, and keep the rules
an SRE relies on: meaningful probes, limits, hardening, drain time, PDBs, and consumer HPAs
that never outgrow the topics' partitions.

Rendering and type validation are done by deploy/tools/k8svalidate (embedded kustomize +
strict decoding into k8s.io/api types), built once per machine; see tests/deploy/_support.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy._support import (
    K8S,
    OVERLAYS,
    SERVICES,
    Rendered,
    k8svalidate,
    render,
)

CONSUMERS = [s for s in SERVICES if s.consumer]
PRESTOP_SECONDS_DEFAULT = 0


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    out = tmp_path_factory.mktemp("k8s")
    return {overlay: render(overlay, out) for overlay in OVERLAYS}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    return next(c for c in _pod(deployment)["containers"] if c["name"] == name)


def _config_value(r: Rendered, deployment: dict[str, Any], key: str) -> str:
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in r.of_kind("ConfigMap")}
    for source in _main_container(deployment).get("envFrom", []):
        data = configmaps.get(source.get("configMapRef", {}).get("name", ""), {})
        if key in data:
            return str(data[key])
    raise AssertionError(f"{key} not configured for {deployment['metadata']['name']}")


def _partitions(r: Rendered) -> int:
    job = r.named("Job", "leadflow-topics")
    container = _pod(job)["containers"][0]
    argv = container.get("command", []) + container.get("args", [])
    assert "create-topics" in argv
    return int(argv[argv.index("--partitions") + 1])


def _replication_factor(r: Rendered) -> int:
    container = _pod(r.named("Job", "leadflow-topics"))["containers"][0]
    argv = container.get("command", []) + container.get("args", [])
    return int(argv[argv.index("--replication-factor") + 1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_against_kubernetes_types(
    overlay: str, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    assert r.returncode == 0, f"k8svalidate rejected overlay {overlay}:\n{r.output}"
    assert "0 errors" in r.output
    kinds = {o["kind"] for o in r.objects}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
        "Namespace",
    } <= kinds


def test_validator_rejects_unknown_fields_and_dangling_references(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers:
        - name: broken
          image: x
          livenessProbes: {}
          envFrom: [{configMapRef: {name: not-shipped}}]
          resources: {limits: {memory: lots}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: nothing}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: nobody}}}
"""
    )
    result = subprocess.run(
        [str(k8svalidate()), "-f", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # A bad quantity is a type error: the document does not decode at all.
    assert "quantities must match" in result.stdout, result.stdout

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        bad.read_text().replace("          resources: {limits: {memory: lots}}\n", "")
    )
    result = subprocess.run(
        [str(k8svalidate()), "-f", str(unknown)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert 'unknown field "spec.template.spec.containers[0].livenessProbes"' in result.stdout
    assert "does not match the pod template labels" in result.stdout
    assert 'ConfigMap "not-shipped"' in result.stdout
    assert "PodDisruptionBudget/nothing: selector matches no workload" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_deployment_probes_resources_and_hardening(
    overlay: str, service: Any, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    deployment = r.named("Deployment", service.name)
    pod = _pod(deployment)
    container = _main_container(deployment)

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == service.port
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", service.port)
    assert int(_config_value(r, deployment, "LEADFLOW_PORT")) == service.port
    assert _config_value(r, deployment, "LEADFLOW_DB_SCHEMA") == service.schema

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for c in pod.get("initContainers", []) + pod["containers"]:
        assert {"requests", "limits"} <= set(c.get("resources", {})), f"{c['name']}: resources"
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
        sc = c.get("securityContext", {})
        assert sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: read-only root fs"
        assert sc.get("allowPrivilegeEscalation") is False, c["name"]
        assert sc.get("runAsNonRoot", pod["securityContext"]["runAsNonRoot"]) is True
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), c["name"]
        assert c["image"].rsplit("/", 1)[-1].startswith(f"{service.name}:"), c["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_migrations_run_before_the_service_for_its_own_schema(
    overlay: str, service: Any, rendered: dict[str, Rendered]
) -> None:
    deployment = rendered[overlay].named("Deployment", service.name)
    init = _pod(deployment).get("initContainers", [])
    migrate = [c for c in init if "migrate" in c.get("command", []) + c.get("args", [])]
    assert len(migrate) == 1, f"{service.name}: one migrate init container expected"
    argv = migrate[0]["command"] + migrate[0].get("args", [])
    assert argv[-2:] == ["migrate", service.name]
    assert argv[:3] == ["python", "-m", "leadflow.events.cli"]
    # Same image (and so the same migrations) as the service container it precedes.
    assert migrate[0]["image"] == _main_container(deployment)["image"]
    assert migrate[0]["envFrom"] == _main_container(deployment)["envFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_termination_grace_covers_prestop_and_shutdown_grace(
    overlay: str, service: Any, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    deployment = r.named("Deployment", service.name)
    grace = float(_config_value(r, deployment, "LEADFLOW_SHUTDOWN_GRACE_SECONDS"))
    container = _main_container(deployment)
    prestop = PRESTOP_SECONDS_DEFAULT
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if command:
        assert command[0] == "sleep", command
        prestop = int(command[1])
    period = _pod(deployment)["terminationGracePeriodSeconds"]
    assert period >= prestop + grace, (
        f"{service.name}: terminationGracePeriodSeconds {period} < preStop {prestop} + "
        f"LEADFLOW_SHUTDOWN_GRACE_SECONDS {grace}: the kubelet would SIGKILL mid-batch"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_service_has_a_pdb_and_a_service_selecting_its_pods(
    overlay: str, service: Any, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    labels = r.named("Deployment", service.name)["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    pdbs = [
        p
        for p in r.of_kind("PodDisruptionBudget")
        if selects(p["spec"]["selector"].get("matchLabels", {}))
    ]
    assert len(pdbs) == 1, f"{service.name}: exactly one PodDisruptionBudget expected"
    assert "maxUnavailable" in pdbs[0]["spec"] or "minAvailable" in pdbs[0]["spec"]
    services = [s for s in r.of_kind("Service") if selects(s["spec"].get("selector", {}))]
    assert len(services) == 1
    assert [p["port"] for p in services[0]["spec"]["ports"]] == [service.port]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", CONSUMERS, ids=lambda s: s.name)
def test_consumer_hpa_never_exceeds_topic_partitions(
    overlay: str, service: Any, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    hpas = [
        h
        for h in r.of_kind("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name}
    ]
    assert len(hpas) == 1, f"{service.name}: one HPA expected in {overlay}"
    spec = hpas[0]["spec"]
    partitions = _partitions(r)
    assert spec["maxReplicas"] <= partitions, (
        f"{overlay}/{service.name}: maxReplicas {spec['maxReplicas']} > {partitions} partitions "
        "(extra consumers in the group would sit idle)"
    )
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    replicas = r.named("Deployment", service.name)["spec"]["replicas"]
    assert replicas <= partitions


def test_prod_topics_are_replicated_and_dev_fits_one_broker(
    rendered: dict[str, Rendered],
) -> None:
    assert _replication_factor(rendered["prod"]) >= 3
    assert _replication_factor(rendered["dev"]) == 1
    assert _partitions(rendered["prod"]) > _partitions(rendered["dev"])
    dev_kafka = rendered["dev"].named("StatefulSet", "kafka")
    assert _pod(dev_kafka)["containers"][0]["image"].startswith("apache/kafka:")


def test_prod_runs_a_cluster_setup_acks_all_min_isr_and_rack_aware_consumers(
    rendered: dict[str, Rendered],
) -> None:
    """docs/capacity.md: replication 3 with min.insync.replicas 2 (the producers always write
    with acks=all), topics a service creates when missing sized like the job's, and every
    pod's client.rack taken from its zone label."""
    prod, dev = rendered["prod"], rendered["dev"]
    container = _pod(prod.named("Job", "leadflow-topics"))["containers"][0]
    argv = container.get("command", []) + container.get("args", [])
    assert argv[argv.index("--min-insync-replicas") + 1] == "2"
    for service in SERVICES:
        deployment = prod.named("Deployment", service.name)
        assert _config_value(prod, deployment, "LEADFLOW_TOPIC_REPLICATION_FACTOR") == str(
            _replication_factor(prod)
        )
        assert _config_value(prod, deployment, "LEADFLOW_TOPIC_PARTITIONS") == str(
            _partitions(prod)
        )
        assert _config_value(prod, deployment, "LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS") == "2"
        env = {e["name"]: e for e in _main_container(deployment).get("env", [])}
        assert env["LEADFLOW_KAFKA_CLIENT_RACK"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['topology.kubernetes.io/zone']"
        )
        dev_deployment = dev.named("Deployment", service.name)
        assert _config_value(dev, dev_deployment, "LEADFLOW_TOPIC_REPLICATION_FACTOR") == "1"
        assert _config_value(dev, dev_deployment, "LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS") == ""


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_job_is_idempotent_rerunnable_and_configured(
    overlay: str, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    job = r.named("Job", "leadflow-topics")
    assert job["spec"]["backoffLimit"] >= 3  # Kafka may still be starting
    assert "ttlSecondsAfterFinished" in job["spec"]  # gone before the next apply recreates it
    names = {
        s["configMapRef"]["name"].rsplit("-", 1)[0]
        for s in _pod(job)["containers"][0]["envFrom"]
        if "configMapRef" in s
    }
    assert "leadflow-common" in names  # KAFKA_BOOTSTRAP_SERVERS and the topic prefix


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_its_namespace_and_external_configuration(
    overlay: str, rendered: dict[str, Rendered]
) -> None:
    r = rendered[overlay]
    namespaces = {o["metadata"]["name"] for o in r.of_kind("Namespace")}
    assert len(namespaces) == 1
    ns = namespaces.pop()
    assert all(o["metadata"].get("namespace") == ns for o in r.objects if o["kind"] != "Namespace")
    bootstrap = _config_value(r, r.named("Deployment", "intake"), "KAFKA_BOOTSTRAP_SERVERS")
    if overlay == "prod":
        assert r.of_kind("StatefulSet") == [], "prod uses external Kafka and Postgres"
        assert not any(
            o["metadata"]["name"].startswith("leadflow-secrets") for o in r.of_kind("Secret")
        ), "prod must not ship credentials"
        assert bootstrap.count(":9092") >= 3
    else:
        assert bootstrap == "kafka:9092"


def test_base_has_no_namespace_so_overlays_choose() -> None:
    text = (K8S / "base" / "kustomization.yaml").read_text()
    assert "\nnamespace:" not in text


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_prod_spreads_replicas_over_nodes_and_zones(
    service: Any, rendered: dict[str, Rendered]
) -> None:
    deployment = rendered["prod"].named("Deployment", service.name)
    constraints = _pod(deployment).get("topologySpreadConstraints", [])
    keys = {c["topologyKey"] for c in constraints}
    assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for c in constraints:
        selector = c["labelSelector"]["matchLabels"]
        assert all(labels.get(k) == v for k, v in selector.items()), "selects other pods only"
        assert "app.kubernetes.io/name" in c.get("matchLabelKeys", []), "per service, not global"
