"""Service schemas migrated once per test session and emptied between tests.

Migrating a service's schema costs 0.1-0.25 s (Alembic's environment, a statement per
object), and every integration test used to migrate a fresh one per service it started. A
``SchemaPool`` hands out one schema per service for the whole session (per pytest-xdist
worker: each worker is its own session, with its own prefix): the first kit that starts on
it migrates it, and the pool then remembers what the migrations left (seed rows such as
routing's reason codes or scoring's built-in tracks, and every sequence's position). After
each test ``reset`` puts the schemas the test used back to exactly that: every table
emptied (but ``alembic_version``), the seed rows copied back in binary form, the sequences
set back, and tables the test created dropped. A schema that cannot be reset (a lock held
past the timeout) or that was migrated outside the pool (a test calling ``upgrade`` itself)
is dropped instead and its service gets a fresh name next time.

Tests about migrations keep migrating a fresh schema of their own (``isolation.schema``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from leadflow.events.db import plain_url

log = logging.getLogger("leadflow.testing.schemas")

Upgrade = Callable[[str, str, Path, str], Awaitable[None]]
LOCK_TIMEOUT = "5s"
_KEEP = "alembic_version"


@dataclass
class _Seed:
    table: str
    columns: list[str]
    data: bytes  # binary COPY: every type round-trips exactly


@dataclass
class _Migrated:
    """A pool schema as its migrations left it."""

    migrations_dir: Path
    tables: set[str]
    seeds: list[_Seed]
    sequences: list[tuple[str, int, bool]]  # (name, value, is_called) for setval


@dataclass
class SchemaPool:
    """The session's migrated schemas: ``schema_for(key)`` names one; the kit's migration
    step goes through ``migrate`` (see ``patched_kit``); ``reset`` after each test."""

    database_url: str
    upgrade: Upgrade
    prefix: str = field(default_factory=lambda: f"s{uuid.uuid4().hex[:8]}_")
    _names: dict[str, str] = field(default_factory=dict)
    _migrated: dict[str, _Migrated] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _generation: int = 0
    _conn: asyncpg.Connection | None = None

    def schema_for(self, key: str) -> str:
        """The session's schema for ``key`` (a service, a settings class)."""
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"{self.prefix}{_slug(key)}"
        return name

    def owns(self, schema: str) -> bool:
        return schema.startswith(self.prefix)

    def is_migrated(self, schema: str) -> bool:
        return schema in self._migrated

    async def migrate(
        self, database_url: str, schema: str, migrations_dir: Path, revision: str = "head"
    ) -> None:
        """What a kit's ``upgrade_async`` does in tests: a pool schema is migrated by the
        first kit that starts on it and snapshotted; later kits find it migrated (and reset
        by the pool since). Any other schema, or another revision, migrates as always."""
        if not self.owns(schema) or revision != "head":
            await self.upgrade(database_url, schema, migrations_dir, revision)
            return
        lock = self._locks.setdefault(schema, asyncio.Lock())
        async with lock:  # two kits starting at once: the second finds it migrated
            known = self._migrated.get(schema)
            if known is not None:
                if known.migrations_dir != migrations_dir:
                    raise RuntimeError(
                        f"schema {schema} was migrated with {known.migrations_dir}, "
                        f"not {migrations_dir}: give this kit a schema of its own"
                    )
                return
            conn = await self._connect()
            try:
                existed = await _has_alembic(conn, schema)
                await self.upgrade(database_url, schema, migrations_dir, revision)
                if not existed:  # else migrated outside the pool: dropped after the test
                    self._migrated[schema] = await _snapshot(conn, schema, migrations_dir)
            finally:
                await conn.close()

    async def reset(self, schemas: Iterable[str]) -> None:
        """Put each pool schema back to what its migrations left (or drop it)."""
        for schema in schemas:
            known = self._migrated.get(schema)
            try:
                conn = await self._session()
                if known is None:
                    await _drop(conn, schema)
                else:
                    await _restore(conn, schema, known)
                    continue
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("schema %s could not be reset (%r): a new one next time", schema, exc)
                await self._close_session()
            self._forget(schema)

    async def _session(self) -> asyncpg.Connection:
        """The pool's own connection, kept for the session (a connection per reset cost
        more than the reset)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect()
        return self._conn

    async def _close_session(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        """Drop every schema of the session."""
        await self._close_session()
        conn = await self._connect()
        try:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", self.prefix
            )
            for row in rows:
                with contextlib.suppress(asyncpg.PostgresError):
                    await _drop(conn, row[0])
        finally:
            await conn.close()

    def _forget(self, schema: str) -> None:
        self._migrated.pop(schema, None)
        for key, name in list(self._names.items()):
            if name == schema:  # a fresh name: the old one may still be there
                self._generation += 1
                self._names[key] = f"{self.prefix}{_slug(key)}_{self._generation}"

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(plain_url(self.database_url))


@contextlib.contextmanager
def patched_kit(pool: SchemaPool) -> Iterator[None]:
    """Route the service kit's migration step through ``pool`` while the block runs."""
    from leadflow.events import kit

    original = kit.upgrade_async
    kit.upgrade_async = pool.migrate
    try:
        yield
    finally:
        kit.upgrade_async = original


def _slug(key: str) -> str:
    """A readable, unique name part: ``ScoringSettings:leadflow.scoring.settings`` →
    ``scoringsettings_<crc>`` (two classes of one name in different modules differ)."""
    readable = "".join(c if c.isalnum() else "_" for c in key.split(":", 1)[0].lower())[:30]
    return f"{readable}_{zlib.crc32(key.encode()):08x}"


def _q(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


async def _has_alembic(conn: asyncpg.Connection, schema: str) -> bool:
    found = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", _q(schema, _KEEP))
    return bool(found)


async def _tables(conn: asyncpg.Connection, schema: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2",
        schema,
        _KEEP,
    )
    return {r[0] for r in rows}


async def _snapshot(conn: asyncpg.Connection, schema: str, migrations_dir: Path) -> _Migrated:
    tables = await _tables(conn, schema)
    seeds: list[_Seed] = []
    for table in sorted(tables):
        if not await conn.fetchval(f"SELECT EXISTS (SELECT FROM {_q(schema, table)})"):
            continue
        columns = [
            r[0]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                _q(schema, table),
            )
        ]
        out = io.BytesIO()
        await conn.copy_from_table(
            table, schema_name=schema, columns=columns, output=out, format="binary"
        )
        seeds.append(_Seed(table, columns, out.getvalue()))
    sequences = [
        (r[0], r[1] if r[1] is not None else r[2], r[1] is not None)
        for r in await conn.fetch(
            "SELECT sequencename, last_value, start_value FROM pg_sequences WHERE schemaname = $1",
            schema,
        )
    ]
    return _Migrated(migrations_dir, tables, seeds, sequences)


async def _restore(conn: asyncpg.Connection, schema: str, known: _Migrated) -> None:
    """A handful of round trips whatever the schema's size: which of its tables have rows
    and which the test made (one statement), then one script that drops and empties those
    and sets every sequence back, then the seed rows copied in (one COPY per seeded table).
    ``DELETE``, not ``TRUNCATE``: a test leaves a few rows in a few tables, and a TRUNCATE
    costs new files per table."""
    tables = sorted(known.tables)
    probe = (
        "SELECT c.relname::text, true FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
        f"AND c.relkind IN ('r', 'p') AND c.relname <> '{_KEEP}' "
        "AND c.relname <> ALL($2::text[])"
    )
    probe += "".join(
        f" UNION ALL SELECT {_lit(t)}, false WHERE EXISTS (SELECT FROM {_q(schema, t)})"
        for t in tables
    )
    rows = await conn.fetch(probe, schema, tables)
    made = [r[0] for r in rows if r[1]]
    written = {r[0] for r in rows if not r[1]} | {seed.table for seed in known.seeds}
    script = [
        f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'",
        # No triggers (routing's load counters, sla's revision bumps) and no FK checks:
        # the rows put back are the migrations' own.
        "SET LOCAL session_replication_role = replica",
        *(f"DROP TABLE IF EXISTS {_q(schema, t)} CASCADE" for t in made),
        *(f"DELETE FROM {_q(schema, t)}" for t in sorted(written)),
    ]
    if known.sequences:
        script.append(
            "SELECT "
            + ", ".join(
                f"setval({_lit(_q(schema, name))}, {value}, {str(called).lower()})"
                for name, value, called in known.sequences
            )
        )
    async with conn.transaction():
        await conn.execute(";\n".join(script))
        for seed in known.seeds:
            await conn.copy_to_table(
                seed.table,
                schema_name=schema,
                columns=seed.columns,
                source=io.BytesIO(seed.data),
                format="binary",
            )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _drop(conn: asyncpg.Connection, schema: str) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(f"DROP SCHEMA IF EXISTS {_q(schema)} CASCADE")
