"""Commit a write exactly between two statements of a read: the race a read at one moment
(``kit.snapshot()``) must survive, made deterministic instead of waited for."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from leadflow.events.sql import Tx


@dataclass
class Between:
    """What the patched method saw: every statement it ran, in order, and the one after
    which the write committed (``None``: no statement matched, the test proved nothing)."""

    statements: list[str] = field(default_factory=list)
    wrote_after: str | None = None


@contextlib.contextmanager
def write_after_statement(
    method: Literal["fetch", "fetchrow"],
    after: str,
    write: Callable[[], Awaitable[Any]],
) -> Iterator[Between]:
    """While the block runs, the first ``Tx.<method>`` statement containing ``after`` is
    followed, before it returns its rows, by ``await write()`` (which commits on its own
    connection); ``Tx`` is restored when the block ends."""
    real = getattr(Tx, method)
    seen = Between()

    async def then_write(self: Tx, sql: str, **params: Any) -> Any:
        result = await real(self, sql, **params)
        seen.statements.append(sql)
        if seen.wrote_after is None and after in sql:
            seen.wrote_after = sql
            await write()
        return result

    setattr(Tx, method, then_write)
    try:
        yield seen
    finally:
        setattr(Tx, method, real)
