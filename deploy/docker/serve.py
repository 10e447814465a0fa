"""Container entrypoint: start one Leadflow service under uvicorn, configured from the environment.

Why a script and not a shell CMD: the image is shared by five services, and the module, port
and graceful-shutdown timeout are derived from LEADFLOW_SERVICE / LEADFLOW_PORT /
LEADFLOW_SHUTDOWN_GRACE_SECONDS in one tested place. It execs uvicorn, so uvicorn is PID 1's
program and receives SIGTERM directly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

SERVICES: dict[str, tuple[str, int]] = {
    "console": ("console", 8000),
    "intake": ("intake", 8001),
    "scoring": ("scoring", 8002),
    "routing": ("routing", 8003),
    "sla-monitor": ("sla_monitor", 8004),
    "analytics": ("analytics", 8005),
    "notify": ("notify", 8006),
}
DEFAULT_GRACE_SECONDS = 20
# Above a load balancer's idle timeout: the server must not close a connection the client reuses.
DEFAULT_KEEP_ALIVE = 75


def uvicorn_argv(env: Mapping[str, str]) -> list[str]:
    """The uvicorn command line for the service named by LEADFLOW_SERVICE."""
    service = env.get("LEADFLOW_SERVICE", "")
    if service not in SERVICES:
        raise SystemExit(f"LEADFLOW_SERVICE must be one of {', '.join(SERVICES)}; got {service!r}")
    module, default_port = SERVICES[service]
    port = int(env.get("LEADFLOW_PORT") or default_port)
    grace = int(float(env.get("LEADFLOW_SHUTDOWN_GRACE_SECONDS") or DEFAULT_GRACE_SECONDS))
    keep_alive = int(float(env.get("LEADFLOW_HTTP_KEEP_ALIVE_SECONDS") or DEFAULT_KEEP_ALIVE))
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"leadflow.{module}.app:create_app",
        "--host",
        env.get("LEADFLOW_HOST") or "0.0.0.0",
        "--port",
        str(port),
        # Uvicorn stops accepting, then waits this long for in-flight requests; the app's
        # lifespan then finishes the consumer batch and leaves the group.
        "--timeout-graceful-shutdown",
        str(grace),
        "--timeout-keep-alive",
        str(keep_alive),
        "--no-access-log",
        "--proxy-headers",
        "--forwarded-allow-ips",
        env.get("LEADFLOW_FORWARDED_ALLOW_IPS") or "127.0.0.1",
    ]


def main() -> None:
    argv = uvicorn_argv(os.environ)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
