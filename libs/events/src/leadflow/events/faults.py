"""Which failures are transient: "the world is briefly away" (retry) versus "this input is
bad" (refuse it, dead-letter it). One answer for every part of the kernel that talks to
Postgres: the consumer and timer runners retry on it, the HTTP layer answers 503 or 422.
"""

from __future__ import annotations

import asyncpg

from leadflow.events.errors import (
    ConcurrencyError,
    DatabaseError,
    DatabaseUnavailable,
    InvalidData,
    SerializationFailure,
)

# Where a transient error may come from (is_transient decides for each instance).
TRANSIENT_ERROR_TYPES: tuple[type[Exception], ...] = (
    DatabaseError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


# Serialization failure, deadlock, server shutting down or restarting, connection lost.
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
)


def is_bad_data(exc: BaseException) -> bool:
    """The database refused a value itself (SQLSTATE class 22: text it cannot store, a
    number out of a column's range) or asyncpg refused to encode it: the input is bad, and
    retrying it changes nothing."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InvalidData | asyncpg.DataError | UnicodeEncodeError):
            return True
        # asyncpg's client-side refusal ("value out of int32 range") is an InterfaceError
        # that is also a ValueError (asyncpg.exceptions._base.DataError).
        if isinstance(current, asyncpg.InterfaceError) and isinstance(current, ValueError):
            return True
        current = current.__cause__
    return False


def is_transient(exc: BaseException) -> bool:
    """Errors that mean "the world is briefly away", not "this record is bad"."""
    if is_bad_data(exc):
        return False
    if isinstance(exc, DatabaseUnavailable | SerializationFailure):
        return True
    if isinstance(exc, DatabaseError):  # the kernel's (leadflow.events.sql): by its code
        return exc.sqlstate in TRANSIENT_SQLSTATES
    if isinstance(exc, ConcurrencyError | OSError):
        return True
    if isinstance(exc, TimeoutError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return True
    if isinstance(exc, asyncpg.PostgresError):  # the outbox relay's own connection
        return exc.sqlstate in TRANSIENT_SQLSTATES
    return False
