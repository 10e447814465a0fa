"""The ``leadflow`` CLI jobs against the real Postgres and Kafka: migrate and create-topics
are idempotent, expected failures are one line and a non-zero exit, schemas delegates."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from leadflow.events.cli import SERVICES, migrations_dir
from leadflow.events.db import head_revision, plain_url
from leadflow.testing import topic_config, topic_retention_ms

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]


async def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "leadflow.events.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_migrate_all_twice_puts_every_service_schema_at_head(isolation) -> None:
    prefix = f"{isolation.schema}_"
    env = {"DATABASE_URL": isolation.database_url}
    env_clean = {k: v for k, v in os.environ.items() if k != "LEADFLOW_DB_SCHEMA"}
    os_env = {**env_clean, **env}
    first = await cli("migrate", "all", "--schema-prefix", prefix, **os_env)
    assert first.returncode == 0, first.stderr
    second = await cli("migrate", "all", "--schema-prefix", prefix, **os_env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert f"sla-monitor: schema {prefix}sla at head" in first.stdout
    conn = await asyncpg.connect(plain_url(isolation.database_url))
    try:
        for service, (schema, _module) in SERVICES.items():
            version = await conn.fetchval(
                f'SELECT version_num FROM "{prefix}{schema}".alembic_version'
            )
            assert version == head_revision(migrations_dir(service)), service
            tables = {
                r[0]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    f"{prefix}{schema}",
                )
            }
            # The console keeps people, not events: no log, outbox, inbox or timers.
            kernel = (
                {"users"} if service == "console" else {"event_log", "outbox", "inbox", "timers"}
            )
            assert kernel <= tables, service
    finally:
        await conn.close()


async def test_migrate_one_service_into_an_explicit_schema(isolation) -> None:
    result = await cli(
        "migrate", "sla", "--schema", isolation.schema, DATABASE_URL=isolation.database_url
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sla-monitor: schema {isolation.schema} at head"


async def test_migrate_failures_are_one_line_and_exit_1() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LEADFLOW_DATABASE_URL")
    }
    unset = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "leadflow.events.cli", "migrate", "intake"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 1
    assert unset.stderr.strip() == (
        "leadflow: DATABASE_URL is not set (e.g. postgresql://user:pass@host:5432/leadflow)"
    )
    down = await cli("migrate", "intake", DATABASE_URL="postgresql://postgres@127.0.0.1:1/x")
    assert down.returncode == 1
    assert "migrating intake (schema" in down.stderr and "Traceback" not in down.stderr
    unknown = await cli("migrate", "billing", DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    assert unknown.returncode == 2 and "invalid choice: 'billing'" in unknown.stderr


async def _partitions(bootstrap: str, prefix: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def test_create_topics_is_idempotent(isolation) -> None:
    env: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": isolation.kafka_bootstrap,
        "LEADFLOW_TOPIC_PREFIX": isolation.topic_prefix,
    }
    args = ("create-topics", "--partitions", "2", "--replication-factor", "1")
    first = await cli(*args, **env)
    assert first.returncode == 0, first.stderr
    expected = {
        f"{isolation.topic_prefix}leadflow.{p}{dlq}"
        for p in ("intake", "scoring", "routing", "sla", "notify")
        for dlq in ("", ".dlq")
    }
    assert {line.split(":")[0] for line in first.stdout.splitlines()} == expected
    assert all(line.endswith(": created") for line in first.stdout.splitlines())
    assert await _partitions(isolation.kafka_bootstrap, isolation.topic_prefix) == dict.fromkeys(
        expected, 2
    )
    # events carry personal fields in clear: their stay on the broker is bounded explicitly
    assert await topic_retention_ms(isolation.kafka_bootstrap, sorted(expected)) == dict.fromkeys(
        expected, str(168 * 3_600_000)
    )
    second = await cli(*args, "--retention-hours", "24", **env)
    assert second.returncode == 0, second.stderr
    assert all(line.endswith(": exists (2 partitions)") for line in second.stdout.splitlines())
    assert len(second.stdout.splitlines()) == len(expected)
    # existing topics are left as they are
    assert set(
        (await topic_retention_ms(isolation.kafka_bootstrap, sorted(expected))).values()
    ) == {str(168 * 3_600_000)}


async def test_create_topics_takes_the_retention_from_the_flag_or_the_environment(
    isolation,
) -> None:
    env: dict[str, Any] = {"KAFKA_BOOTSTRAP_SERVERS": isolation.kafka_bootstrap}
    by_flag, by_env = f"{isolation.topic_prefix}flag.", f"{isolation.topic_prefix}env."
    args = ("create-topics", "--partitions", "1", "--replication-factor", "1")
    flagged = await cli(*args, "--retention-hours", "1.5", LEADFLOW_TOPIC_PREFIX=by_flag, **env)
    assert flagged.returncode == 0, flagged.stderr
    from_env = await cli(
        *args, LEADFLOW_TOPIC_PREFIX=by_env, LEADFLOW_TOPIC_RETENTION_HOURS="48", **env
    )
    assert from_env.returncode == 0, from_env.stderr
    bootstrap = isolation.kafka_bootstrap
    assert set((await topic_retention_ms(bootstrap, [f"{by_flag}leadflow.intake"])).values()) == {
        str(5_400_000)
    }
    assert set((await topic_retention_ms(bootstrap, [f"{by_env}leadflow.sla.dlq"])).values()) == {
        str(48 * 3_600_000)
    }
    refused = await cli(*args, "--retention-hours", "0", LEADFLOW_TOPIC_PREFIX=by_flag, **env)
    assert refused.returncode != 0 and "--retention-hours must be positive" in refused.stderr


async def test_create_topics_sets_min_insync_replicas_from_the_flag_or_the_environment(
    isolation,
) -> None:
    """A cluster's topics need ``min.insync.replicas`` (2 of 3): an ``acks=all`` write then
    waits for two copies. More than the replication factor would refuse every write."""
    env: dict[str, Any] = {"KAFKA_BOOTSTRAP_SERVERS": isolation.kafka_bootstrap}
    by_flag, by_env = f"{isolation.topic_prefix}isrflag.", f"{isolation.topic_prefix}isrenv."
    args = ("create-topics", "--partitions", "1", "--replication-factor", "1")
    flagged = await cli(*args, "--min-insync-replicas", "1", LEADFLOW_TOPIC_PREFIX=by_flag, **env)
    assert flagged.returncode == 0, flagged.stderr
    from_env = await cli(
        *args, LEADFLOW_TOPIC_PREFIX=by_env, LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS="1", **env
    )
    assert from_env.returncode == 0, from_env.stderr
    for prefix in (by_flag, by_env):
        topic = f"{prefix}leadflow.routing"
        assert await topic_config(isolation.kafka_bootstrap, [topic], "min.insync.replicas") == {
            topic: "1"
        }
    refused = await cli(*args, "--min-insync-replicas", "2", LEADFLOW_TOPIC_PREFIX=by_flag, **env)
    assert refused.returncode != 0
    assert "--min-insync-replicas (2) must be between 1 and the replication factor (1)" in (
        refused.stderr
    )


async def test_create_topics_reports_impossible_replication_and_unreachable_broker(
    isolation,
) -> None:
    impossible = await cli(
        "create-topics",
        "--partitions",
        "1",
        "--replication-factor",
        "9",
        "--prefix",
        isolation.topic_prefix,
        KAFKA_BOOTSTRAP_SERVERS=isolation.kafka_bootstrap,
    )
    assert impossible.returncode == 1
    assert "replication factor" in impossible.stderr.lower()
    assert "Traceback" not in impossible.stderr
    down = await cli(
        "create-topics", "--partitions", "1", "--replication-factor", "1",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
    )  # fmt: skip
    assert down.returncode == 1
    assert down.stderr.startswith("leadflow: cannot reach Kafka at 127.0.0.1:1")
    assert len(down.stderr.strip().splitlines()) == 1


async def test_schemas_delegates_to_schemagen() -> None:
    via_cli = await cli("schemas", "--check")
    direct = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "leadflow.events.schemagen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (via_cli.returncode, via_cli.stdout) == (direct.returncode, direct.stdout)
    assert via_cli.stdout.strip()
