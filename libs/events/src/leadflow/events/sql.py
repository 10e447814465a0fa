"""The kernel's one way to talk to Postgres: ``Tx``, a connection in a transaction (or in
autocommit, from ``kit.connect()``) with named parameters, asyncpg's speed and the kernel's
error types (``leadflow.events.errors``) instead of a driver's.

Statements are written with ``:name`` parameters, as for ``sqlalchemy.text`` (so a
statement moves over unchanged) and compiled once per text to asyncpg's ``$n`` form.

Stage 1 of issue #25 item 3: a ``Tx`` rides on the service's SQLAlchemy ``AsyncConnection``
through its asyncpg driver connection (``db.driver_connection``), so services convert one
module at a time; stage 2 swaps the engine for an asyncpg pool.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

import asyncpg
from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.typing import TupleAny, Unpack

from leadflow.events.db import Row, driver_connection
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

__all__ = [
    "AnyConnection",
    "BridgeTx",
    "Compiled",
    "Row",
    "Tx",
    "as_tx",
    "compile_named",
    "translate_error",
]


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

    def __init__(self, conn: AsyncConnection) -> None:
        self._sa_conn = conn
        self._raw: tuple[Any, Any] | None = None

    async def _driver(self) -> Any:
        """The asyncpg connection, inside the SQLAlchemy connection's transaction if it has
        one (begun here if SQLAlchemy has not sent BEGIN yet; see ``db.driver_connection``)."""
        raw = self._raw
        if raw is None:
            fairy = await self._sa_conn.get_raw_connection()
            raw = self._raw = (fairy.dbapi_connection, fairy.driver_connection)
        adapted: Any = raw[0]
        driver = raw[1]
        if (
            adapted._transaction is None
            and adapted.isolation_level != "autocommit"
            and self._sa_conn.in_transaction()
        ):
            await self._guard(driver, driver_connection(self._sa_conn))
        return driver

    async def _guard(self, driver: Any, statement: Awaitable[T]) -> T:
        """Await ``statement`` with driver errors translated to the kernel's. A lost
        connection is invalidated in the pool (a dead connection must not go back and fail
        every transaction that checks it out again)."""
        try:
            return await statement
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            error = translate_error(exc)
            if error is None:  # pragma: no cover - every caught type translates
                raise
            lost = isinstance(error, DatabaseUnavailable) or driver.is_closed()
            if lost and not isinstance(error, DatabaseUnavailable):
                error = DatabaseUnavailable(f"connection lost: {exc!r}", sqlstate=error.sqlstate)
            if lost:
                with contextlib.suppress(Exception):
                    await self._sa_conn.invalidate(exc)
            raise error from exc

    async def fetch(self, sql: str, /, **params: Any) -> list[Row]:
        compiled = compile_named(sql)
        driver = await self._driver()
        return await self._guard(
            driver, driver.fetch(compiled.sql, *compiled.args(params), record_class=Row)
        )

    async def fetchrow(self, sql: str, /, **params: Any) -> Row | None:
        compiled = compile_named(sql)
        driver = await self._driver()
        return await self._guard(
            driver, driver.fetchrow(compiled.sql, *compiled.args(params), record_class=Row)
        )

    async def fetchval(self, sql: str, /, **params: Any) -> Any:
        compiled = compile_named(sql)
        driver = await self._driver()
        return await self._guard(driver, driver.fetchval(compiled.sql, *compiled.args(params)))

    async def execute(self, sql: str, /, **params: Any) -> int:
        """Run a statement; the number of rows it affected (0 for one that affects none)."""
        compiled = compile_named(sql)
        driver = await self._driver()
        args = compiled.args(params)
        if args:
            status = await self._guard(driver, driver.execute(compiled.sql, *args))
        else:
            # No parameters: the simple protocol, which also takes several statements.
            status = await self._guard(driver, driver.execute(compiled.sql))
        return _rowcount(str(status))

    async def executemany(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """One statement for each of ``rows`` (pipelined; prefer one set-based statement
        over arrays where the statement allows it)."""
        compiled = compile_named(sql)
        driver = await self._driver()
        await self._guard(
            driver, driver.executemany(compiled.sql, [compiled.args(row) for row in rows])
        )

    async def copy_records(
        self, table: str, *, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> int:
        """COPY ``records`` into ``table`` (in the service's schema): the fastest bulk insert.
        The number of rows copied."""
        driver = await self._driver()
        status = await self._guard(
            driver,
            driver.copy_records_to_table(table, columns=list(columns), records=records),
        )
        return _rowcount(str(status))

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A savepoint: what fails inside it is rolled back to here and re-raised, the
        transaction goes on (e.g. an insert that may hit a unique key)."""
        driver = await self._driver()
        savepoint = driver.transaction()
        await self._guard(driver, savepoint.start())
        try:
            yield
        except BaseException:
            await self._guard(driver, savepoint.rollback())
            raise
        else:
            await self._guard(driver, savepoint.commit())


class BridgeTx(Tx, AsyncConnection):
    """Stage 1 only (gone with stage 2): every connection the kernel hands out (``uow.conn``
    and ``uow.tx``, ``kit.connect()``, ``kit.transaction()``, ``kit.snapshot()``) is a
    ``Tx`` that is also the SQLAlchemy ``AsyncConnection`` it rides on, so a module that
    still passes it to ``conn.execute(text(...), {...})`` (or to a function taking an
    ``AsyncConnection``) keeps working while services convert. ``execute`` of a ``str`` is
    ``Tx.execute``; of anything else, SQLAlchemy's."""

    def __init__(self, engine: AsyncEngine, sync_connection: Connection | None = None) -> None:
        AsyncConnection.__init__(self, engine, sync_connection)
        Tx.__init__(self, self)

    @overload
    async def execute(self, sql: str, /, **params: Any) -> int: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        parameters: Any = None,
        /,
        *,
        execution_options: Any = None,
    ) -> CursorResult[Unpack[TupleAny]]: ...

    async def execute(self, statement: Any, /, *args: Any, **params: Any) -> Any:
        if isinstance(statement, str):
            return await Tx.execute(self, statement, **params)
        return await AsyncConnection.execute(self, statement, *args, **params)


# Stage 1: what the kernel's functions take where a service may still hold a SQLAlchemy
# connection of its own (stage 2 makes it ``Tx``).
AnyConnection = Tx | AsyncConnection


def as_tx(conn: Tx | AsyncConnection) -> BridgeTx:
    """Stage 1: ``conn`` as a ``BridgeTx`` (itself if it is one; otherwise a second face of
    the same SQLAlchemy connection, in the same transaction)."""
    if isinstance(conn, BridgeTx):
        return conn
    if isinstance(conn, AsyncConnection):
        return BridgeTx(conn.engine, conn.sync_connection)
    sa_conn = conn._sa_conn
    if isinstance(sa_conn, BridgeTx):
        return sa_conn
    return BridgeTx(sa_conn.engine, sa_conn.sync_connection)


@contextlib.asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[BridgeTx]:
    """A ``Tx`` from ``engine``'s pool in autocommit (stage 1: the kit's engine)."""
    tx = BridgeTx(engine)
    async with tx:
        yield tx


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[BridgeTx]:
    """A ``Tx`` from ``engine``'s pool in a transaction: committed when the block ends,
    rolled back if it raises."""
    tx = BridgeTx(engine)
    async with tx, tx.begin():
        yield tx
