"""``leadflow.events.sql.Tx`` against a real Postgres: where each way of getting one runs
its statements (unit of work, ``kit.transaction``, ``kit.connect``, ``kit.snapshot``), what
it returns, and which kernel error each refusal becomes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from leadflow.events.db import json_text, plain_url
from leadflow.events.errors import (
    CheckViolation,
    DatabaseError,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    UniqueViolation,
)
from leadflow.events.faults import is_bad_data, is_transient
from leadflow.events.kit import ServiceKit

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]

_DDL = (
    "CREATE TABLE tx_notes (n integer PRIMARY KEY CONSTRAINT tx_notes_n_small CHECK (n < 1000),"
    " doc jsonb, label text);"
    "CREATE TABLE tx_refs (n integer REFERENCES tx_notes (n))"
)


class Rollback(Exception):
    pass


async def _kit(settings_for: Any) -> ServiceKit[Any]:
    kit = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await kit.start()
    async with kit.transaction() as tx:
        await tx.execute(_DDL)
    return kit


async def _ns(kit: ServiceKit[Any]) -> list[int]:
    async with kit.connect() as tx:
        return [r["n"] for r in await tx.fetch("SELECT n FROM tx_notes ORDER BY n")]


async def test_statements_run_in_the_unit_of_work_and_go_with_its_rollback(settings_for) -> None:
    kit = await _kit(settings_for)
    try:
        with pytest.raises(Rollback):
            async with kit.unit_of_work() as uow:
                assert await uow.tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=1) == 1
                await uow.tx.execute("INSERT INTO tx_notes (n) VALUES (2)")
                assert await uow.tx.fetchval("SELECT count(*) FROM tx_notes") == 2
                raise Rollback
        with pytest.raises(Rollback):
            async with kit.transaction() as tx:
                await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=3)
                raise Rollback
        async with kit.unit_of_work() as uow:
            await uow.tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=4)
        async with kit.transaction() as tx:
            await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=5)
        assert await _ns(kit) == [4, 5]
    finally:
        await kit.stop()


async def test_reads_writes_and_their_results(settings_for) -> None:
    kit = await _kit(settings_for)
    try:
        async with kit.transaction() as tx:
            await tx.executemany(
                "INSERT INTO tx_notes (n, doc, label) VALUES (:n, CAST(:doc AS jsonb), :label)",
                [
                    {"n": n, "doc": json_text({"n": n, 7: "seven"}), "label": f"#{n}"}
                    for n in (1, 2)
                ],
            )
            copied = await tx.copy_records(
                "tx_notes", columns=("n", "label"), records=[(3, "c"), (4, "d")]
            )
            assert copied == 2
            changed = await tx.execute("UPDATE tx_notes SET label = :l WHERE n > :n", l="x", n=2)
            assert changed == 2
        async with kit.connect() as tx:
            rows = await tx.fetch(
                "SELECT n, doc, label FROM tx_notes WHERE n = ANY(:ns) ORDER BY n", ns=[1, 3]
            )
            assert [(r.n, r["doc"], r.label) for r in rows] == [
                (1, {"n": 1, "7": "seven"}, "#1"),
                (3, None, "x"),
            ]
            row = await tx.fetchrow(
                "SELECT n, label FROM tx_notes WHERE label = ':x' OR n = :n", n=2
            )
            assert row is not None and tuple(row) == (2, "#2")
            assert await tx.fetchrow("SELECT n FROM tx_notes WHERE n = :n", n=99) is None
            assert await tx.fetchval("SELECT :a::int + :a::int", a=21) == 42
            assert await tx.execute("DELETE FROM tx_notes WHERE n = :n", n=99) == 0
    finally:
        await kit.stop()


async def test_connect_is_autocommit_and_a_snapshot_is_read_only(settings_for) -> None:
    kit = await _kit(settings_for)
    try:
        async with kit.connect() as tx:
            await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=1)
            with pytest.raises(UniqueViolation):
                await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=1)
            await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=2)  # still usable
        assert await _ns(kit) == [1, 2]
        async with kit.snapshot() as view:
            before = await view.fetchval("SELECT count(*) FROM tx_notes")
            async with kit.transaction() as tx:  # a writer commits in between
                await tx.execute("INSERT INTO tx_notes (n) VALUES (3)")
            assert await view.fetchval("SELECT count(*) FROM tx_notes") == before == 2
            with pytest.raises(DatabaseError, match="read-only"):
                await view.execute("DELETE FROM tx_notes")
    finally:
        await kit.stop()


async def test_refusals_become_the_kernels_errors(settings_for) -> None:
    kit = await _kit(settings_for)
    try:
        async with kit.transaction() as tx:
            await tx.execute("INSERT INTO tx_notes (n) VALUES (1)")
            with pytest.raises(UniqueViolation) as unique:
                async with tx.savepoint():
                    await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=1)
            assert unique.value.constraint == "tx_notes_pkey"
            assert unique.value.sqlstate == "23505"
            assert isinstance(unique.value.__cause__, asyncpg.UniqueViolationError)
            with pytest.raises(CheckViolation) as check:
                async with tx.savepoint():
                    await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=5000)
            assert check.value.constraint == "tx_notes_n_small"
            with pytest.raises(ForeignKeyViolation):
                async with tx.savepoint():
                    await tx.execute("INSERT INTO tx_refs (n) VALUES (:n)", n=7)
            with pytest.raises(InvalidData) as bad:  # refused by asyncpg (int32)
                async with tx.savepoint():
                    await tx.execute("INSERT INTO tx_notes (n) VALUES (:n)", n=2**40)
            assert is_bad_data(bad.value) and not is_transient(bad.value)
            with pytest.raises(InvalidData) as bad_text:  # refused by Postgres (NUL byte)
                async with tx.savepoint():
                    await tx.execute("INSERT INTO tx_notes (n, label) VALUES (2, :l)", l="a\x00b")
            assert is_bad_data(bad_text.value)
            async with tx.savepoint():  # a savepoint that succeeds keeps its work
                await tx.execute("INSERT INTO tx_notes (n) VALUES (3)")
        assert await _ns(kit) == [1, 3]  # the transaction went on after each refusal
    finally:
        await kit.stop()


async def test_a_lost_connection_is_unavailable_and_leaves_the_pool(settings_for) -> None:
    """The server ends a connection's backend under a statement (a restart does that to all
    of them): the statement raises ``DatabaseUnavailable`` (transient), the dead connection
    leaves the pool, and the retry runs on a live one. A pooled connection ended while idle
    fails its next user at most once (nobody had noticed it was gone), never again."""
    kit = await _kit(settings_for)
    try:
        with pytest.raises(DatabaseUnavailable) as lost:
            async with kit.transaction() as tx:
                doomed = await tx.fetchval("SELECT pg_backend_pid()")
                await tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert is_transient(lost.value)
        async with kit.transaction() as tx:
            alive = await tx.fetchval("SELECT pg_backend_pid()")
        assert alive != doomed
        admin = await asyncpg.connect(plain_url(kit.settings.database_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", alive)
        finally:
            await admin.close()
        failures = 0
        for _ in range(2):
            try:
                async with kit.connect() as tx:
                    now_alive = await tx.fetchval("SELECT pg_backend_pid()")
                break
            except DatabaseUnavailable:
                failures += 1
        assert failures <= 1 and now_alive not in (alive, doomed)
    finally:
        await kit.stop()


async def test_json_parameters_are_text_and_results_come_back_decoded(settings_for) -> None:
    """JSON and JSONB parameters are JSON text (``db.json_text``: orjson, non-string keys as
    strings); JSON and JSONB results are decoded (with orjson)."""
    kit = await _kit(settings_for)
    try:
        doc = {"name": "Zoë", 7: [1.5, None, True], "nested": {"n": 2**40}}
        async with kit.connect() as tx:
            as_jsonb = await tx.fetchval("SELECT CAST(:d AS jsonb)", d=json_text(doc))
            as_json = await tx.fetchval("""SELECT '{"a": [1, 2.5]}'::json""")
            with pytest.raises(InvalidData):
                await tx.fetchval("SELECT CAST(:d AS jsonb)", d=doc)
        assert as_jsonb == {"name": "Zoë", "7": [1.5, None, True], "nested": {"n": 2**40}}
        assert as_json == {"a": [1, 2.5]}
    finally:
        await kit.stop()
