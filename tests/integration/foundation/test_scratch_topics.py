"""Tests leave no topics behind on the broker they share (``leadflow.testing.topics``).

A test session's ``isolation`` prefixes are deleted at its end, and the next session's sweep
deletes what a killed one left — only scratch prefixes whose owner is gone, never a running
session's and never ``leadflow.*``. Real Kafka: the broker of the test infrastructure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.testing import wait_until
from leadflow.testing.topics import BORN_FORMAT, MAX_AGE, WHERE, delete_prefixed, sweep

pytestmark = [pytest.mark.kafka]
ROOT = Path(__file__).resolve().parents[3]

INNER_TEST = """
import os
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def test_writes_and_commits(isolation):
    Path(os.environ["PREFIX_FILE"]).write_text(isolation.topic_prefix)
    topic = isolation.topic("intake")
    producer = AIOKafkaProducer(bootstrap_servers=isolation.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", partition=0)
    finally:
        await producer.stop()
    group = f"{isolation.topic_prefix}leadflow.scoring"
    consumer = AIOKafkaConsumer(bootstrap_servers=isolation.kafka_bootstrap, group_id=group)
    await consumer.start()
    try:  # a group with an offset, without waiting for a join
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 1})
    finally:
        await consumer.stop()
"""


async def names(bootstrap: str) -> tuple[set[str], set[str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        groups = {g[0] for g in await admin.list_consumer_groups()}
        return topics, groups
    finally:
        await admin.close()


async def make(bootstrap: str, topics: list[str], group_of: dict[str, str]) -> None:
    """Create ``topics`` (by writing to them) and, per ``group_of``, a group with an offset
    (committed for an assigned partition: no join to wait for)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await asyncio.gather(*(producer.send_and_wait(t, b"x", partition=0) for t in topics))
    finally:
        await producer.stop()
    for topic, group in group_of.items():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): 1})
        finally:
            await consumer.stop()


def session(born: datetime, where: str, pid: int) -> str:
    return f"t-{born.strftime(BORN_FORMAT)}-{where}-{pid}-"


def gone_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
async def test_a_session_deletes_its_isolation_topics_and_groups(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    prefix_file = tmp_path / "prefix"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "PREFIX_FILE": str(prefix_file),
    }
    inner = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml")),
        *("--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-q", "-s", str(tmp_path)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(inner.communicate(), 180)
    assert inner.returncode == 0, out.decode()[-3000:]
    prefix = prefix_file.read_text()
    assert prefix.startswith("t-") and prefix.endswith(".")
    assert "this session's 1 topics, 1 groups" in out.decode()  # the session deleted them

    async def nothing_left() -> bool:  # the broker's metadata follows the deletion
        topics, groups = await names(kafka_bootstrap)
        return not any(name.startswith(prefix) for name in topics | groups)

    await wait_until(nothing_left, timeout=30, interval=0.5, message=f"{prefix}* deleted")


async def test_the_sweep_deletes_stale_scratch_topics_only(kafka_bootstrap: str) -> None:
    now = datetime.now(UTC)
    elsewhere = "0000000f" if WHERE != "0000000f" else "000000f0"
    token = uuid.uuid4().hex[:8]
    dead_here = session(now, WHERE, gone_pid()) + token + "."
    old_elsewhere = session(now - MAX_AGE - timedelta(minutes=5), elsewhere, 1) + token + "."
    running_here = session(now, WHERE, os.getpid()) + token + "."  # alive: this process
    recent_elsewhere = session(now - timedelta(minutes=30), elsewhere, 1) + token + "."
    platform_like = f"leadflow.sweep-{token}"  # a `leadflow.*` topic is never a candidate
    stale = [f"{dead_here}leadflow.intake", f"{old_elsewhere}leadflow.intake"]
    kept = [f"{running_here}leadflow.intake", f"{recent_elsewhere}leadflow.intake", platform_like]
    groups = {
        stale[0]: f"{dead_here}leadflow.scoring",
        kept[0]: f"{running_here}leadflow.scoring",
        kept[2]: f"leadflow.sweep-{token}",
    }
    await make(kafka_bootstrap, stale + kept, groups)
    try:
        done = await sweep(kafka_bootstrap)
        # (another session starting meanwhile sweeps the same stale ones: so "gone", not
        # "in done", for them; what is kept no sweep may touch)
        assert not set(kept) & set(done.topics)
        assert all(t.startswith("t-") for t in done.topics + done.groups)

        async def stale_gone() -> bool:
            topics, groups = await names(kafka_bootstrap)
            return not set(stale) & topics and f"{dead_here}leadflow.scoring" not in groups

        await wait_until(stale_gone, timeout=30, interval=0.5, message="stale ones deleted")
        topics, all_groups = await names(kafka_bootstrap)
        assert set(kept) <= topics
        assert {f"{running_here}leadflow.scoring", f"leadflow.sweep-{token}"} <= all_groups
    finally:
        await delete_prefixed(kafka_bootstrap, [running_here, recent_elsewhere, platform_like])
