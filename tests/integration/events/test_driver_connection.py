"""Statements sent straight to asyncpg run inside the unit of work's transaction.

SQLAlchemy's asyncpg adapter sends BEGIN with its first statement. The kernel's hot
statements (inbox claim, append) go to asyncpg directly, often as the first statement of a
transaction: unless ``driver_connection`` begins the transaction first, they would be
autocommitted, and a batch that fails after them would leave its inbox claim and events
behind (the batch's redelivery would then skip those events as already seen)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB

from leadflow.events.db import DriverSql, create_engine, driver_connection, json_text, plain_url
from leadflow.events.faults import is_transient

pytestmark = [pytest.mark.postgres]


class Rollback(Exception):
    pass


async def test_a_first_statement_sent_to_asyncpg_rolls_back_with_the_transaction(
    isolation: Any,
) -> None:
    engine = create_engine(isolation.database_url, isolation.schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{isolation.schema}"'))
            await conn.execute(text("CREATE TABLE notes (n integer)"))
            await conn.commit()
        with pytest.raises(Rollback):
            async with engine.connect() as conn, conn.begin():
                apg = await driver_connection(conn)
                assert apg.is_in_transaction()
                await apg.execute("INSERT INTO notes VALUES (1)")
                await conn.execute(text("INSERT INTO notes VALUES (2)"))  # same transaction
                raise Rollback
        async with engine.connect() as conn, conn.begin():
            apg = await driver_connection(conn)
            await apg.execute("INSERT INTO notes VALUES (3)")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT n FROM notes ORDER BY n"))).scalars().all()
        assert rows == [3]  # 1 and 2 went with the rollback, 3 was committed with its block
    finally:
        await engine.dispose()


async def test_outside_a_transaction_nothing_is_begun(isolation: Any) -> None:
    engine = create_engine(isolation.database_url, isolation.schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            apg = await driver_connection(conn)
            assert not apg.is_in_transaction()
            assert await apg.fetchval("SELECT 41 + 1") == 42
    finally:
        await engine.dispose()


async def test_a_connection_lost_under_a_driver_statement_leaves_the_pool(isolation: Any) -> None:
    """The server ends the backend of a pooled connection (a restart does that to all of
    them): the next statement fails with a transient error and the dead connection is
    dropped, so the retry gets a live one instead of failing the same way for ever."""
    engine = create_engine(isolation.database_url, isolation.schema, pool_size=1)
    query = DriverSql("SELECT pg_backend_pid() + :zero AS pid")
    try:
        async with engine.connect() as conn:
            (row,) = await query.fetch(conn, {"zero": 0})
            doomed = row["pid"]
        admin = await asyncpg.connect(plain_url(isolation.database_url))  # not from the pool
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", doomed)
        finally:
            await admin.close()
        with pytest.raises(Exception) as failure:
            async with engine.connect() as conn, conn.begin():
                await query.fetch(conn, {"zero": 0})
        assert is_transient(failure.value), repr(failure.value)
        async with engine.connect() as conn, conn.begin():
            (row,) = await query.fetch(conn, {"zero": 0})
        assert row["pid"] != doomed
    finally:
        await engine.dispose()


async def test_json_values_go_through_orjson_both_ways(isolation: Any) -> None:
    """The engine writes JSON parameters and reads JSON and JSONB results (through
    SQLAlchemy and straight from asyncpg alike) as ``json`` would, with orjson."""
    engine = create_engine(isolation.database_url, isolation.schema, pool_size=1)
    doc = {"name": "Zoë", 7: [1.5, None, True], "nested": {"n": 2**40}}
    written = sqlalchemy.bindparam("doc", type_=JSONB)
    try:
        assert engine.dialect._json_deserializer is orjson.loads  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            stored = await conn.scalar(
                sqlalchemy.select(sqlalchemy.cast(written, JSONB)), {"doc": doc}
            )
            apg = await driver_connection(conn)
            read_back = await apg.fetchval("SELECT $1::text::jsonb", json_text(doc))
            as_json = await apg.fetchval("SELECT '{\"a\": [1, 2.5]}'::json")
        expected = {"name": "Zoë", "7": [1.5, None, True], "nested": {"n": 2**40}}
        assert stored == expected == read_back
        assert as_json == {"a": [1, 2.5]}
    finally:
        await engine.dispose()
