"""A three-node Kafka cluster (KRaft) on the loopback interface, for the cluster test.

Every node is a combined controller + broker, so the three form the controller quorum
themselves: one node lost (SIGKILL) leaves a quorum of two and two replicas of every
partition, which is what the production shape (replication 3, ``min.insync.replicas`` 2)
promises to survive. A separate controller would be a fourth JVM on a small machine, and a
single one a failure the cluster could not survive. Each node gets a rack (``rack-a`` ...),
so consumers that send a ``client.rack`` fetch from the replica in their own rack.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from leadflow.devstack.kafka import KafkaBroker, _cluster_id, ensure_jars
from leadflow.devstack.procs import free_block

RACKS = ("rack-a", "rack-b", "rack-c")


class KafkaCluster:
    def __init__(self, data_dir: Path, size: int = 3, heap: str = "384m", partitions: int = 6):
        ports = free_block(2 * size)  # broker port, controller port above it, per node
        voters = ",".join(f"{n + 1}@127.0.0.1:{ports + 2 * n + 1}" for n in range(size))
        cluster_id = _cluster_id()
        self.nodes = [
            KafkaBroker(
                Path(data_dir) / f"node-{n + 1}",
                port=ports + 2 * n,
                controller_port=ports + 2 * n + 1,
                heap=heap,
                partitions=partitions,
                node_id=n + 1,
                voters=voters,
                cluster_id=cluster_id,
                replication=size,
                rack=RACKS[n % len(RACKS)],
            )
            for n in range(size)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 120.0) -> None:
        """All nodes at once (the quorum needs a majority before any serves), then wait."""
        ensure_jars()
        for node in self.nodes:
            node.launch()
        try:
            for node in self.nodes:
                node.wait_listening(timeout)
            for node in self.nodes:
                node.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def node(self, node_id: int) -> KafkaBroker:
        return next(n for n in self.nodes if n.node_id == node_id)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def discard_data(self) -> None:
        for node in self.nodes:
            node.discard_data()

    def kill(self) -> None:
        """SIGKILL every node: a test's throwaway cluster need not shut down cleanly."""
        for node in self.nodes:
            node.kill()


async def partition_leaders(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the node id leading it now, as the cluster's metadata says."""
    described = await describe_topics(bootstrap, topics)
    return {(t["topic"], p["partition"]): p["leader"] for t in described for p in t["partitions"]}


async def describe_topics(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), timeout=10)
    try:
        return list(await admin.describe_topics(topics))
    finally:
        await admin.close()
