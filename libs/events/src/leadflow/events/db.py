"""Database plumbing: one async engine per service, pinned to the service's own schema.

The engine sets ``search_path`` to the service schema on every connection, so service SQL
uses unqualified table names and tests isolate by giving each test its own schema.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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


def create_engine(database_url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    """The service's pool. No pre-ping (it costs a round trip on every checkout): a
    connection that died with its server fails its first statement, SQLAlchemy then
    invalidates the whole pool, and the caller treats the error as transient (consumers
    retry the batch, APIs answer 503 + Retry-After)."""
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"search_path": f'"{schema}"'}},
    )


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
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
        )
        with context.begin_transaction():
            # Serialise concurrent upgrades of one schema (two replicas starting at once).
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            context.run_migrations()

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
