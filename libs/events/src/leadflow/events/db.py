"""Database plumbing: one async engine per service, pinned to the service's own schema.

The engine sets ``search_path`` to the service schema on every connection, so service SQL
uses unqualified table names and tests isolate by giving each test its own schema.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")


def async_url(database_url: str) -> str:
    """Accept ``postgresql://`` (what every tool prints) and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {database_url!r}")


def plain_url(database_url: str) -> str:
    """The libpq form (``postgresql://``) for asyncpg.connect and psql."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    return database_url


def json_text(value: Any) -> str:
    """JSON as text, the way every JSON column and parameter is written (orjson; non-string
    keys become strings, as ``json.dumps`` makes them)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(
    database_url: str,
    schema: str,
    *,
    pool_size: int = 10,
    random_page_cost: float | None = None,
) -> AsyncEngine:
    """The service's pool. No pre-ping (it costs a round trip on every checkout): a
    connection that died with its server fails its first statement, SQLAlchemy then
    invalidates the whole pool, and the caller treats the error as transient (consumers
    retry the batch, APIs answer 503 + Retry-After).

    JSON and JSONB values are read with orjson (the asyncpg codec SQLAlchemy installs on
    each connection calls ``json_deserializer``): every stored event and every projection
    state is read through it, and the standard library's parser costs several times as
    much.

    ``random_page_cost`` (the sessions' planner setting; None keeps the server's): the hot
    statements join a batch's keys, passed as arrays, to their tables. A cached generic plan
    cannot see the array's length and guesses 10-100 rows; at the server default of 4 it
    then prefers a sequential scan of any table up to a few hundred pages over that many
    index probes, and pays the whole scan on every batch while the table grows into that
    size. Index probes into cached pages cost little more than sequential reads."""
    server_settings = {"search_path": f'"{schema}"'}
    if random_page_cost is not None:
        server_settings["random_page_cost"] = str(random_page_cost)
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": server_settings},
    )


# What a lost connection looks like from asyncpg (the server restarted, the socket died);
# an error that arrives while asyncpg still digests the server's goodbye can also be an
# internal protocol-state error.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside ``conn``'s transaction if it has one.

    The hot statements (a consumer batch's inbox claim, every append, intake's inquiry
    batch) go straight to asyncpg: SQLAlchemy's ``execute`` of a ``text()`` statement costs
    more CPU than asyncpg itself (parameter processing, result metadata, a greenlet switch
    each way).

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement: a statement
    sent to asyncpg before that would run outside the transaction, autocommitted. So when
    ``conn`` is in a transaction the adapter has not begun yet, it is begun here, as the
    adapter itself would begin it, and handed to the adapter (which commits or rolls it
    back with ``conn``). A test pins this against the adapter's private attributes.
    """
    fairy = await conn.get_raw_connection()
    adapted: Any = fairy.dbapi_connection
    driver: Any = fairy.driver_connection
    begun = adapted._transaction is not None or adapted.isolation_level == "autocommit"
    if conn.in_transaction() and not begun:
        adapted._transaction = await _invalidate_if_lost(conn, driver, _begin(driver, adapted))
    return driver


async def _begin(driver: Any, adapted: Any) -> Any:
    """BEGIN, with the adapter's own transaction settings."""
    transaction = driver.transaction(
        isolation=adapted.isolation_level, readonly=adapted.readonly, deferrable=adapted.deferrable
    )
    await transaction.start()
    return transaction


async def _invalidate_if_lost(conn: AsyncConnection, driver: Any, statement: Awaitable[T]) -> T:
    """Await ``statement``; if the connection turns out to be lost, invalidate it in the
    pool and raise ``ConnectionDoesNotExistError`` (transient: the caller retries). SQLAlchemy
    does that for its own statements; without it a dead connection would go back to the
    pool and fail every transaction that checks it out again."""
    try:
        return await statement
    except Exception as exc:
        if not (isinstance(exc, _CONNECTION_LOST) or driver.is_closed()):
            raise
        await conn.invalidate(exc)
        raise asyncpg.ConnectionDoesNotExistError(f"connection lost: {exc!r}") from exc


class Row(asyncpg.Record):
    """An asyncpg record that also reads like a SQLAlchemy row (``row.column``,
    ``row._mapping``), so code that parses rows takes either."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self.items())


# A quoted literal (kept as it is) or a ``:name`` parameter (not a ``::type`` cast).
_LITERAL_OR_PARAMETER = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


class DriverSql:
    """A statement written with ``:name`` parameters, as for ``sqlalchemy.text``, that is
    sent straight to asyncpg (see ``driver_connection``) with positional ones.

    For the statements on every hot path; the rest stay with SQLAlchemy. Rows are ``Row``s:
    ``row.column``, ``row["column"]``, ``row[0]``."""

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _LITERAL_OR_PARAMETER.sub(positional, sql)
        self.names = tuple(names)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetch(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Row]:
        driver = await driver_connection(conn)
        fetched = driver.fetch(self.sql, *self.args(params), record_class=Row)
        return list(await _invalidate_if_lost(conn, driver, fetched))

    async def execute(self, conn: AsyncConnection, params: Mapping[str, Any]) -> str:
        """The command's status, e.g. ``DELETE 3``."""
        driver = await driver_connection(conn)
        executed = driver.execute(self.sql, *self.args(params))
        return str(await _invalidate_if_lost(conn, driver, executed))


@functools.lru_cache(maxsize=512)
def driver_sql(sql: str) -> DriverSql:
    """``DriverSql(sql)``, rewritten once per text: for statements put together per batch
    from the parts it needs (a few shapes, each seen over and over)."""
    return DriverSql(sql)


def _alembic_config(database_url: str, schema: str, migrations_dir: Path) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    cfg.attributes["leadflow_schema"] = schema
    return cfg


def upgrade(database_url: str, schema: str, migrations_dir: Path, revision: str = "head") -> None:
    """``alembic upgrade head`` for one service schema (version table inside that schema)."""
    from alembic import command

    command.upgrade(_alembic_config(database_url, schema, migrations_dir), revision)


def downgrade(database_url: str, schema: str, migrations_dir: Path, revision: str) -> None:
    """``alembic downgrade <revision>`` for one service schema (a rollback, or a test of
    a migration's way back)."""
    from alembic import command

    command.downgrade(_alembic_config(database_url, schema, migrations_dir), revision)


async def upgrade_async(
    database_url: str, schema: str, migrations_dir: Path, revision: str = "head"
) -> None:
    """``upgrade`` from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, database_url, schema, migrations_dir, revision)


def head_revision(migrations_dir: Path) -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    return ScriptDirectory.from_config(cfg).get_current_head()


def run_migrations_env() -> None:
    """The body of every service's ``migrations/env.py``: online, async, schema-scoped."""
    from alembic import context
    from sqlalchemy import pool, text
    from sqlalchemy.engine import Connection

    cfg = context.config
    schema = cfg.attributes.get("leadflow_schema") or cfg.get_main_option("leadflow_schema")
    if not schema:
        raise RuntimeError("run migrations through leadflow.events.db.upgrade (schema unset)")
    url = cfg.get_main_option("sqlalchemy.url")
    assert url is not None

    def do_run(connection: Connection) -> None:
        # Serialise concurrent upgrades of one schema (replicas starting at once), creating
        # it included: two CREATE SCHEMA IF NOT EXISTS at once can still collide on the
        # catalogue's unique name. A session lock, released at the end or with the connection.
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": schema})
        connection.commit()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


async def current_revision(engine: AsyncEngine, schema: str) -> str | None:
    from sqlalchemy import text

    async with engine.connect() as conn:
        exists = await conn.scalar(
            text("SELECT to_regclass(:t)"), {"t": f'"{schema}".alembic_version'}
        )
        if exists is None:
            return None
        return await conn.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))
