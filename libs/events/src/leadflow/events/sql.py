"""The kernel's one way to talk to Postgres: ``Database`` (the service's asyncpg pool,
pinned to its schema) and ``Tx``, one of its connections in a transaction (or in autocommit,
from ``kit.connect()``) with named parameters and the kernel's error types
(``leadflow.events.errors``) instead of a driver's.

Statements are written with ``:name`` parameters, as for ``sqlalchemy.text`` (so a
statement moved over unchanged) and compiled once per text to asyncpg's ``$n`` form.
SQLAlchemy is left to Alembic (``db.upgrade`` and the services' migrations).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import asyncpg
import orjson

from leadflow.events.db import Row
from leadflow.events.errors import (
    CheckViolation,
    DatabaseError,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    SerializationFailure,
    UniqueViolation,
)

T = TypeVar("T")

__all__ = ["Compiled", "Database", "Row", "Tx", "compile_named", "translate_error"]


# -- named parameters ----------------------------------------------------------------------


class Compiled:
    """A statement in asyncpg's positional form and the names its ``$n`` stand for."""

    __slots__ = ("names", "sql")

    def __init__(self, sql: str, names: tuple[str, ...]) -> None:
        self.sql = sql
        self.names = names

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments, in ``$n`` order (names not in the statement are
        ignored, as ``sqlalchemy.text`` ignores them)."""
        try:
            return [params[name] for name in self.names]
        except KeyError as exc:
            raise TypeError(f"the statement needs a value for :{exc.args[0]}") from None

    def __repr__(self) -> str:
        return f"Compiled({self.sql!r}, {self.names!r})"


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _dollar_tag(sql: str, i: int) -> str | None:
    """The ``$tag$`` opening a dollar-quoted literal at ``i`` (``$$`` included), or None
    (``$1`` is a positional parameter, not a quote)."""
    j = i + 1
    n = len(sql)
    if j < n and (sql[j].isalpha() or sql[j] == "_"):
        while j < n and _is_word(sql[j]):
            j += 1
    if j < n and sql[j] == "$":
        return sql[i : j + 1]
    return None


def _scan(sql: str) -> tuple[str, tuple[str, ...]]:
    out: list[str] = []
    names: list[str] = []
    i = 0
    n = len(sql)
    start = 0  # the start of the text not yet copied to ``out``
    while i < n:
        ch = sql[i]
        if ch == "'":
            # A string literal; '' is a quote inside it. After E (escape string) a
            # backslash escapes the next character.
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_word(sql[i - 2]))
            i += 1
            while i < n:
                if escaped and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == "'":
                    if i + 1 < n and sql[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == '"':
            end = sql.find('"', i + 1)
            i = n if end < 0 else end + 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and sql.startswith("/*", i):
            depth = 0  # Postgres' block comments nest
            while i < n:
                if sql.startswith("/*", i):
                    depth += 1
                    i += 2
                elif sql.startswith("*/", i):
                    depth -= 1
                    i += 2
                    if depth == 0:
                        break
                else:
                    i += 1
        elif ch == "$" and (i == 0 or not _is_word(sql[i - 1])):
            tag = _dollar_tag(sql, i)
            if tag is None:
                i += 1
            else:
                end = sql.find(tag, i + len(tag))
                i = n if end < 0 else end + len(tag)
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2  # a cast; its type name is an identifier
                while i < n and sql[i] == ":":
                    i += 1
            elif i > 0 and sql[i - 1] == "\\":
                # ``\:`` is a literal colon (as in ``sqlalchemy.text``)
                out.append(sql[start : i - 1])
                start = i
                i += 1
            elif (
                i + 1 < n
                and (sql[i + 1].isalpha() or sql[i + 1] == "_")
                and (i == 0 or not _is_word(sql[i - 1]))
            ):
                j = i + 1
                while j < n and _is_word(sql[j]):
                    j += 1
                name = sql[i + 1 : j]
                if name not in names:
                    names.append(name)
                out.append(sql[start:i])
                out.append(f"${names.index(name) + 1}")
                start = i = j
            else:
                i += 1  # a slice bound (``a[1:2]``) or something else that is no name
        else:
            i += 1
    out.append(sql[start:])
    return "".join(out), tuple(names)


@functools.lru_cache(maxsize=2048)
def compile_named(sql: str) -> Compiled:
    """``sql`` with its ``:name`` parameters as ``$1``, ``$2`` …, once per text.

    ``::type`` casts, quoted literals (``'…'``, ``E'…'``, ``$tag$…$tag$``), quoted
    identifiers and comments are left alone; one name used twice is one ``$n``; ``\\:``
    is a literal colon."""
    return Compiled(*_scan(sql))


# -- errors --------------------------------------------------------------------------------

# What a lost connection looks like from asyncpg (the server restarted, the socket died);
# an error that arrives while asyncpg still digests the server's goodbye can also be an
# internal protocol-state error.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,
)

_BY_SQLSTATE: dict[str, type[DatabaseError]] = {
    "23505": UniqueViolation,
    "23503": ForeignKeyViolation,
    "23514": CheckViolation,
    "23502": CheckViolation,
    "40001": SerializationFailure,
    "40P01": SerializationFailure,
}

# The server is shutting down, restarting or not accepting connections yet.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def translate_error(exc: BaseException) -> DatabaseError | None:
    """The kernel error for a driver error (``None``: not a database error). The driver's
    exception stays the ``__cause__``."""
    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # asyncpg's client-side refusal of an argument ("value out of int32 range")
        return InvalidData(str(exc))
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        constraint = getattr(exc, "constraint_name", None)
        kind = _BY_SQLSTATE.get(state)
        if kind is None:
            if state.startswith("22"):
                kind = InvalidData
            elif (
                state.startswith("08")
                or state in _UNAVAILABLE_SQLSTATES
                or isinstance(exc, asyncpg.PostgresConnectionError)
            ):
                kind = DatabaseUnavailable
            else:
                kind = DatabaseError
        return kind(str(exc), sqlstate=state, constraint=constraint)
    if isinstance(exc, _CONNECTION_LOST):
        return DatabaseUnavailable(f"connection lost: {exc!r}")
    return None


# -- the transaction -----------------------------------------------------------------------


def _rowcount(status: str) -> int:
    """Rows affected from a command status (``UPDATE 3``, ``INSERT 0 3``; 0 for ``BEGIN``)."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class Tx:
    """One connection, in a transaction (or autocommit from ``kit.connect()``), with named
    parameters. The only way service code talks to Postgres.

    Rows are ``leadflow.events.db.Row`` (``row["c"]``, ``row.c``, ``row[0]``). JSON and
    JSONB parameters are JSON text (``db.json_text``); JSON results come back decoded.
    Errors are the kernel's (``DatabaseError`` and its kinds), the driver's as ``__cause__``.
    """

    __slots__ = ("__weakref__", "_conn", "lost")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        # The connection was lost under a statement: the pool must not hand it out again.
        self.lost = False

    async def _guard(self, statement: Awaitable[T]) -> T:
        """Await ``statement`` with driver errors translated to the kernel's. A lost
        connection is closed, so the pool replaces it instead of handing a dead one to the
        next transaction."""
        try:
            return await statement
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,  # a protocol state left by a lost peer
            OSError,
            TimeoutError,
        ) as exc:
            error = translate_error(exc)
            if error is None:  # pragma: no cover - every caught type translates
                raise
            if not isinstance(error, DatabaseUnavailable) and self._conn.is_closed():
                error = DatabaseUnavailable(f"connection lost: {exc!r}", sqlstate=error.sqlstate)
            if isinstance(error, DatabaseUnavailable):
                self.lost = True
                with contextlib.suppress(Exception):  # already closed (and released) is fine
                    self._conn.terminate()
            raise error from exc

    async def fetch(self, sql: str, /, **params: Any) -> list[Row]:
        compiled = compile_named(sql)
        return await self._guard(
            self._conn.fetch(compiled.sql, *compiled.args(params), record_class=Row)
        )

    async def fetchrow(self, sql: str, /, **params: Any) -> Row | None:
        compiled = compile_named(sql)
        return await self._guard(
            self._conn.fetchrow(compiled.sql, *compiled.args(params), record_class=Row)
        )

    async def fetchval(self, sql: str, /, **params: Any) -> Any:
        compiled = compile_named(sql)
        return await self._guard(self._conn.fetchval(compiled.sql, *compiled.args(params)))

    async def execute(self, sql: str, /, **params: Any) -> int:
        """Run a statement; the number of rows it affected (0 for one that affects none)."""
        compiled = compile_named(sql)
        args = compiled.args(params)
        if args:
            status = await self._guard(self._conn.execute(compiled.sql, *args))
        else:
            # No parameters: the simple protocol, which also takes several statements.
            status = await self._guard(self._conn.execute(compiled.sql))
        return _rowcount(str(status))

    async def executemany(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """One statement for each of ``rows`` (pipelined; prefer one set-based statement
        over arrays where the statement allows it)."""
        compiled = compile_named(sql)
        await self._guard(self._conn.executemany(compiled.sql, [compiled.args(r) for r in rows]))

    async def copy_records(
        self, table: str, *, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> int:
        """COPY ``records`` into ``table`` (in the service's schema): the fastest bulk insert.
        The number of rows copied."""
        status = await self._guard(
            self._conn.copy_records_to_table(table, columns=list(columns), records=records)
        )
        return _rowcount(str(status))

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A savepoint: what fails inside it is rolled back to here and re-raised, the
        transaction goes on (e.g. an insert that may hit a unique key)."""
        savepoint = self._conn.transaction()
        await self._guard(savepoint.start())
        try:
            yield
        except BaseException:
            if not self.lost:
                await self._guard(savepoint.rollback())
            raise
        else:
            await self._guard(savepoint.commit())


# -- the pool ------------------------------------------------------------------------------


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """JSON and JSONB parameters are JSON text (as ``db.json_text`` writes them), results
    are decoded with orjson (every stored event and projection state is read through it;
    the standard library's parser costs several times as much). Binary format, as COPY
    needs it (a JSONB value is its version byte, 1, then the text)."""
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=_json_bytes, decoder=orjson.loads, format="binary"
    )
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_bytes, decoder=_jsonb_value, format="binary"
    )


def _json_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    raise InvalidData(f"a JSON parameter must be JSON text (db.json_text), not {type(value)}")


def _jsonb_bytes(value: Any) -> bytes:
    return b"\x01" + _json_bytes(value)


def _jsonb_value(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: nothing unless a
    transaction was left open (the kit never does). asyncpg's default reset costs a round
    trip per checkout (UNLISTEN, RESET ALL, ...) for state the kit never leaves behind."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    """The service's pool of asyncpg connections, each with ``search_path`` set to the
    service schema (service SQL uses unqualified names; tests isolate by schema).

    No pre-ping (it costs a round trip on every checkout): a connection that died with its
    server fails its first statement with ``DatabaseUnavailable`` and is closed, the pool
    replaces it, and the caller treats the error as transient (consumers retry the batch,
    APIs answer 503 + Retry-After).

    ``random_page_cost`` (the sessions' planner setting; None keeps the server's): the hot
    statements join a batch's keys, passed as arrays, to their tables. A cached generic plan
    cannot see the array's length and guesses 10-100 rows; at the server default of 4 it
    then prefers a sequential scan of any table up to a few hundred pages over that many
    index probes, and pays the whole scan on every batch while the table grows into that
    size. Index probes into cached pages cost little more than sequential reads."""

    def __init__(
        self,
        database_url: str,
        schema: str,
        *,
        pool_size: int = 10,
        random_page_cost: float | None = None,
    ) -> None:
        from leadflow.events.db import plain_url

        self.url = plain_url(database_url)
        self.schema = schema
        self.pool_size = pool_size
        self.server_settings = {"search_path": f'"{schema}"'}
        if random_page_cost is not None:
            self.server_settings["random_page_cost"] = str(random_page_cost)
        self._pool: asyncpg.Pool | None = None
        self._starting: asyncio.Lock | None = None
        self._loggers: list[Callable[[Any], None]] = []
        self._logged: dict[Callable[[Any], None], set[asyncpg.Connection]] = {}

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=0,
                        max_size=2 * self.pool_size,
                        server_settings=self.server_settings,
                        init=_json_codecs,
                        reset=_reset,
                    )
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    raise _unavailable(exc) from exc
        return self._pool

    async def _acquire(self) -> asyncpg.Connection:
        pool = await self._get_pool()
        try:
            conn = await pool.acquire()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        for logger in self._loggers:
            seen = self._logged[logger]
            if conn not in seen:
                conn.add_query_logger(logger)
                seen.add(conn)
        return conn

    async def _release(self, conn: asyncpg.Connection) -> None:
        assert self._pool is not None
        with contextlib.suppress(Exception):  # a lost connection: the pool replaces it
            await self._pool.release(conn)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Tx]:
        """A ``Tx`` in autocommit: each statement is its own transaction (single reads)."""
        conn = await self._acquire()
        try:
            yield Tx(conn)
        finally:
            await self._release(conn)

    @contextlib.asynccontextmanager
    async def transaction(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AsyncIterator[Tx]:
        """A ``Tx`` in a transaction: committed when the block ends, rolled back if it
        raises (``isolation``: asyncpg's name, e.g. ``repeatable_read``)."""
        conn = await self._acquire()
        tx = Tx(conn)
        try:
            transaction = conn.transaction(isolation=isolation, readonly=readonly)
            await tx._guard(transaction.start())
            try:
                yield tx
            except BaseException:
                if not tx.lost:
                    with contextlib.suppress(Exception):  # lost meanwhile: nothing to undo
                        await transaction.rollback()
                raise
            await tx._guard(transaction.commit())
        finally:
            await self._release(conn)

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A READ ONLY REPEATABLE READ transaction: every statement sees the same moment."""
        return self.transaction(isolation="repeatable_read", readonly=True)

    @contextlib.contextmanager
    def logging_queries(self, logger: Callable[[Any], None]) -> Iterator[None]:
        """Call ``logger`` with every statement sent while the block runs (asyncpg's query
        records: ``.query``), BEGIN and COMMIT included: for tests that count round trips."""
        self._loggers.append(logger)
        self._logged[logger] = set()
        try:
            yield
        finally:
            self._loggers.remove(logger)
            for conn in self._logged.pop(logger):
                with contextlib.suppress(Exception):
                    conn.remove_query_logger(logger)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, Exception):
                pool.terminate()


def _unavailable(exc: BaseException) -> DatabaseError:
    error = translate_error(exc) or DatabaseUnavailable(repr(exc))
    if isinstance(error, DatabaseUnavailable | InvalidData):
        return error
    return DatabaseUnavailable(f"cannot connect: {exc!r}", sqlstate=error.sqlstate)
