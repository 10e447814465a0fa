"""Database plumbing: URLs, the row type, JSON text, and migrations (Alembic, the one user
of SQLAlchemy left). The pool and transactions are ``leadflow.events.sql``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import orjson


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


class Row(asyncpg.Record):
    """An asyncpg record that also reads by attribute (``row.column``) and as a mapping
    (``row._mapping``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self.items())


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
    from sqlalchemy.ext.asyncio import create_async_engine

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
