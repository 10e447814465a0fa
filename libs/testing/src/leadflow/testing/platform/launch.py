"""Starting the platform: every service as a real process, on private or shared infrastructure."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from leadflow.devstack.__main__ import Devstack, ServiceSpec, available_services
from leadflow.devstack.procs import free_block
from leadflow.testing.platform.endpoints import Endpoints


@dataclass
class Platform:
    """A running private platform: the devstack plus what clients need to talk to it."""

    stack: Devstack
    specs: list[ServiceSpec]
    creds: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.stack.external[0] if self.stack.external else self.stack.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.stack.external[1] if self.stack.external else self.stack.postgres.url

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.from_credentials(self.creds, self.stack.port_base)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every service's log (what a failing test prints)."""
        out = []
        for spec in self.specs:
            path = self.stack.home / "logs" / f"{spec.name}.log"
            if path.exists():
                out.append(f"--- {spec.name} ---\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def url(self, service: str) -> str:
        spec = next(s for s in self.specs if s.name == service)
        return f"http://127.0.0.1:{spec.port}"

    def spec(self, service: str) -> ServiceSpec:
        return next(s for s in self.specs if s.name == service)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['admin_token']}"}

    @property
    def api_key(self) -> dict[str, str]:
        return {"X-Api-Key": self.creds["api_key"]}

    def restart_service(self, name: str, *, sig: int = signal.SIGKILL) -> None:
        """Kill (default SIGKILL, the whole process group) and start again; waits for ready."""
        proc = self.stack.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
        spec = self.spec(name)
        self.stack.start_service(spec)
        if not self.stack.wait_ready(spec, timeout=120):
            raise RuntimeError(f"{name} did not come back; see {self.stack.home}/logs")

    def close(self) -> None:
        """Stop every service; a private broker's topics go with it (its data, not its logs:
        ``KafkaBroker.discard_data``). On shared infrastructure the topics are the caller's
        prefix's, deleted by whoever made it (the tests' ``isolation``)."""
        self.stack.stop_all()
        if self.stack.external is None:
            self.stack.kafka.discard_data()


# The load driver sends every inquiry with one API key, and intake limits each key to 200
# requests/s by default (abuse protection, LEADFLOW_INTAKE_KEY_RATE_PER_SECOND): above that
# rate a throughput step measured the limiter (429s, retried with back-off), not the
# platform. The benchmark lifts it, as bench_intake does; the fault suite keeps the defaults.
UNTHROTTLED_KEY = {
    "LEADFLOW_INTAKE_KEY_RATE_PER_SECOND": "1000000",
    "LEADFLOW_INTAKE_KEY_BURST": "1000000",
}


def launch_platform(
    home: Path,
    *,
    quiet: bool = True,
    extra_env: dict[str, str] | None = None,
    kafka_bootstrap: str | None = None,
    database_url: str | None = None,
    schema_prefix: str = "",
    topic_prefix: str = "",
    ready_timeout: float = 180.0,
) -> Platform:
    """Every service as a process on a free block of ports, on a private Kafka + Postgres
    (free ports) or on the given ones (``kafka_bootstrap`` + ``database_url``, isolated by
    ``schema_prefix`` and ``topic_prefix``: the end-to-end tests); ``extra_env`` is added to
    every service's environment. Returns when every service answers ``/readyz``.

    Blocking (and the broker's readiness check runs its own event loop): from async code
    call it through ``asyncio.to_thread``.
    """
    home.mkdir(parents=True, exist_ok=True)
    port_base = free_block(7)  # the console on base, the services on base+1 .. base+6
    # Ports 0: a private broker and database pick free ones (below the ephemeral range).
    stack = Devstack(
        home,
        kafka_port=0,
        pg_port=0,
        quiet=quiet,
        port_base=port_base,
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        schema_prefix=schema_prefix,
        topic_prefix=topic_prefix,
        extra_env=extra_env,
    )
    try:
        stack.start_infra()  # a no-op with external infrastructure
        specs = available_services(port_base)
        for spec in specs:
            stack.start_service(spec)
        for spec in specs:
            if not stack.wait_ready(spec, timeout=ready_timeout):
                log = (home / "logs" / f"{spec.name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{spec.name} did not become ready:\n{log}")
    except BaseException:
        stack.stop_all()
        raise
    return Platform(stack, specs, stack.credentials())
