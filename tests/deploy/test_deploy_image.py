"""The service image: what can be proved without a Docker engine.

- The Dockerfile's shape: multi-stage, ARG SERVICE, locked `uv sync`, the final stage has no
  uv / compiler / package manager, runs as a numeric non-root user, HEALTHCHECK via python.
- The lockfile resolves each service's production dependency set offline (the exact `uv sync`
  of the build, as a dry run) without dev tools in it.
- The entrypoint builds the right uvicorn command; the HEALTHCHECK script really answers
  0/1 against a live HTTP server.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy._support import DEPLOY, ROOT, SERVICES

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|build-essential|make|curl|wget|apt-get install|pip install|uv )"
)


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _stages(text: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dockerfile_is_multi_stage_and_parameterised_by_service() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    assert len(stages) >= 2
    builder = next(s for s in stages if any("AS builder" in rest for k, rest in s if k == "FROM"))
    syncs = [rest for k, rest in builder if k == "RUN" and "uv sync" in rest]
    assert syncs, "the builder must install with uv sync"
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync
        assert '--package "leadflow-${SERVICE}"' in sync
    assert any(k == "COPY" and "uv.lock" in rest for k, rest in builder)
    assert ("ARG", "SERVICE") in builder


def test_final_stage_is_lean_non_root_and_health_checked() -> None:
    final = _stages(DOCKERFILE.read_text())[-1]
    runs = " ".join(rest for k, rest in final if k == "RUN")
    assert not BUILD_TOOLS.search(runs), f"build tooling in the final stage: {runs}"
    copies = [rest for k, rest in final if k == "COPY"]
    assert all("--from=builder" in c for c in copies), copies
    assert not any("/uv" in c for c in copies), "uv must not reach the runtime image"
    users = [rest for k, rest in final if k == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root uid (for runAsNonRoot)"
    health = [rest for k, rest in final if k == "HEALTHCHECK"]
    assert health and '"python"' in health[-1] and "healthcheck.py" in health[-1]
    assert "curl" not in health[-1]
    cmd = [rest for k, rest in final if k == "CMD"]
    assert cmd and "serve.py" in cmd[-1]


def test_runtime_image_keeps_migrations_where_the_services_look_for_them() -> None:
    """Services find Alembic dirs relative to their package (``parents[3] / "migrations"``),
    so the workspace packages stay editable installs pointing into /app/services/<svc>."""
    stages = _stages(DOCKERFILE.read_text())
    syncs = [rest for stage in stages for k, rest in stage if k == "RUN" and "uv sync" in rest]
    assert not any("--no-editable" in s for s in syncs)
    copies = [rest for k, rest in stages[-1] if k == "COPY"]
    assert any("/app/services/${SERVICE} /app/services/${SERVICE}" in c for c in copies)
    assert any("/app/libs /app/libs" in c for c in copies)
    for service in SERVICES:
        try:
            app = importlib.import_module(f"leadflow.{service.module}.app")
        except ModuleNotFoundError:
            continue
        migrations = getattr(app, "MIGRATIONS", None)
        if migrations is not None:
            service_dir = ROOT / "services" / service.name
            assert Path(migrations).resolve().is_relative_to(service_dir), migrations
            assert Path(migrations).is_dir(), f"{service.name}: {migrations} missing"


def test_k8s_and_compose_run_as_the_images_user() -> None:
    final = _stages(DOCKERFILE.read_text())[-1]
    user = [rest for k, rest in final if k == "USER"][-1]
    compose = (DEPLOY / "compose.yaml").read_text()
    assert f'user: "{user}"' in compose
    uid = user.split(":")[0]
    for service in SERVICES:
        manifest = (DEPLOY / "k8s" / "base" / f"{service.name}.yaml").read_text()
        assert f"runAsUser: {uid}" in manifest


def test_build_context_filter_keeps_what_the_build_copies() -> None:
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text()
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "libs/events/**",
        "libs/*/pyproject.toml",
        "services/*/src/**",
        "services/*/migrations/**",
        "deploy/docker/serve.py",
        "deploy/docker/healthcheck.py",
    ):
        assert f"!{needed}" in ignore, needed


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_lockfile_resolves_the_service_without_dev_tools(service: object, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv not on PATH: cannot dry-run the image's dependency install")
    # Exactly what the builder stage copies before its first `uv sync`.
    for rel in [
        "pyproject.toml",
        "uv.lock",
        "libs/events/pyproject.toml",
        "libs/devstack/pyproject.toml",
        "libs/testing/pyproject.toml",
        *[f"services/{s.name}/pyproject.toml" for s in SERVICES],
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / ".venv"),
    }
    env.pop("VIRTUAL_ENV", None)
    name = service.name  # type: ignore[attr-defined]
    result = subprocess.run(
        [
            uv,
            "sync",
            "--frozen",
            "--no-dev",
            "--no-install-workspace",
            "--package",
            f"leadflow-{name}",
            "--offline",
            "--dry-run",
            "--python",
            sys.executable,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    installed = set(re.findall(r"^\s*\+ ([A-Za-z0-9_.-]+)==", output, re.MULTILINE))
    assert {"fastapi", "uvicorn", "aiokafka", "sqlalchemy", "alembic"} <= installed, installed
    dev_tools = {"pytest", "ruff", "mypy", "playwright", "hypothesis", "testcontainers"}
    assert not (installed & dev_tools), installed & dev_tools


# --------------------------------------------------------------------------- entrypoint


@pytest.fixture(scope="module")
def serve() -> ModuleType:
    return _load(DEPLOY / "docker" / "serve.py")


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_entrypoint_starts_the_services_factory_on_its_port(
    serve: ModuleType, service: object
) -> None:
    name, module, port = service.name, service.module, service.port  # type: ignore[attr-defined]
    argv = serve.uvicorn_argv({"LEADFLOW_SERVICE": name, "LEADFLOW_SHUTDOWN_GRACE_SECONDS": "20"})
    assert argv[1:5] == ["-m", "uvicorn", "--factory", f"leadflow.{module}.app:create_app"]
    assert argv[argv.index("--port") + 1] == str(port)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--timeout-graceful-shutdown") + 1] == "20"
    assert argv[argv.index("--timeout-keep-alive") + 1] == "75"
    # The factory the entrypoint names exists once the service has its app module.
    app_module = ROOT / "services" / name / "src" / "leadflow" / module / "app.py"
    if app_module.exists():
        assert "def create_app" in app_module.read_text()


def test_entrypoint_honours_port_grace_and_keep_alive_overrides(serve: ModuleType) -> None:
    argv = serve.uvicorn_argv(
        {
            "LEADFLOW_SERVICE": "routing",
            "LEADFLOW_PORT": "9000",
            "LEADFLOW_SHUTDOWN_GRACE_SECONDS": "7.5",
            "LEADFLOW_HTTP_KEEP_ALIVE_SECONDS": "120",
        }
    )
    assert argv[argv.index("--port") + 1] == "9000"
    assert argv[argv.index("--timeout-graceful-shutdown") + 1] == "7"
    assert argv[argv.index("--timeout-keep-alive") + 1] == "120"


def test_entrypoint_refuses_an_unknown_service(serve: ModuleType) -> None:
    with pytest.raises(SystemExit, match="LEADFLOW_SERVICE must be one of"):
        serve.uvicorn_argv({"LEADFLOW_SERVICE": "billing"})


# --------------------------------------------------------------------------- healthcheck


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LEADFLOW_SERVICE": "scoring",
        "LEADFLOW_PORT": str(port),
    }
    return subprocess.run(
        [sys.executable, str(DEPLOY / "docker" / "healthcheck.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_passes_when_healthz_answers_200(
    health_server: tuple[int, type[_Health]],
) -> None:
    port, _ = health_server
    assert _run_healthcheck(port).returncode == 0


def test_healthcheck_fails_when_healthz_answers_503(
    health_server: tuple[int, type[_Health]],
) -> None:
    port, handler = health_server
    handler.status = 503
    result = _run_healthcheck(port)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}/healthz" in result.stderr


def test_healthcheck_fails_when_nothing_listens(health_server: tuple[int, type[_Health]]) -> None:
    port, _ = health_server
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert free != port
    assert _run_healthcheck(free).returncode == 1


def test_healthcheck_defaults_to_the_services_port() -> None:
    healthcheck = _load(DEPLOY / "docker" / "healthcheck.py")
    for service in SERVICES:
        url = healthcheck.healthz_url({"LEADFLOW_SERVICE": service.name})
        assert url == f"http://127.0.0.1:{service.port}/healthz"


# --------------------------------------------------------------------------- job commands


def _cli_help(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadflow.events.cli", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_topics_job_command_exists_with_partition_and_replication_flags() -> None:
    result = _cli_help("create-topics")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--partitions" in result.stdout and "--replication-factor" in result.stdout


def test_migrate_job_command_exists() -> None:
    result = _cli_help("migrate")
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- builder, replayed


def _replay_builder(service: str, app_dir: Path) -> dict[str, str]:
    """Carry out the builder stage's WORKDIR/ENV/COPY/`RUN uv sync` steps with /app mapped to
    app_dir: the same files reach the same places and the same uv commands run (offline,
    from uv's cache). Returns the stage's environment."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv not on PATH: cannot replay the image's builder stage")
    builder = next(s for s in _stages(DOCKERFILE.read_text()) if "AS builder" in s[0][1])
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}

    def expand(text: str) -> str:
        text = text.replace("${SERVICE}", service).replace("$SERVICE", service)
        return re.sub(r"(?<![\w.])/app(?=/|\b)", str(app_dir), text)

    for keyword, rest in builder:
        if keyword == "ENV":
            for name, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[name] = expand(value.strip('"'))
        elif keyword == "COPY" and "--from" not in rest:
            *sources, dest = expand(rest).split()
            target = Path(dest if Path(dest).is_absolute() else app_dir / dest)
            for source in sources:
                src = ROOT / source
                to = target / src.name if dest.endswith("/") else target
                if src.is_dir():
                    shutil.copytree(
                        src, to, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
                    )
                else:
                    to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, to)
        elif keyword == "RUN" and "uv sync" in rest:
            argv = ["uv", *rest[rest.index("uv sync") :].split()[1:]]
            argv = [a.strip('"') for a in expand(" ".join(argv)).split()]
            env |= {
                "UV_PYTHON": sys.executable,
                "UV_COMPILE_BYTECODE": "0",
                "UV_PYTHON_DOWNLOADS": "never",
            }
            result = subprocess.run(
                [uv, *argv[1:], "--offline"],
                cwd=app_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode != 0 and "offline" in result.stderr.lower():
                pytest.skip(
                    f"uv's cache lacks a locked package (offline):\n{result.stderr[-1500:]}"
                )
            assert result.returncode == 0, result.stderr[-3000:]
    return env


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_builder_stage_produces_a_runnable_service(service: object, tmp_path: Path) -> None:
    name, module = service.name, service.module  # type: ignore[attr-defined]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    env = _replay_builder(name, app_dir)
    python = Path(env["UV_PROJECT_ENVIRONMENT"]) / "bin" / "python"
    assert python.exists(), "uv sync did not create the venv where the runtime stage copies it"
    assert (app_dir / "bin" / "serve.py").exists() and (app_dir / "bin" / "healthcheck.py").exists()
    probe = (
        "import importlib, pathlib, sys\n"
        f"app = importlib.import_module('leadflow.{module}.app')\n"
        "assert callable(app.create_app)\n"
        "m = getattr(app, 'MIGRATIONS', None)\n"
        "assert m is None or pathlib.Path(m).is_dir(), m\n"
        f"assert m is None or str(m).startswith({str(app_dir)!r}), m\n"
        "import uvicorn, leadflow.events\n"
        "for dev in ('pytest', 'ruff', 'mypy', 'hypothesis', 'playwright'):\n"
        "    assert importlib.util.find_spec(dev) is None, dev\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
