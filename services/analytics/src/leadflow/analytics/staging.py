"""Staging tables: how the analytics projections write a batch with a fixed handful of
statements, whatever its size.

A batch's rows are COPYed into a session temp table (a ``StagingTable``) and merged into their
projection table with one set-based statement (``INSERT ... SELECT ... ON CONFLICT ... DO
UPDATE SET n = t.n + EXCLUDED.n``); insert-only tables are COPYed straight in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadflow.events.sql import Tx


class StagingTable:
    """A session temp table a batch's rows are COPYed into, and how they are merged into a
    projection table; without ``target`` the rows are COPYed straight into ``table``
    (insert-only tables).

    ``source`` is a SELECT over the stage giving ``keys`` then ``values`` (default: those
    columns of the stage); with ``adds`` the values are added to a row already there
    (counts), otherwise they replace it (a lead's row). Two merges are derived from it:

    - ``merge``: ``INSERT ... ON CONFLICT DO UPDATE``, correct whoever else writes the
      table meanwhile (the live loop);
    - ``merge_locked``: an ``UPDATE ... FROM`` of the rows already there and a plain
      ``INSERT`` of the others, in one statement. Correct only while nobody else can write
      the table, i.e. under the group's checkpoint locks (the rebuild's chunks), and about
      half the cost there: a speculative ``ON CONFLICT`` insertion costs 2-3x a plain one,
      and in a rebuild nearly every row is new.

    COPY is several times cheaper than a multi-row ``INSERT ... unnest``: the driver checks
    every element of an array parameter but streams COPY records straight to the codec."""

    __slots__ = ("columns", "ddl", "merge", "merge_locked", "table")

    def __init__(
        self,
        table: str,
        columns: str,
        *,
        target: str | None = None,
        keys: Sequence[str] = (),
        values: Sequence[str] = (),
        source: str | None = None,
        adds: bool = True,
    ) -> None:
        self.table = table
        self.columns = tuple(c.split()[0] for c in columns.split(","))
        # ON COMMIT DELETE ROWS: a stage is empty at the start of every transaction.
        self.ddl = f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
        self.merge: str | None = None
        self.merge_locked: str | None = None
        if target is None:
            return
        cols = ", ".join((*keys, *values))
        select = source or f"SELECT {cols} FROM {table}"
        if adds:
            sets = ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values)
            locked_sets = ", ".join(f"{v} = t.{v} + s.{v}" for v in values)
        else:
            sets = ", ".join(f"{v} = EXCLUDED.{v}" for v in values)
            locked_sets = ", ".join(f"{v} = s.{v}" for v in values)
        self.merge = (
            f"INSERT INTO {target} AS t ({cols}) {select} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        )
        on_s = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        on_u = " AND ".join(f"u.{k} = s.{k}" for k in keys)
        self.merge_locked = (
            f"WITH s ({cols}) AS MATERIALIZED ({select}), "
            f"u AS (UPDATE {target} AS t SET {locked_sets} FROM s WHERE {on_s} "
            f"RETURNING {', '.join(f't.{k}' for k in keys)}) "
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM s "
            f"WHERE NOT EXISTS (SELECT FROM u WHERE {on_u})"
        )


Records = list[tuple[StagingTable, list[tuple[Any, ...]]]]


async def write_records(tx: Tx, records: Records, *, locked: bool = False) -> None:
    """COPY each stage's rows and merge them: the temp stages are created if this session
    has none yet and emptied first (one round trip), so a stage only ever holds its rows.

    ``locked``: the caller holds the group's checkpoint locks, so nobody else writes these
    tables before it commits and the cheaper ``merge_locked`` is used."""
    records = [(stage, rows) for stage, rows in records if rows]
    temps = [stage for stage, _ in records if stage.merge is not None]
    if temps:
        await tx.execute(
            ";".join([s.ddl for s in temps] + [f"DELETE FROM {s.table}" for s in temps])
        )
    for stage, rows in records:
        await tx.copy_records(stage.table, columns=stage.columns, records=rows)
    merges = [stage.merge_locked if locked else stage.merge for stage in temps]
    if merges:
        await tx.execute(";".join(m for m in merges if m is not None))
