"""The scale-out platform the cluster test drives: three Kafka nodes, two Postgres servers,
two replicas of every service that consumes or takes inquiries, on free ports.

Postgres A holds intake, scoring and routing; Postgres B holds sla-monitor, analytics and
notify: intake and analytics never share a server, so nothing may assume one database
(no service reads another's schema). Replica 1 of each service runs in ``rack-a``, replica
2 in ``rack-b`` (their consumers' ``client.rack``); the brokers are ``rack-a``..``rack-c``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from leadflow.devstack.__main__ import Devstack, ServiceSpec
from leadflow.devstack.cluster import KafkaCluster
from leadflow.devstack.postgres import PostgresServer
from leadflow.devstack.procs import free_block
from leadflow.events.outbox import outbox_leader
from leadflow.testing.platform import REPS, configure_platform, process_cpu

# name, module, schema, offset from the port base (as the devstack lays them out), server
SERVICES = [
    ("intake", "leadflow.intake", "intake", 1, "a"),
    ("scoring", "leadflow.scoring", "scoring", 2, "a"),
    ("routing", "leadflow.routing", "routing", 3, "a"),
    ("sla-monitor", "leadflow.sla_monitor", "sla", 4, "b"),
    ("analytics", "leadflow.analytics", "analytics", 5, "b"),
    ("notify", "leadflow.notify", "notify", 6, "b"),
]
PRODUCERS = ["intake", "scoring", "routing", "sla-monitor", "notify"]  # each runs a relay
PARTITIONS = 6

CLUSTER_ENV = {
    # the production shape, small: every topic a service creates is replicated
    "LEADFLOW_TOPIC_PARTITIONS": str(PARTITIONS),
    "LEADFLOW_TOPIC_REPLICATION_FACTOR": "3",
    "LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS": "2",
    # faster relays and timers than production's: the test waits on whole pipelines
    "LEADFLOW_OUTBOX_POLL_SECONDS": "0.2",
    "LEADFLOW_TIMER_POLL_SECONDS": "0.5",
    "LEADFLOW_LOG_LEVEL": "WARNING",
    "LEADFLOW_DB_POOL_SIZE": "4",
}


@dataclass
class Replica:
    service: str
    index: int  # 1 or 2
    spec: ServiceSpec
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec.port}"


@dataclass
class ClusterPlatform:
    home: Path
    kafka: KafkaCluster
    postgres: dict[str, PostgresServer]
    stack: Devstack
    replicas: list[Replica] = field(default_factory=list)
    cpu_seen: dict[str, float] = field(default_factory=dict)  # CPU-s of processes gone
    passed: bool = False  # set by the test when every check held: its state may go

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def database_of(self, service: str) -> str:
        server = next(s[4] for s in SERVICES if s[0] == service)
        return self.postgres[server].url

    def of(self, service: str) -> list[Replica]:
        return [r for r in self.replicas if r.service == service]

    def pid(self, replica: Replica) -> int:
        return self.stack.procs[replica.name].pid

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.credentials()['admin_token']}"}

    @property
    def api_key(self) -> dict[str, str]:
        return {"X-Api-Key": self.stack.credentials()["api_key"]}

    def start_replica(self, replica: Replica) -> None:
        self.stack.start_service(replica.spec, replica.env)

    def kill_replica(self, replica: Replica) -> None:
        """SIGKILL the replica's process group (no shutdown, no leaving the group)."""
        proc = self.stack.procs[replica.name]
        self.cpu_seen[replica.name] = self.cpu_seen.get(replica.name, 0.0) + process_cpu(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def wait_ready(self, replicas: list[Replica], timeout: float = 180) -> None:
        for replica in replicas:
            if not self.stack.wait_ready(replica.spec, timeout=timeout):
                log = (self.home / "logs" / f"{replica.name}.log").read_text(errors="replace")
                raise RuntimeError(f"{replica.name} did not become ready:\n{log[-3000:]}")

    async def relay_holder(self, service: str) -> Replica | None:
        """The replica whose outbox relay holds ``service``'s lock (by the pid in its
        session's application_name)."""
        schema = next(s[2] for s in SERVICES if s[0] == service)
        name = await outbox_leader(self.database_of(service), schema)
        if name is None:
            return None
        pid = int(name.rsplit(":", 1)[1])
        return next((r for r in self.of(service) if self.pid(r) == pid), None)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU-s so far per service (its replicas, including processes killed meanwhile)."""
        out: dict[str, float] = {}
        for r in self.replicas:
            proc = self.stack.procs.get(r.name)
            live = process_cpu(proc.pid) if proc is not None and proc.poll() is None else 0.0
            out[r.service] = out.get(r.service, 0.0) + live + self.cpu_seen.get(r.name, 0.0)
        return out

    def close(self) -> None:
        self.stack.stop_all()
        self.kafka.kill()  # throwaway state: no need for a controlled shutdown
        self.kafka.discard_data()
        for server in self.postgres.values():
            server.kill()


def launch(smtp_port: int) -> ClusterPlatform:
    """Start everything (blocking: call it through ``asyncio.to_thread``)."""
    home = Path(tempfile.mkdtemp(prefix="leadflow-cluster-"))
    kafka = KafkaCluster(home / "kafka", size=3, heap="320m", partitions=PARTITIONS)
    postgres = {"a": PostgresServer(home / "pg-a"), "b": PostgresServer(home / "pg-b")}
    base = free_block(13)  # replica 1 on base+1..6 (the devstack layout), replica 2 on base+7..12
    stack = Devstack(
        home,
        kafka_port=0,
        pg_port=0,
        quiet=True,
        port_base=base,
        kafka_bootstrap=kafka.bootstrap,
        database_url=postgres["a"].url,
        extra_env={**CLUSTER_ENV, "LEADFLOW_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"},
    )
    platform = ClusterPlatform(home, kafka, postgres, stack)
    try:
        for server in postgres.values():
            server.start()
        kafka.start()
        for name, module, schema, offset, server in SERVICES:
            for index in (1, 2):
                port = base + offset + (0 if index == 1 else 6)
                spec = ServiceSpec(f"{name}-{index}", module, port, schema)
                env = {
                    "DATABASE_URL": postgres[server].url,
                    "LEADFLOW_KAFKA_CLIENT_RACK": "rack-a" if index == 1 else "rack-b",
                }
                platform.replicas.append(Replica(name, index, spec, env))
        for replica in platform.replicas:
            platform.start_replica(replica)
        platform.wait_ready(platform.replicas)
    except BaseException:
        platform.close()
        raise
    return platform


def configure(platform: ClusterPlatform) -> None:
    """The fault suite's routing (a team of five reps, round-robin), each rep with an
    e-mail address so notify tells them of every assignment; the SLA policies as shipped."""
    routing = platform.of("routing")[0].url
    stand_in = _RoutingOnly(routing, platform.admin)
    configure_platform(stand_in)  # type: ignore[arg-type]
    with httpx.Client(timeout=30, headers=platform.admin) as c:
        for rep in REPS:
            r = c.put(
                f"{routing}/v1/routing/reps/{rep}",
                json={"name": rep, "team_id": "inside", "email": f"{rep}@sales.example"},
            )
            assert r.status_code < 300, r.text


@dataclass
class _RoutingOnly:
    """What ``configure_platform`` asks of a platform, for routing alone."""

    routing: str
    admin: dict[str, str]

    def url(self, service: str) -> str:
        assert service == "routing"
        return self.routing
