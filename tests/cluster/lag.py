"""Watching every partition of every consumer group: how long did one sit with records
waiting and its committed offset not moving?

A stall is measured per (group, topic, partition) from the first sample that saw lag at a
committed offset to the last sample that still saw the same offset with lag; a failed sample
(the admin's broker just died) does not end a stall, so a partition nobody could read
while the cluster recovered counts in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeGroupsRequest_v2
from aiokafka.protocol.api import Request

from leadflow.events.waiting import wait_event

Key = tuple[str, str, int]  # group, topic, partition


@dataclass
class LagWatch:
    bootstrap: str
    partitions: int
    interval: float = 1.0
    worst: dict[Key, float] = field(default_factory=dict)  # longest stall seen, seconds
    samples: int = 0
    failures: int = 0
    _since: dict[Key, tuple[int, float]] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def longest(self) -> tuple[Key | None, float]:
        if not self.worst:
            return None, 0.0
        key = max(self.worst, key=lambda k: self.worst[k])
        return key, self.worst[key]

    async def _run(self) -> None:
        while not self._stop.is_set():
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, request_timeout_ms=3000
            )
            try:
                await asyncio.wait_for(admin.start(), 10)
                await asyncio.wait_for(consumer.start(), 10)
                while not self._stop.is_set():
                    await asyncio.wait_for(self._sample(admin, consumer), 10)
                    self.samples += 1
                    await wait_event(self._stop, self.interval)
            except Exception:
                self.failures += 1  # a broker went away under the clients: new ones
                await wait_event(self._stop, self.interval)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await admin.close()

    async def _sample(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        committed: dict[Key, int] = {}
        for group, _kind in await admin.list_consumer_groups():
            if not str(group).startswith("leadflow."):
                continue
            offsets = await admin.list_consumer_group_offsets(group)
            topics = {tp.topic for tp in offsets if not tp.topic.endswith(".dlq")}
            for topic in topics:  # a partition never committed yet counts from offset 0
                for p in range(self.partitions):
                    meta = offsets.get(TopicPartition(topic, p))
                    committed[(str(group), topic, p)] = meta.offset if meta is not None else 0
        tps = sorted({TopicPartition(t, p) for _g, t, p in committed})
        ends = await consumer.end_offsets(tps) if tps else {}
        now = time.monotonic()
        for key, offset in committed.items():
            end = ends.get(TopicPartition(key[1], key[2]), 0)
            if end <= offset:
                self._since.pop(key, None)
                continue
            first = self._since.get(key)
            if first is None or first[0] != offset:
                self._since[key] = (offset, now)
                continue
            self.worst[key] = max(self.worst.get(key, 0.0), now - first[1])


class _DescribeGroupsV2(Request[DescribeGroupsRequest_v2]):
    """DescribeGroups at v2: aiokafka 0.14 decodes a v3 answer with the v2 schema (its
    ``DescribeGroupsRequest_v3.RESPONSE_TYPE``), which fails with "Buffer underrun" against
    a broker that speaks v3 (Kafka 4)."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(
        self, request_struct_class: type[DescribeGroupsRequest_v2]
    ) -> DescribeGroupsRequest_v2:
        return request_struct_class(self._groups)


async def group_members(bootstrap: str, groups: list[str]) -> dict[str, tuple[str, int]]:
    """group -> (state, number of members), from each group's coordinator."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        found: dict[str, tuple[str, int]] = {}
        for group in groups:
            node = await admin.find_coordinator(group)
            response = await admin._send_request(_DescribeGroupsV2([group]), node)
            for g in response.groups:  # (error, group, state, protocol type, protocol, members)
                found[str(g[1])] = (str(g[2]), len(g[5]))
        return found
    finally:
        await admin.close()
