"""Kafka topics: their definitions (an explicit retention) and their idempotent creation,
for the service kit at start and for ``leadflow create-topics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from leadflow.events.settings import DEFAULT_TOPIC_RETENTION_HOURS

log = logging.getLogger("leadflow.service")


def new_topics(
    names: Sequence[str],
    partitions: int,
    replication_factor: int,
    retention_hours: float = DEFAULT_TOPIC_RETENTION_HOURS,
    min_insync_replicas: int | None = None,
) -> list[NewTopic]:
    """Topic definitions with an explicit ``retention.ms``: events carry personal fields in
    clear, so how long an erased person's data can stay on the broker is set by Leadflow,
    not left to whatever default the cluster has (possibly forever). ``min_insync_replicas``
    (a cluster: 2 of 3) makes an ``acks=all`` write wait for that many copies."""
    configs = {"retention.ms": str(round(retention_hours * 3_600_000))}
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    return [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            topic_configs=configs,
        )
        for name in names
    ]


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str],
    partitions: int = 3,
    replication_factor: int = 1,
    retention_hours: float = DEFAULT_TOPIC_RETENTION_HOURS,
    min_insync_replicas: int | None = None,
) -> None:
    """Create missing topics (idempotent); a broker that is down is not an error here."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout=5)
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    new_topics(
                        missing,
                        partitions,
                        replication_factor,
                        retention_hours,
                        min_insync_replicas,
                    )
                )
            except TopicAlreadyExistsError:
                pass
    except Exception as exc:
        log.warning("could not ensure topics (%r); the broker creates them on first use", exc)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
