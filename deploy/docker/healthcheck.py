"""Docker HEALTHCHECK: exit 0 when the service in this container answers GET /healthz with 200.

Python's standard library instead of curl, so the runtime image needs no extra tools.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {
    "intake": 8001,
    "scoring": 8002,
    "routing": 8003,
    "sla-monitor": 8004,
    "analytics": 8005,
    "notify": 8006,
}


def healthz_url(env: dict[str, str] | os._Environ[str]) -> str:
    service = env.get("LEADFLOW_SERVICE", "")
    port = env.get("LEADFLOW_PORT") or str(DEFAULT_PORTS.get(service, 8000))
    return f"http://127.0.0.1:{port}/healthz"


def check(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    url = healthz_url(os.environ)
    ok = check(url)
    if not ok:
        print(f"unhealthy: GET {url} did not answer 200", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
